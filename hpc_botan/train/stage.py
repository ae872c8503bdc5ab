"""The training stage: every task of a run, for every replica, on whatever world launched it.

Tasks (directories under ``RUN_DIR/train``):

    botan/pretrain/T{T}/t{k}   p = 0 on one short time point (edges only), from scratch
    botan/finetune/T{T}/t{k}   p = train.node_weight, from the pretrained replica of the same index
    ntgnn/T{T}/t{k}            p = 1 (nodes only), from scratch, ``train.ntgnn.batch_graphs`` per step

for every temperature of the targets index and every chosen time point (``train.mode: per_time``).
With ``train.mode: multi_time`` one network per temperature learns every chosen time point:
``botan/finetune/T{T}/multi`` and ``ntgnn/T{T}/multi`` (pretraining stays one short time point; its
single output initialises every column).  Replicas are dealt
to replica slots (R = processes / D): slot s trains replicas s, s + R, s + 2R, …  A finished
replica (``final.pt``) is skipped, an unfinished one resumes from its checkpoint.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from hpc_botan.config import Config, LaunchConfig
from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.data.descriptors import run_descriptors
from hpc_botan.errors import UserError
from hpc_botan.io.durable import lock_holder
from hpc_botan.io.rundir import RunLayout
from hpc_botan.io.shards import index_times
from hpc_botan.model.botan import with_temperature
from hpc_botan.stage import Resources, Stage
from hpc_botan.targets.stage import targets_complete
from hpc_botan.train.distributed import ProcessGroups, World, detect_world, init_process_groups
from hpc_botan.train.trainer import TrainingTask, train_replica, training_split

log = logging.getLogger("hpc_botan.train")


def index_path(run_dir: str | Path) -> Path:
    path = RunLayout(run_dir).index
    if not path.is_file():
        raise UserError(f"{path}: not found; run 'hpc-botan targets {run_dir}' (or import a data set) first")
    return path


#: Temperature → time points of a targets index (the name the training code has always used).
temperatures_and_times = index_times


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


def training_tasks(cfg: Config, available: dict[float, np.ndarray], models: tuple[str, ...] = ("botan", "ntgnn")
                   ) -> list[TrainingTask]:
    """The tasks of a run in the order they must run (pretraining before fine-tuning)."""
    tr = cfg.train
    tasks: list[TrainingTask] = []
    temps = sorted(available)
    if not temps:
        raise UserError("the targets index holds no configurations")

    def time_indices(t: float) -> list[int]:
        n = len(available[t])
        chosen = list(range(n)) if tr.time_indices is None else [k if k >= 0 else n + k for k in tr.time_indices]
        for k in chosen:
            if not 0 <= k < n:
                raise UserError(f"train.time_indices: {k} is out of range; T = {t} has {n} time points")
        return chosen

    trained, held = split_temperatures(cfg, temps)
    pretrain = None
    if "botan" in models and tr.pretrain.enabled:
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
        pretrain = TrainingTask(f"botan/pretrain/{task_tag(t_pre, k)}", t_pre, k, 0.0, tr.pretrain.epochs,
                                tr.batch_graphs, published=tr.pretrain.source == "published")
        tasks.append(pretrain)
    kinds = []
    if "botan" in models:
        kinds.append(("botan/finetune", tr.node_weight, tr.epochs, tr.batch_graphs, pretrain.name if pretrain else None,
                      None))
    if "ntgnn" in models and tr.ntgnn.enabled:
        kinds.append(("ntgnn", 1.0, tr.ntgnn.epochs, tr.ntgnn.batch_graphs, None, tr.ntgnn.learning_rate))
    if tr.temperatures == "joint":
        counts = {t: len(available[t]) for t in temps}
        if len(set(counts.values())) > 1:
            raise UserError(f"train.temperatures = joint needs the same number of time points at every "
                            f"temperature (output column k = time index k); the run has {counts}")
        chosen = time_indices(trained[0])
        for prefix, p, epochs, batch, init, lr in kinds:
            joint = dict(temperatures=tuple(trained), learning_rate=lr)
            if tr.mode == "multi_time":
                tasks.append(TrainingTask(f"{prefix}/{task_tag(None, None)}", trained[0], chosen[0], p, epochs, batch,
                                          init, time_indices=tuple(chosen), **joint))
            else:
                tasks.extend(TrainingTask(f"{prefix}/{task_tag(None, k)}", trained[0], k, p, epochs, batch, init,
                                          **joint) for k in chosen)
        return tasks
    for prefix, p, epochs, batch, init, lr in kinds:
        for t in temps:
            chosen = time_indices(t)
            if tr.mode == "multi_time":
                tasks.append(TrainingTask(f"{prefix}/{task_tag(t, None)}", t, chosen[0], p, epochs, batch, init,
                                          time_indices=tuple(chosen), learning_rate=lr))
            else:
                tasks.extend(TrainingTask(f"{prefix}/{task_tag(t, k)}", t, k, p, epochs, batch, init, learning_rate=lr)
                             for k in chosen)
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


class TaskGraphs(Sequence):
    """Graphs of a task, each read from the targets when it is used and not kept.

    A rank's memory then stays that of one graph (and its step) whatever the size of the data set:
    holding every training graph of the paper's split costs 2 GB per rank (docs/benchmarks.md, "The
    paper's data size").  Reading one graph takes tens of milliseconds against seconds per step.
    The last graph read is kept, for the consecutive uses of one step.
    """

    def __init__(self, items: list[tuple[TargetsDataset, int]], joint: bool, device: torch.device):
        self.items = items
        self.joint = joint
        self.device = device
        self._last: tuple[int, Data] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if k < 0:
            k += len(self)
        if self._last is not None and self._last[0] == k:
            return self._last[1]
        data, i = self.items[k]
        g = data[i]
        if self.joint:
            g.x = with_temperature(g.x, g.temperature)
        g = g.to(self.device)
        self._last = (k, g)
        return g

    def __getstate__(self):
        return {**self.__dict__, "_last": None}


def load_task_graphs(index: Path, cfg: Config, task: TrainingTask, device: torch.device
                     ) -> tuple[TaskGraphs, TaskGraphs]:
    """(train graphs, validation graphs) of a task, on ``device``, read when used (:class:`TaskGraphs`);
    validation held out of the train split of each temperature.  A joint network's graphs carry the
    temperature as a second node feature.  Every graph is read once here and checked for what the
    task's loss needs (:class:`UserError` before the first step)."""
    train_items, val_items = [], []
    descriptors = run_descriptors(index, cfg, timeout_min=cfg.launch.train_timeout_min)
    for temperature in task.trained_temperatures:
        data = TargetsDataset(index, split="train", temperature=temperature, time_indices=list(task.columns),
                              descriptors=descriptors)
        if len(data) == 0:
            raise UserError(f"{index}: no training configurations at T = {temperature}")
        train_idx, val_idx = training_split(len(data), cfg.train)
        if cfg.train.validation_fraction > 0 and len(val_idx) == 0:
            log.warning("%s: train.validation_fraction = %g of %d training configuration(s) at T = %g holds none "
                        "out: no validation, so best.pt is simply the last epoch (raise it to at least %.2g)",
                        task.name, cfg.train.validation_fraction, len(data), temperature, 0.5 / len(data))
        for i in (*train_idx, *val_idx):
            _check_graph(index, task, data[int(i)])
        train_items += [(data, int(i)) for i in train_idx]
        val_items += [(data, int(i)) for i in val_idx]
    joint = cfg.train.temperatures == "joint"
    return TaskGraphs(train_items, joint, device), TaskGraphs(val_items, joint, device)


