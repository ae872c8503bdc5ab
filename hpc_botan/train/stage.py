"""The training stage: every task of a run, for every replica, on whatever world launched it.

The tasks (what each set of replicas learns, in which order) are planned in :mod:`hpc_botan.plan.tasks`;
their graphs are read here.  Replicas are dealt to replica slots (R = processes / D): slot s trains replicas s, s + R, s + 2R, …  A finished
replica (``final.pt``) is skipped, an unfinished one resumes from its checkpoint.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch_geometric.data import Data

from hpc_botan.config import Config, LaunchConfig
from hpc_botan.data.dataset import TargetsDataset, learned_targets_of
from hpc_botan.data.descriptors import run_descriptors
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout
from hpc_botan.model.botan import with_temperature
from hpc_botan.plan.targets import index_path, temperatures_and_times
from hpc_botan.plan.tasks import (
    TrainingTask,
    planned_tasks,
    task_finished,
    training_groups,
    training_split,
    training_tasks,
)
from hpc_botan.plan.world import World, detect_world
from hpc_botan.stage import Resources, Stage
from hpc_botan.train.distributed import ProcessGroups, init_process_groups
from hpc_botan.train.trainer import train_replica

log = logging.getLogger("hpc_botan.train")


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
                              descriptors=descriptors, **learned_targets_of(cfg))
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
