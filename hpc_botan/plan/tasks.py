"""The training tasks of a run: what each set of replicas learns, in which order, from which data split,
and which of them are finished.

Tasks (directories under ``RUN_DIR/train``):

    botan/pretrain/T{T}/t{k}   p = 0 on one short time point (edges only), from scratch
    botan/finetune/T{T}/t{k}   p = train.node_weight, from the pretrained replica of the same index
    ntgnn/T{T}/t{k}            p = 1 (nodes only), from scratch, ``train.ntgnn.batch_graphs`` per step

for every temperature of the targets index and every chosen time point (``train.mode: per_time``).
With ``train.mode: multi_time`` one network per temperature learns every chosen time point:
``botan/finetune/T{T}/multi`` and ``ntgnn/T{T}/multi`` (pretraining stays one short time point; its
single output initialises every column); with ``train.temperatures: joint`` one network learns every
trained temperature (``…/joint/…``).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.durable import lock_holder
from hpc_botan.io.rundir import ReplicaLayout, RunLayout
from hpc_botan.model.registry import MODELS
from hpc_botan.plan.targets import targets_complete, temperatures_and_times


@dataclass(frozen=True)
class TrainingTask:
    """What one set of replicas learns; ``name`` is its directory under ``RUN_DIR/train``.

    A per-time task learns the one time point ``time_index``; a multi-time task (``train.mode:
    multi_time``) learns every time point of ``time_indices`` at once, one output column each.
    The evaluated *view* of one time point of a multi-time task has ``time_index`` = that time
    point and ``output`` = its column.
    """

    name: str
    temperature: float
    time_index: int
    node_weight: float
    epochs: int
    batch_graphs: int
    #: Task whose replica-XX/final.pt initialises replica XX of this one (None: from scratch).
    init_from: str | None = None
    #: The time points the network learns, one output column each (empty: just ``time_index``).
    time_indices: tuple[int, ...] = ()
    #: The output column that predicts ``time_index``.
    output: int = 0
    #: Temperatures whose training graphs the network learns (empty: just ``temperature``); a joint
    #: network's evaluated view at a hold-out temperature has ``temperature`` outside this list.
    temperatures: tuple[float, ...] = ()
    #: The replicas are the published networks shipped with the package (train.pretrain.source:
    #: published): installed, not trained.
    published: bool = False
    #: Adam's peak learning rate for this task (None: train.learning_rate).
    learning_rate: float | None = None
    #: The model family (botan, ntgnn) and the role (pretrain, finetune, scratch): see :class:`TaskKind`.
    model: str = "botan"
    role: str = "finetune"

    @property
    def trained_temperatures(self) -> tuple[float, ...]:
        return self.temperatures or (self.temperature,)

    @property
    def columns(self) -> tuple[int, ...]:
        """Time-point indices of the network's output columns."""
        return self.time_indices or (self.time_index,)

    def replica(self, run_dir: str | Path, replica: int) -> ReplicaLayout:
        """The files of replica ``replica`` of this task in ``run_dir``."""
        return RunLayout(run_dir).replica(self.name, replica)


def seed_for(*parts: Any) -> int:
    """A 63-bit seed from any tuple of ints/strings (stable across processes and Python versions)."""
    h = zlib.crc32(repr(parts).encode())
    return (h << 31) ^ zlib.adler32(repr(parts[::-1]).encode())


def split_train_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of n training configurations; at least one stays for training."""
    order = np.random.default_rng(seed_for("validation", seed)).permutation(n)
    n_val = min(int(round(fraction * n)), n - 1) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def training_split(n: int, tr: Any) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) into one temperature's ``n`` train-split configurations (targets order):
    the first ``tr.max_configurations`` of them (all if null), split by ``tr.validation_fraction``."""
    used = n if tr.max_configurations is None else min(n, tr.max_configurations)
    return split_train_validation(used, tr.validation_fraction, tr.seed)


def task_tag(temperature: float | None, time_index: int | None) -> str:
    """The (T, t) part of a task name, e.g. ``T0.640/t06``; ``T0.640/multi`` for every time point;
    ``joint/…`` (temperature None) for one network of every temperature."""
    where = "joint" if temperature is None else f"T{temperature:.3f}"
    return f"{where}/" + ("multi" if time_index is None else f"t{time_index:02d}")


def split_temperatures(cfg: Config, temps: list[float]) -> tuple[list[float], list[float]]:
    """(trained, held-out) temperatures of a run; every temperature is trained unless joint with hold-outs."""
    held = []
    for t in cfg.train.holdout_temperatures:
        match = [u for u in temps if np.isclose(u, t)]
        if not match:
            raise UserError(f"train.holdout_temperatures: {t} is not a temperature of this run "
                            f"({', '.join(f'{u:g}' for u in temps)})")
        held.append(match[0])
    trained = [t for t in temps if t not in held]
    if not trained:
        raise UserError("train.holdout_temperatures: every temperature is held out; nothing is left to train on")
    return trained, held