def _check_graph(index: Path, task: TrainingTask, g: Data) -> None:
    """:class:`UserError` unless graph ``g`` holds what the task's loss needs."""
    if task.node_weight < 1.0 and not g.has_edge_targets:
        raise UserError(f"{index}: configuration {g.conf_id} has no edge targets (no trajectories); "
                        "only NT-GNN (p = 1) can be trained on it")
    if not bool(g.node_mask.any()):
        raise UserError(f"{index}: configuration {g.conf_id} has no type-A particles")
    if task.node_weight < 1.0 and not bool(g.edge_mask.any()):
        raise UserError(f"{index}: configuration {g.conf_id} has no A-A pairs closer than 1.35")


def wait_for_file(path: Path, timeout_min: float, what: str, poll_s: float = 2.0) -> None:
    """Return once ``path`` exists; :class:`UserError` after ``timeout_min`` minutes without it."""
    deadline = time.monotonic() + 60.0 * timeout_min
    while not path.is_file():
        if time.monotonic() > deadline:
            raise UserError(f"{what}: waited {timeout_min:g} min for {path}, which is not there; train the task "
                            "it starts from first (or raise launch.train_timeout_min)")
        time.sleep(poll_s)


def run_training(run_dir: str | Path, cfg: Config, *, models: tuple[str, ...] = ("botan", "ntgnn"),
                 task_names: list[str] | None = None, world: World | None = None,
                 show_progress: bool = True) -> list[Path]:
    """Train every replica of every task (or of ``task_names``) with this process's share of the world."""
    index = index_path(run_dir)
    tasks = training_tasks(cfg, temperatures_and_times(index), models)
    if task_names:
        unknown = sorted(set(task_names) - {t.name for t in tasks})
        if unknown:
            raise UserError(f"--task {unknown[0]}: no such task; tasks are {', '.join(t.name for t in tasks)}")
        tasks = [t for t in tasks if t.name in task_names]
    world = world or detect_world(cfg.train.data_parallel)
    timeout_min = cfg.launch.train_timeout_min
    groups: ProcessGroups = init_process_groups(world, timeout_min)
    if world.rank == 0:
        log.info("train: %d task(s) x %d replica(s); %d process(es) = %d replica slot(s) x %d data-parallel "
                 "rank(s) on %s (%s)", len(tasks), cfg.train.n_replicas, world.world_size, world.n_slots,
                 world.data_parallel, groups.device, groups.backend)
    done: list[Path] = []
    try:
        for task in tasks:
            train_graphs, val_graphs = load_task_graphs(index, cfg, task, groups.device)
            for replica in range(world.slot, cfg.train.n_replicas, world.n_slots):
                if task.init_from is not None:
                    wait_for_file(RunLayout(run_dir).replica(task.init_from, replica).final,
                                  timeout_min, f"{task.name} replica {replica}")
                done.append(train_replica(run_dir, cfg, task, replica, train_graphs, val_graphs, groups,
                                          show_progress=show_progress))
            mine = list(range(world.slot, cfg.train.n_replicas, world.n_slots))
            if mine and world.is_replica_leader:
                log.info("train: %s finished (replica(s) %s of %d)", task.name, ", ".join(map(str, mine)),
                         cfg.train.n_replicas)
        # no world-wide barrier between tasks: a replica waits only for the pretrained replica it
        # starts from (trained earlier by its own slot, or by another job), and idle slots leave
        groups.leave()
    finally:
        groups.close()
    return done


