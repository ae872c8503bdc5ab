"""``hpc-botan export``: the trained networks of a run directory as one file that needs only torch.

For each model family and temperature, every finished replica of every trained time point (the
networks ``hpc-botan predict`` would use) becomes one :class:`~hpc_botan.model.ensemble.Ensemble`,
traced by ``torch.export`` with the numbers of nodes and of edges dynamic, and written with the
metadata that prediction needs (file layout: :mod:`hpc_botan.io.exported_model`).
"""
from __future__ import annotations

import copy
import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import torch
from torch.export import Dim

from hpc_botan.io.exported_model import network_name, program_name, write_exported_model
from hpc_botan.model.ensemble import Ensemble
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF
from hpc_botan.predict.checkpoints import load_network, load_trained_models, trained_time_points
from hpc_botan.predict.predict import MODEL_FAMILIES, TRAINING_B_FRACTION, TrainedTask
from hpc_botan.version import __version__

log = logging.getLogger("hpc_botan.predict")

#: The traced graph's size: any size ≥ 2 works afterwards (torch.export specialises sizes 0 and 1).
EXAMPLE_NODES, EXAMPLE_EDGES = 8, 24


def example_inputs(n_nodes: int = EXAMPLE_NODES, n_edges: int = EXAMPLE_EDGES) -> tuple[torch.Tensor, ...]:
    """A random graph of the model's input shapes: x (N, 1), edge_index (2, E), edge_attr (E, 3)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (n_nodes, 1), generator=generator).float()
    edge_index = torch.randint(0, n_nodes, (2, n_edges), generator=generator)
    return x, edge_index, torch.randn(n_edges, 3, generator=generator)


def export_ensemble(ensemble: Ensemble) -> torch.export.ExportedProgram:
    """``torch.export`` of ``ensemble`` with dynamic numbers of nodes and edges."""
    nodes, edges = Dim("n_nodes", min=2), Dim("n_edges", min=2)
    with torch.no_grad():
        return torch.export.export(ensemble, example_inputs(),
                                   dynamic_shapes=({0: nodes}, {1: edges}, {0: edges}))


def export_run(run_dir: str | Path, out: str | Path, models: Sequence[str] = MODEL_FAMILIES, *,
               explicit: bool = False) -> Path:
    """Write the exported model of ``run_dir`` to ``out`` (atomically); returns ``out``.

    Each replica's model file becomes one network (weights as raw arrays), shared by every task
    (time point) that reads one of its columns; each (family, temperature) also gets a
    ``torch.export`` program for users of plain torch.
    """
    run_dir = Path(run_dir)
    trained = load_trained_models(run_dir, models, explicit=explicit)
    cfg = trained.networks.cfg
    network_index: dict[str, int] = {}
    loaded: dict[str, torch.nn.Module] = {}   # replica file → its network, read once
    networks_meta, weights = [], {}
    task_entries = []
    groups: dict[tuple[str, float], list[TrainedTask]] = defaultdict(list)
    for task in trained.tasks:
        groups[task.model, task.temperature].append(task)
        indices = []
        for name in task.replica_files:
            if name not in network_index:
                network = loaded[name] = load_network(cfg, run_dir / name, task.output, fused=False)
                network_index[name] = len(networks_meta)
                member = network_name(len(networks_meta))
                networks_meta.append({"file": member, "architecture": network.arch.as_dict(), "source": name})
                weights[member] = {k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}
            indices.append(network_index[name])
        task_entries.append({
            "name": task.name, "family": task.model, "temperature": task.temperature,
            "time_index": task.time_index, "time": task.time, "output": task.output,
            "trained_temperatures": list(task.trained_temperatures), "networks": indices,
            "replica_files": list(task.replica_files)})
    programs, program_entries = {}, []
    for (family, temperature), tasks in sorted(groups.items()):
        networks, columns, rows = [], [], []
        for task in tasks:
            first = len(networks)
            for name in task.replica_files:
                # a copy per row: the program holds one module per ensemble row, as traced before
                networks.append(copy.deepcopy(loaded[name]))
                columns.append(task.output)
            rows.append({"task": task.name, "time_index": task.time_index, "first": first, "stop": len(networks)})
        name = program_name(family, temperature)
        log.info("export: %s (%d networks, %d time points)", name, len(networks), len(tasks))
        buffer = io.BytesIO()
        torch.export.save(export_ensemble(Ensemble(networks, columns, temperature).eval()), buffer)
        programs[name] = buffer.getvalue()
        program_entries.append({"family": family, "temperature": temperature, "file": name, "rows": rows})
    metadata = {
        "hpc_botan_version": __version__, "torch_version": torch.__version__, "source_run": str(run_dir.resolve()),
        "graph_cutoff": GRAPH_CUTOFF, "density": cfg.simulation.density, "b_fraction": TRAINING_B_FRACTION,
        "time_points": {f"{t:g}": [float(v) for v in times] for t, times in trained_time_points(run_dir, cfg).items()},
        "temperatures": trained.temperatures, "networks": networks_meta, "tasks": task_entries,
        "programs": program_entries,
    }
    return write_exported_model(out, metadata, weights, programs)
