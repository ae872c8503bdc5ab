"""The evaluation stage: Pearson ρ of every trained task on held-out configurations.

For each fine-tuned BOTAN task and each NT-GNN task with finished replicas:

* every replica's model selected on the validation split (``best.pt``; the test split never
  selects anything) predicts S_i and E_ij of the evaluated configurations, without augmentation;
* ρ is computed per configuration (type-A particles for S_i; A–A pairs with |r_ij(0)| < 1.35 for
  E_ij) and averaged over configurations, and pooled over all of them;
* per replica, for the ensemble mean of the replicas' predictions, and as median, best and worst
  over replicas; beside each, the noise ceiling √(split-half reliability) of the targets.

Writes ``RUN_DIR/eval/metrics.json`` (everything) and ``RUN_DIR/eval/rho.csv`` (one row per task
and target), both atomically.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hpc_botan.config import Config
from hpc_botan.data.dataset import TargetsDataset, learned_targets_of
from hpc_botan.data.descriptors import run_descriptors
from hpc_botan.errors import UserError
from hpc_botan.io.durable import up_to_date, write_text_atomic
from hpc_botan.io.rundir import RunLayout
from hpc_botan.metrics import rho_csv, score_target
from hpc_botan.plan.networks import finished_replicas, replica_predictions
from hpc_botan.plan.targets import index_path, temperatures_and_times
from hpc_botan.plan.tasks import TrainingTask, evaluated_tasks, training_split
from hpc_botan.stage import Stage

log = logging.getLogger("hpc_botan.evaluate")

SPLITS = ("test", "validation")


def evaluation_graphs(index: Path, cfg: Config, task: TrainingTask, split: str) -> list:
    """The held-out graphs of a task: the test split, or the validation part of the train split."""
    descriptors = run_descriptors(index, cfg)
    if split == "test":
        data = TargetsDataset(index, split="test", temperature=task.temperature, time_indices=[task.time_index],
                              descriptors=descriptors, **learned_targets_of(cfg))
        if len(data) == 0:
            raise UserError(f"{index}: no test configurations at T = {task.temperature} (all are in the train "
                            "split; import with --n-test K, or lower simulation.n_train)")
        return [data[i] for i in range(len(data))]
    if split != "validation":
        raise UserError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    data = TargetsDataset(index, split="train", temperature=task.temperature, time_indices=[task.time_index],
                          descriptors=descriptors, **learned_targets_of(cfg))
    _, val_idx = training_split(len(data), cfg.train)
    if len(val_idx) == 0:
        raise UserError(f"train.validation_fraction = {cfg.train.validation_fraction}: no validation configurations")
    return [data[int(i)] for i in val_idx]


def evaluate_task(run_dir: Path, cfg: Config, task: TrainingTask, model_files: list[Path], graphs: list
                  ) -> dict[str, Any]:
    """Scores of one task's replicas on ``graphs``: a JSON-ready dict."""
    preds = replica_predictions(cfg, model_files, graphs, task.output)
    node_masks = [g.node_mask.numpy() for g in graphs]
    # scores keyed by the learned targets' labels (hpc_botan.learned_targets): S and E unless set otherwise
    scores: dict[str, Any] = {
        cfg.train.node_target: score_target([[p[0][:, 0] for p in rep] for rep in preds],
                                            [g.y_node[:, 0].numpy() for g in graphs], node_masks,
                                            [float(g.reliability_node[0, 0]) for g in graphs]).as_dict()}
    if task.node_weight < 1.0 and all(bool(g.has_edge_targets) for g in graphs):
        scores[cfg.train.edge_target] = score_target([[p[1][:, 0] for p in rep] for rep in preds],
                                   [g.y_edge[:, 0].numpy() for g in graphs], [g.edge_mask.numpy() for g in graphs],
                                   [float(g.reliability_edge[0, 0]) for g in graphs]).as_dict()
    held_out = not any(np.isclose(task.temperature, t) for t in task.trained_temperatures)
    return {"task": task.name, "model": task.model, "temperature": task.temperature,
            "held_out": bool(held_out), "time_index": task.time_index, "time": float(graphs[0].times[0, 0]),
            "n_configurations": len(graphs), "configurations": [int(g.conf_id) for g in graphs],
            "replica_files": [str(p.relative_to(run_dir)) for p in model_files], "scores": scores}


def format_table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'task':32s} {'target':6s} {'median':>7s} {'best':>7s} {'worst':>7s} {'ensemble':>8s} {'ceiling':>7s}"]
    for r in results:
        for target, s in r["scores"].items():
            lines.append(f"{r['task']:32s} {target:6s} {s['median']:7.3f} {s['best']:7.3f} {s['worst']:7.3f} "
                         f"{s['ensemble']:8.3f} {s['ceiling']:7.3f}")
    return "\n".join(lines)


def run_evaluation(run_dir: str | Path, cfg: Config, *, split: str = "test",
                   models: tuple[str, ...] = ("botan", "ntgnn"), task_names: list[str] | None = None
                   ) -> list[dict[str, Any]]:
    """Evaluate every trained task (skipping tasks without finished replicas); write eval/ files."""
    run_dir = Path(run_dir)
    index = index_path(run_dir)
    tasks = evaluated_tasks(cfg, temperatures_and_times(index), models)
    if task_names:
        unknown = [name for name in task_names if name not in {t.name for t in tasks}]
        if unknown:
            known = ", ".join(t.name for t in tasks) or "none"
            raise UserError(f"--task {unknown[0]}: no such task of {run_dir} (its tasks: {known})")
        tasks = [t for t in tasks if t.name in task_names]
    results = []
    for task in tasks:
        files = finished_replicas(run_dir, task, cfg.train.n_replicas)
        if not files:
            log.warning("evaluate: %s has no finished replica; skipped", task.name)
            continue
        if len(files) < cfg.train.n_replicas:
            log.warning("evaluate: %s has %d of %d replicas finished", task.name, len(files), cfg.train.n_replicas)
        results.append(evaluate_task(run_dir, cfg, task, files, evaluation_graphs(index, cfg, task, split)))
        # a multi-time task is evaluated once per time point: the line names which
        log.info("evaluate: %s at t = %g (time index %d) done", task.name, results[-1]["time"], task.time_index)
    if not results:
        raise UserError(f"{run_dir / 'train'}: no finished replicas to evaluate; run 'hpc-botan train {run_dir}' first")
    out = RunLayout(run_dir).eval
    suffix = "" if split == "test" else f"-{split}"
    write_text_atomic(out / f"metrics{suffix}.json", json.dumps({"split": split, "tasks": results}, indent=1))
    write_text_atomic(out / f"rho{suffix}.csv", rho_csv(results))
    return results


def evaluation_inputs(run_dir: Path) -> list[Path]:
    """What ``eval/metrics.json`` is computed from: the targets index and every replica's model files."""
    layout = RunLayout(run_dir)
    return [layout.index, *layout.finished_models(), *(r.best for r in layout.replicas() if r.best.is_file())]


class EvaluateStage(Stage):
    """ρ of every trained task on the test split (``eval/metrics.json``, ``eval/rho.csv``)."""

    name = "evaluate"
    launch = "finish"
    summary = "Pearson ρ of every trained task on the test configurations (eval/metrics.json)"

    def done(self, run_dir: Path, cfg: Config) -> bool:
        return up_to_date(RunLayout(run_dir).metrics, evaluation_inputs(run_dir))

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> list[dict[str, Any]]:
        return run_evaluation(run_dir, cfg)
