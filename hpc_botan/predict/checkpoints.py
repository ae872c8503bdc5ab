"""The trained networks of a run directory, read from its replicas' checkpoints.

Every task of evaluation (fine-tuned BOTAN, NT-GNN; pretraining is left out: it learns a
short-time edge target only) with at least one finished replica; each replica's
validation-selected ``best.pt`` (``final.pt`` where there is none), as ``hpc-botan evaluate``
reads them.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from torch_geometric.data import Data

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.learned_targets import DEFAULT_EDGE_TARGET, DEFAULT_NODE_TARGET
from hpc_botan.model.build import descriptor_settings_of
from hpc_botan.plan.networks import finished_replicas, replica_predictions, trained_time_points
from hpc_botan.plan.tasks import evaluated_tasks
from hpc_botan.predict.predict import MODEL_FAMILIES, TrainedModels, TrainedTask, check_families

log = logging.getLogger("hpc_botan.predict")


class CheckpointNetworks:
    """Runs each task's replica checkpoints (on the first GPU where there is one)."""

    def __init__(self, run_dir: Path, cfg: Config):
        self.run_dir, self.cfg = run_dir, cfg

    def predict(self, tasks: Sequence[TrainedTask], data) -> list[tuple[np.ndarray, np.ndarray]]:
        graph = Data(x=data.x, edge_index=data.edge_index, edge_attr=data.edge_attr, temperature=data.temperature)
        if data.descriptors is not None:
            graph.descriptors = data.descriptors
        out = []
        for task in tasks:
            files = [self.run_dir / name for name in task.replica_files]
            preds = replica_predictions(self.cfg, files, [graph], task.output,  # R × [(node, edge)]
                                        chunk_edges=data.chunk_edges, halo=data.halo)
            out.append((np.stack([p[0][0][:, 0] for p in preds]), np.stack([p[0][1][:, 0] for p in preds])))
        return out


def load_trained_models(model_dir: str | Path, models: Sequence[str] = MODEL_FAMILIES, *,
                        explicit: bool = False) -> TrainedModels:
    """Every task of ``models`` with at least one finished replica (``final.pt``) in ``model_dir``.

    ``explicit``: the user named ``models``, so a family without finished replicas is an error
    rather than skipped.
    """
    run_dir = Path(model_dir)
    cfg = load_run_config(run_dir)
    learnt = (cfg.train.node_target, cfg.train.edge_target)
    if learnt != (DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET):
        # prediction files and exported models name their outputs S and E (predict.py's layout)
        raise UserError(f"{RunLayout(run_dir).config}: these networks learnt {' and '.join(learnt)} "
                        f"(train.node_target / edge_target); prediction and export handle S and E only")
    available = trained_time_points(run_dir, cfg)
    tasks = []
    for task in evaluated_tasks(cfg, available, tuple(models)):  # the task list of evaluation
        files = finished_replicas(run_dir, task, cfg.train.n_replicas)
        if not files:
            continue
        if len(files) < cfg.train.n_replicas:
            log.warning("predict: %s has %d of %d replicas finished; using those", task.name, len(files),
                        cfg.train.n_replicas)
        times = available[task.temperature]
        tasks.append(TrainedTask(task.name, task.model, task.temperature, task.time_index,
                                 float(times[task.time_index]), tuple(str(p.relative_to(run_dir)) for p in files),
                                 task.output, task.trained_temperatures))
    check_families(run_dir / "train", tasks, models, explicit,
                   lambda family: f"train first: hpc-botan train {run_dir}" + (f" --model {family}" if family else
                                                                             " (no replica-XX/final.pt yet)"))
    return TrainedModels(run_dir, cfg.simulation.density, tasks, CheckpointNetworks(run_dir, cfg),
                         descriptor_settings_of(cfg), cfg.predict.memory_gb, cfg.model.width)