@dataclass(frozen=True)
class TaskKind:
    """What kind of training a task is: its model family, its role and how it trains (data, so that code
    asks ``task.role == "pretrain"``, never the task's name)."""

    #: the model family (the first part of the task's name): botan or ntgnn
    model: str
    #: pretrain (p = 0 on one short time point, the start of every fine-tuning), finetune (from the
    #: pretrained replica of the same index) or scratch (from random weights)
    role: str
    node_weight: float
    epochs: int
    batch_graphs: int
    learning_rate: float | None = None
    published: bool = False

    @property
    def prefix(self) -> str:
        """The task name's first parts: ``botan/pretrain``, ``botan/finetune``, ``ntgnn``."""
        return self.model if self.role == "scratch" else f"{self.model}/{self.role}"


def chosen_time_indices(cfg: Config, available: dict[float, np.ndarray], t: float) -> list[int]:
    """The time indices a network of temperature ``t`` learns (``train.time_indices``, negatives from the end)."""
    n = len(available[t])
    wanted = cfg.train.time_indices
    chosen = list(range(n)) if wanted is None else [k if k >= 0 else n + k for k in wanted]
    for k in chosen:
        if not 0 <= k < n:
            raise UserError(f"train.time_indices: {k} is out of range; T = {t} has {n} time points")
    return chosen


def pretraining_task(cfg: Config, available: dict[float, np.ndarray], trained: list[float], held: list[float]
                     ) -> TrainingTask:
    """The BOTAN pretraining task: p = 0 on one short time point of one temperature."""
    tr, temps = cfg.train, sorted(available)
    t_pre = tr.pretrain.temperature if tr.pretrain.temperature is not None else trained[0]
    if any(np.isclose(t_pre, t) for t in held):
        raise UserError(f"train.pretrain.temperature: {t_pre} is held out (train.holdout_temperatures)")
    if not any(np.isclose(t_pre, t) for t in temps):
        raise UserError(f"train.pretrain.temperature: {t_pre} is not in the targets index {temps}")
    t_pre = next(t for t in temps if np.isclose(t_pre, t))
    k = tr.pretrain.time_index
    if not 0 <= k < len(available[t_pre]):
        raise UserError(f"train.pretrain.time_index: {k} is out of range; T = {t_pre} has "
                        f"{len(available[t_pre])} time points")
    kind = TaskKind("botan", "pretrain", 0.0, tr.pretrain.epochs, tr.batch_graphs,
                    published=tr.pretrain.source == "published")
    return kind_task(kind, t_pre, [k], per_time=True)[0]


def kind_task(kind: TaskKind, temperature: float, chosen: list[int], per_time: bool, init_from: str | None = None,
              temperatures: tuple[float, ...] = (), joint: bool = False) -> list[TrainingTask]:
    """The tasks of one kind at one temperature (or joint): one per time point, or one multi-time task."""
    common = dict(init_from=init_from, temperatures=temperatures, learning_rate=kind.learning_rate,
                  published=kind.published, model=kind.model, role=kind.role)
    where = None if joint else temperature
    if per_time:
        return [TrainingTask(f"{kind.prefix}/{task_tag(where, k)}", temperature, k, kind.node_weight, kind.epochs,
                             kind.batch_graphs, **common) for k in chosen]
    return [TrainingTask(f"{kind.prefix}/{task_tag(where, None)}", temperature, chosen[0], kind.node_weight,
                         kind.epochs, kind.batch_graphs, time_indices=tuple(chosen), **common)]


def learning_kinds(cfg: Config, models: tuple[str, ...]) -> list[TaskKind]:
    """The kinds of task that learn S_i / E_ij: BOTAN fine-tuning and NT-GNN, as far as ``models`` asks."""
    kinds = []
    for model in MODELS.values():    # the registry's order: BOTAN before NT-GNN
        settings = model.training(cfg)
        if model.name in models and settings.enabled:
            kinds.append(TaskKind(model.name, "finetune" if model.starts_from_pretraining else "scratch",
                                  settings.node_weight, settings.epochs, settings.batch_graphs,
                                  settings.learning_rate))
    return kinds


def check_joint_time_points(available: dict[float, np.ndarray]) -> None:
    counts = {t: len(times) for t, times in available.items()}
    if len(set(counts.values())) > 1:
        raise UserError(f"train.temperatures = joint needs the same number of time points at every "
                        f"temperature (output column k = time index k); the run has {counts}")


