"""The trained networks of a run directory, read from its replicas' checkpoints.

Every task of evaluation (fine-tuned BOTAN, NT-GNN; pretraining is left out: it learns a
short-time edge target only) with at least one finished replica; each replica's
validation-selected ``best.pt`` (``final.pt`` where there is none), as ``hpc-botan evaluate``
reads them.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.evaluate.stage import finished_replicas, replica_predictions
from hpc_botan.predict.predict import MODEL_FAMILIES, TrainedModels, TrainedTask, check_families
from hpc_botan.rundir import load_run_config
from hpc_botan.train.stage import evaluated_tasks, temperatures_and_times

log = logging.getLogger("hpc_botan.predict")


def trained_time_points(run_dir: Path, cfg: Config) -> dict[float, np.ndarray]:
    """Temperature → time points (τ) the tasks were built from: the targets index, else config.yaml.

    The index is what training read; a model directory copied without its targets still has the
    same time points in ``simulation.time_points``.
    """
    index = run_dir / "targets" / "index.h5"
    if index.is_file():
        return temperatures_and_times(index)
    times = {float(t): np.asarray(v, dtype=np.float64) for t, v in cfg.simulation.time_points.items()}
    missing = [t for t in cfg.simulation.temperatures if not any(math.isclose(t, u) for u in times)]
    if not times or missing:
        raise UserError(f"{run_dir / 'config.yaml'}: simulation.time_points has no time points for "
                        f"T = {missing[0] if missing else cfg.simulation.temperatures}, and there is no "
                        f"{index} to read them from")
    return dict(sorted(times.items()))


class CheckpointNetworks:
    """Runs each task's replica checkpoints (on the first GPU where there is one)."""

    def __init__(self, run_dir: Path, cfg: Config):
        self.run_dir, self.cfg = run_dir, cfg

    def predict(self, tasks: Sequence[TrainedTask], data) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for task in tasks:
            files = [self.run_dir / name for name in task.replica_files]
            preds = replica_predictions(self.cfg, files, [data], task.output)  # R × [(node, edge)]
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
        tasks.append(TrainedTask(task.name, task.name.split("/")[0], task.temperature, task.time_index,
                                 float(times[task.time_index]), tuple(str(p.relative_to(run_dir)) for p in files),
                                 task.output, task.trained_temperatures))
    check_families(run_dir / "train", tasks, models, explicit,
                   lambda family: f"train first: hpc-botan train {run_dir}" + (f" --model {family}" if family else
                                                                             " (no replica-XX/final.pt yet)"))
    return TrainedModels(run_dir, cfg.simulation.density, tasks, CheckpointNetworks(run_dir, cfg))
