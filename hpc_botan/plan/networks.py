"""The trained networks of a run: which replicas are finished, one replica's network loaded and checked
against the run, and the replicas' predictions on graphs.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.checkpoint import architecture_difference, config_hash, load_checkpoint
from hpc_botan.io.rundir import RunLayout
from hpc_botan.model.botan import Botan, with_temperature
from hpc_botan.model.build import architecture_of, build_model
from hpc_botan.model.inference import predict_graphs
from hpc_botan.plan.targets import temperatures_and_times
from hpc_botan.plan.tasks import TrainingTask
from hpc_botan.plan.world import World, launcher_local_rank, select_device


def trained_time_points(run_dir: Path, cfg: Config) -> dict[float, np.ndarray]:
    """Temperature → time points (τ) the tasks were built from: the targets index, else config.yaml.

    The index is what training read; a model directory copied without its targets still has the
    same time points in ``simulation.time_points``.
    """
    index = RunLayout(run_dir).index
    if index.is_file():
        return temperatures_and_times(index)
    times = {float(t): np.asarray(v, dtype=np.float64) for t, v in cfg.simulation.time_points.items()}
    missing = [t for t in cfg.simulation.temperatures if not any(math.isclose(t, u) for u in times)]
    if not times or missing:
        raise UserError(f"{RunLayout(run_dir).config}: simulation.time_points has no time points for "
                        f"T = {missing[0] if missing else cfg.simulation.temperatures}, and there is no "
                        f"{index} to read them from")
    return dict(sorted(times.items()))


def finished_replicas(run_dir: Path, task: TrainingTask, n_replicas: int) -> list[Path]:
    """The model file of each finished replica: ``best.pt`` (validation-selected), else ``final.pt``."""
    files = [task.replica(run_dir, r).model_file() for r in range(n_replicas)]
    return [f for f in files if f is not None]


def load_network(cfg: Config, path: Path, output: int = 0, device: torch.device | None = None,
                 fused: bool | None = None) -> Botan:
    """The network of one replica's model file, in eval mode, checked against the run.

    Refuses (one line) a checkpoint of another configuration or architecture and an output
    column the network does not have (``output``: the time point's column; 0 for a per-time
    task).  ``fused``: the hand-written edge update (default: as the run trains); ``False`` gives
    plain autograd ops (what ``torch.export`` traces).  On ``device`` (default CPU).
    """
    state = load_checkpoint(path, cfg_hash=config_hash(cfg.identity()))
    n_outputs = int(state["architecture"].get("n_outputs", 1))
    expected = architecture_of(cfg, n_outputs).as_dict()
    if state["architecture"] != expected:
        raise UserError(f"{path}: checkpoint of another architecture "
                        f"({architecture_difference(state['architecture'], expected)})")
    if not 0 <= output < n_outputs:
        raise UserError(f"{path}: a network with {n_outputs} output(s) has no output column {output} "
                        f"(a {'multi' if output else 'single'}-time-point model was expected)")
    # the family the checkpoint records (hpc_botan.model.registry); imported and older files are BOTAN's
    family = str(state.get("extra", {}).get("task", {}).get("model", "botan"))
    model = build_model(cfg, device or torch.device("cpu"), n_outputs, family)
    if fused is not None:
        model.fused = fused
    model.load_state_dict(state["model"])
    return model.eval()


def replica_predictions(cfg: Config, model_files: Sequence[Path], graphs: Sequence, output: int = 0, *,
                        chunk_edges: int | None = None, halo=None) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Predictions of every replica on every graph, without augmentation, of one output column.

    Args:
        cfg: the run's configuration (architecture; the checkpoints must belong to it).
        model_files: R checkpoint files (``best.pt`` / ``final.pt``).
        graphs: C graphs (``torch_geometric.data.Data`` with ``x``, ``edge_index``, ``edge_attr``).
        output: the networks' output column (the time point's position in a multi-time task; 0
            for a per-time task).  A column the networks do not have is a one-line error.
        chunk_edges, halo: bounded-memory inference on whole graphs or spatial domains
            (:func:`hpc_botan.model.inference.predict_graphs`); default: the whole-graph forward.

    Returns:
        R lists of C pairs (node prediction (N_c, 1), edge prediction (E_c, 1)), float32 numpy,
        S_i and E_ij in σ.  Runs on the first GPU where there is one.
    """
    device = select_device(World(local_rank=launcher_local_rank()))   # MPI ranks of a node: a GPU each
    on_device = [g.to(device) for g in graphs]
    preds = []
    for path in model_files:
        model = load_network(cfg, path, output, device)
        inputs = on_device
        if model.arch.temperature_input:  # a network of every temperature reads (type, T) per node
            # a shallow copy with the new x: cloning would copy the edges too (gigabytes for large graphs)
            inputs = [_with_x(g, with_temperature(g.x, float(g.temperature))) for g in on_device]
        preds.append([(node[:, output:output + 1], edge[:, output:output + 1])
                      for node, edge in predict_graphs(model, inputs, chunk_edges, halo)])
    return preds


def _with_x(graph, x: torch.Tensor):
    """``graph`` (a torch_geometric Data) with node features ``x``, sharing every other tensor."""
    out = copy.copy(graph)
    out.x = x
    return out