# --------------------------------------------------------------------------- the stage in a run

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
        label = ("pretrain" if task.name.startswith("botan/pretrain/")
                 else task_tag(task.temperature, task.time_index if not task.time_indices else None))
        groups.setdefault(label, []).append(task.name)
    return list(groups.items())


def training_resources(launch: LaunchConfig) -> Resources:
    """One training process: ``launch.slurm.cpus_per_task`` cores and the node's training GPUs."""
    return Resources(cpus=launch.slurm.cpus_per_task, gpus=launch.slurm.gpus_per_node)


class TrainStage(Stage):
    """Every replica of every training task: pretraining, then the (T, t) grid (one part per group)."""

    name = "train"
    launch = "distributed"
    summary = "BOTAN pretraining and fine-tuning, NT-GNN (train/<task>/replica-XX/)"

    def unfinished_groups(self, run_dir: Path, cfg: Config) -> dict[str, list[str]]:
        """Group label → task names, for the groups with an unfinished replica (in order)."""
        tasks = {t.name: t for t in planned_tasks(run_dir, cfg)}
        return {label: names for label, names in training_groups(list(tasks.values()))
                if not all(task_finished(run_dir, cfg, tasks[n]) for n in names)}

    def parts(self, run_dir: Path, cfg: Config) -> list[str]:
        return list(self.unfinished_groups(run_dir, cfg))

    def waves(self, parts: list[str]) -> list[list[str]]:
        """The pretraining first (every fine-tuning starts from it), then every other group at once."""
        return [wave for wave in ([p for p in parts if p == "pretrain"], [p for p in parts if p != "pretrain"])
                if wave]

    def done(self, run_dir: Path, cfg: Config) -> bool:
        return all(task_finished(run_dir, cfg, t) for t in planned_tasks(run_dir, cfg))

    def resources(self, cfg: Config) -> Resources:
        return training_resources(cfg.launch)

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> list[Path]:
        names = self.unfinished_groups(run_dir, cfg).get(part) if part else None
        if part and names is None:
            return []  # the group finished meanwhile
        return run_training(run_dir, cfg, task_names=names, show_progress=show_progress)