def training_tasks(cfg: Config, available: dict[float, np.ndarray], models: tuple[str, ...] = ("botan", "ntgnn")
                   ) -> list[TrainingTask]:
    """The tasks of a run in the order they must run (pretraining before fine-tuning)."""
    tr = cfg.train
    if not available:
        raise UserError("the targets index holds no configurations")
    trained, held = split_temperatures(cfg, sorted(available))
    tasks = []
    if "botan" in models and tr.pretrain.enabled:
        tasks.append(pretraining_task(cfg, available, trained, held))
    per_time = tr.mode != "multi_time"
    for kind in learning_kinds(cfg, models):
        init = tasks[0].name if tasks and kind.role == "finetune" else None
        if tr.temperatures == "joint":
            check_joint_time_points(available)
            tasks += kind_task(kind, trained[0], chosen_time_indices(cfg, available, trained[0]), per_time, init,
                               tuple(trained), joint=True)
        else:
            for t in sorted(available):
                tasks += kind_task(kind, t, chosen_time_indices(cfg, available, t), per_time, init)
    return tasks


def check_training_config(run_dir: str | Path, cfg: Config) -> None:
    """Raise :class:`UserError` if ``cfg``'s training settings do not fit the run's targets.

    Without a targets index yet (a run not simulated so far) there is nothing to check against.
    Settings never change under a training that is running (a replica's lock is held).
    """
    for lock in (r.lock for r in RunLayout(run_dir).replicas() if r.lock.exists()):
        holder = lock_holder(lock)
        if holder is not None:
            raise UserError(f"{lock.parent}: being trained by another process ({holder}); its settings cannot "
                            "change now: wait for it to finish, or use another run directory")
    path = RunLayout(run_dir).index
    if path.is_file():
        training_tasks(cfg, temperatures_and_times(path))


def evaluated_tasks(cfg: Config, available: dict[float, np.ndarray], models: tuple[str, ...] = ("botan", "ntgnn")
                    ) -> list[TrainingTask]:
    """The tasks whose models predict S_i / E_ij, one per (model, T, t): fine-tuned BOTAN and NT-GNN
    (pretraining, p = 0 on a short time, is a starting point only, so it is neither evaluated nor used
    for prediction).  A multi-time task appears once per time point, as a view on its output column."""
    no_pretrain = replace(cfg, train=replace(cfg.train, pretrain=replace(cfg.train.pretrain, enabled=False)))
    views = []
    for task in training_tasks(no_pretrain, available, models):
        # a joint network is scored at every temperature of the run, hold-outs included
        at = sorted(available) if task.temperatures else [task.temperature]
        views.extend(replace(task, temperature=t, time_index=k, output=j, temperatures=task.trained_temperatures)
                     for t in at for j, k in enumerate(task.columns))
    return views


def planned_times(run_dir: str | Path, cfg: Config) -> dict[float, np.ndarray]:
    """Temperature → time points (τ): from the targets index when it is complete, else from the config."""
    index = RunLayout(run_dir).index
    if targets_complete(run_dir, cfg):
        return temperatures_and_times(index)
    s = cfg.simulation
    return {float(t): np.asarray(s.time_points[t], dtype=np.float64) for t in sorted(s.temperatures)}


def planned_tasks(run_dir: str | Path, cfg: Config, models: tuple[str, ...] = ("botan", "ntgnn")
                  ) -> list[TrainingTask]:
    """Every training task of the run, in order (from the planned time points)."""
    return training_tasks(cfg, planned_times(run_dir, cfg), models)


def task_finished(run_dir: str | Path, cfg: Config, task: TrainingTask) -> bool:
    """Whether every replica of ``task`` has its ``final.pt``."""
    return all(task.replica(run_dir, r).final.is_file() for r in range(cfg.train.n_replicas))


def training_groups(tasks: list[TrainingTask]) -> list[tuple[str, list[str]]]:
    """The training work as (label, task names) groups that may run at the same time.

    Group 0 is the pretraining (every fine-tuning starts from it); then one group per
    (temperature, time point) with its BOTAN fine-tuning and its NT-GNN task (in multi_time mode,
    one group per temperature).  On Slurm each group after the first is one element of the
    training job array.
    """
    groups: dict[str, list[str]] = {}
    for task in tasks:
        # botan/finetune/T…/t… and ntgnn/T…/t… share the label T…/t…
        label = ("pretrain" if task.role == "pretrain"
                 else task_tag(task.temperature, task.time_index if not task.time_indices else None))
        groups.setdefault(label, []).append(task.name)
    return list(groups.items())
