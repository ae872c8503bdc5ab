"""Training of one model replica on one task (a temperature, a time point and a loss weight p).

One optimiser step = one full graph per data-parallel rank (``batch_graphs`` > 1 stacks whole
graphs; no graph is ever cut).  Loss L = p·MSE(S) + (1 − p)·MSE(E); Adam; gradient-norm clip.
Everything that varies from step to step is derived from seeds and the position in training:

* the order of the training graphs in epoch e: a permutation seeded by (seed, replica, e);
  with D data-parallel ranks, rank d takes graphs d, D + d, 2D + d, … of it (steps per epoch =
  n_train // (D · batch_graphs), the same on every rank);
* the augmentation of a graph: a generator seeded by (seed, replica, e, step, d, slot in batch).

So a replica resumed from a checkpoint (model, optimiser, position) continues exactly as if it
had never stopped.  Only the replica's first rank writes files:

    RUN_DIR/train/<task>/replica-XX/
        checkpoint.pt   latest state, every ``checkpoint_every_steps`` and at every epoch end
        best.pt         weights with the lowest validation loss so far (model selection)
        final.pt        weights after the last epoch; its presence marks the replica finished
        metrics.csv     one row per epoch: losses, validation ρ of S_i and E_ij, seconds
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import Data
from tqdm import tqdm

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.checkpoint import (
    architecture_difference,
    check_checkpoint,
    config_hash,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from hpc_botan.io.durable import exclusive_lock, remove_stale_temporaries, write_text_atomic
from hpc_botan.io.rundir import RunLayout
from hpc_botan.learned_targets import DEFAULT_EDGE_TARGET, DEFAULT_NODE_TARGET
from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.build import architecture_of, build_model
from hpc_botan.model.reference_weights import extends, in_architecture, load_published_weights, published_weights_file
from hpc_botan.plan.tasks import TrainingTask, seed_for
from hpc_botan.train.distributed import ProcessGroups
from hpc_botan.train.head_init import fit_descriptor_standardisation, fit_output_heads
from hpc_botan.train.installed import install_replica
from hpc_botan.train.schedule import learning_rate_at
from hpc_botan.train.standardisation import initial_weights, target_standardisation
from hpc_botan.train.step import StepGraphs, evaluate_graphs, rho_keys, selection_score, step_loss

log = logging.getLogger("hpc_botan.train")

def metrics_columns(labels: tuple[str, str]) -> list[str]:
    """The columns of a replica's metrics.csv, for its (node, edge) learned targets' labels."""
    return ["epoch", "global_step", "train_loss", "val_loss", *rho_keys(labels), "seconds", "lr"]


#: The columns for the default targets (S_i, E_ij).
METRICS_COLUMNS = metrics_columns((DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET))


class TrainingDiverged(UserError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


def tensorboard_writer(replica_dir: Path, epoch: int):
    """A TensorBoard writer for ``replica_dir/tensorboard``; on resume, events after ``epoch`` are purged
    (they were written after the checkpoint the replica continues from)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
    except ImportError:
        raise UserError("train.log includes tensorboard, but the tensorboard package is not installed "
                        "(pip install tensorboard, or pip install -e '.[tensorboard]')") from None
    return SummaryWriter(log_dir=str(replica_dir / "tensorboard"), purge_step=epoch if epoch > 0 else None)


def log_epoch(board, row: dict[str, Any], heads: dict[str, list[float]], task: TrainingTask,
              labels: tuple[str, str] = (DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET)) -> None:
    """One epoch's metrics.csv row (and ρ per head) as TensorBoard scalars at step = epoch + 1."""
    step = int(row["epoch"]) + 1
    rho = [(f"rho/{label}", key) for label, key in zip(labels, rho_keys(labels))]
    for tag, key in (("loss/train", "train_loss"), ("loss/validation", "val_loss"), *rho, ("learning_rate", "lr")):
        if math.isfinite(float(row[key])):
            board.add_scalar(tag, float(row[key]), step)
    if len(task.columns) > 1:  # a multi-time network: one curve per time point
        for target, values in heads.items():
            for column, value in zip(task.columns, values):
                if math.isfinite(value):
                    board.add_scalar(f"rho_per_time_point/{target}_t{column:02d}", value, step)
    board.flush()


def read_metrics(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def write_metrics(path: Path, rows: list[dict[str, Any]], columns: Sequence[str] = METRICS_COLUMNS) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def train_replica(run_dir: str | Path, cfg: Config, task: TrainingTask, replica: int, train_graphs: Sequence[Data],
                  val_graphs: Sequence[Data], groups: ProcessGroups, *, show_progress: bool = True) -> Path:
    """Train (or resume, or skip if finished) one replica; returns its directory.

    Every rank of the replica's slot calls this with the same arguments; graphs are already on
    ``groups.device``.  Raises :class:`TrainingDiverged` on a NaN/inf loss or gradient, and
    :class:`UserError` if another process (a second ``train`` on the same run) holds the replica.
    """
    files = task.replica(run_dir, replica)
    with contextlib.ExitStack() as held:
        refused = None
        if groups.world.is_replica_leader:
            try:
                held.enter_context(exclusive_lock(files.lock, f"{task.name} replica {replica} of {run_dir}"))
            except UserError as exc:
                refused = str(exc)
        if not groups.all_true(refused is None):  # the slot's other ranks stop with their leader
            raise UserError(refused or f"{task.name} replica {replica}: its leading rank could not take the lock")
        if groups.world.is_replica_leader:  # under the lock: temporaries here belong to killed writers
            for path in files.files():
                remove_stale_temporaries(path)
        return ReplicaTraining(run_dir, cfg, task, replica, train_graphs, val_graphs, groups, show_progress).run()


def stored_architecture(state: dict[str, Any], path: Path) -> BotanArchitecture:
    """The architecture a checkpoint read by :func:`load_checkpoint` stores (one-line error where it is none)."""
    try:
        return BotanArchitecture.from_dict(state["architecture"])
    except (KeyError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None


@dataclass
class Position:
    """Where a replica's training is: the epoch, the step in it and the optimiser steps so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ReplicaTraining:
    """The loop of one replica's training under its lock: model, optimiser, position, model selection,
    checkpoints and logs.  What one step computes is :mod:`hpc_botan.train.step`'s."""

    def __init__(self, run_dir: str | Path, cfg: Config, task: TrainingTask, replica: int,
                 train_graphs: Sequence[Data], val_graphs: Sequence[Data], groups: ProcessGroups, show_progress: bool):
        self.run_dir, self.cfg, self.tr, self.task, self.replica = run_dir, cfg, cfg.train, task, replica
        self.train_graphs, self.val_graphs, self.groups, self.world = train_graphs, val_graphs, groups, groups.world
        self.show_progress = show_progress
        self.files = task.replica(run_dir, replica)
        self.arch = architecture_of(cfg, len(task.columns))
        self.cfg_hash = config_hash(cfg.identity())
        self.position = Position()
        self.best_val = math.inf
        self.rows: list[dict[str, Any]] = []
        self.resumed_losses: list[float] = []
        self.steps = StepGraphs(train_graphs, task.batch_graphs, self.world.data_parallel, self.world.data_rank,
                                self.tr.augmentation, self.tr.seed, replica)
        self.peak_lr = task.learning_rate if task.learning_rate is not None else self.tr.learning_rate
        self.labels = (self.tr.node_target, self.tr.edge_target)   # the learned targets' labels

    @property
    def leader(self) -> bool:
        return self.world.is_replica_leader

    # ------------------------------------------------------------------ before the first step

    def finished(self) -> bool:
        """Whether the replica is finished (its final.pt belongs to this run, or was imported)."""
        if not self.files.final.is_file():
            return False
        # refuse a foreign one; imported reference weights (import-weights) fit any training settings, and
        # any architecture that only adds to theirs (e.g. model.descriptors: heads set after the import):
        # the fine-tuning start extends them (load_initial_weights)
        state = load_checkpoint(self.files.final)
        if "imported_from" in state.get("extra", {}) and extends(self.arch, stored_architecture(state, self.files.final)):
            return True
        check_checkpoint(state, self.files.final, architecture=self.arch.as_dict(), cfg_hash=self.cfg_hash)
        return True

    def install_published(self) -> None:
        """The replica is the shipped published network ``model{replica + 1}``: written, not trained."""
        if self.leader:
            k = self.replica + 1
            install_replica(self.files.final, in_architecture(load_published_weights(k), self.arch), self.cfg,
                            self.task, self.replica, f"hpc_botan {published_weights_file(k).name}")
            log.info("%s replica %d: the published network model%d installed (not trained here)",
                     self.task.name, self.replica, k)

    def check_steps(self) -> None:
        if self.steps.steps_per_epoch == 0:
            raise UserError(f"{self.task.name}: {len(self.train_graphs)} training configurations for "
                            f"{self.world.data_parallel} data-parallel rank(s) x {self.task.batch_graphs} graph(s) "
                            "per step; lower train.data_parallel or the batch, or add configurations")

    def build(self) -> None:
        """The network at its start: initialised (seeded alike on every rank), from the task it starts
        from, standardised for this task's targets, output heads fitted where asked."""
        tr, task, device = self.tr, self.task, self.groups.device
        torch.manual_seed(seed_for("init", tr.seed, self.replica, task.name))  # same on every rank of the replica
        self.model = build_model(self.cfg, device, len(task.columns), task.model)
        self.model.checkpoint_activations = self.cfg.train.checkpoint_activations
        if task.init_from is not None:
            self.load_initial_weights()
        if tr.standardize:
            self.model.set_output_standardisation(*(t.to(device) for t in target_standardisation(
                self.train_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges, task.name, tr.standardize_edges)))
        self.fresh = not self.files.checkpoint.is_file()   # a resumed replica's checkpoint holds what follows
        self.heads = bool(self.arch.n_descriptors)
        if self.heads and self.fresh:
            fit_descriptor_standardisation(self.model, self.train_graphs, tr.loss_nodes, tr.loss_edges)
        # descriptor heads are fitted from scratch too: the start then contains the ridge baseline
        if (task.init_from is not None or self.heads) and tr.head_init == "least_squares" and self.fresh:
            self.fit_heads()

    def load_initial_weights(self) -> None:
        init = RunLayout(self.run_dir).replica(self.task.init_from, self.replica).final
        state = load_checkpoint(init)
        stored = stored_architecture(state, init)
        weights = state["model"]
        if not extends(self.arch, stored):
            raise UserError(f"{init}: a network of another architecture ({architecture_difference(stored.as_dict(), self.arch.as_dict())}), "
                            "cannot initialise this run's model")
        if replace(stored, n_outputs=self.arch.n_outputs) != self.arch:
            # what the start lacks (separate decoders, descriptor heads, a temperature input) starts as
            # the function it computed: copies of its decoder, heads at zero
            network = Botan(stored)
            network.load_state_dict(weights)
            weights = in_architecture(network, replace(self.arch, n_outputs=stored.n_outputs)).state_dict()
        initial_weights(self.model, weights)

    def fit_heads(self) -> None:
        tr = self.tr
        fit = fit_output_heads(self.model, self.train_graphs, self.task.node_weight, tr.loss_nodes, tr.loss_edges,
                               validation=self.val_graphs if self.heads else ())
        if self.leader:
            log.info("%s replica %d: output heads fitted by least squares, training loss %.4g -> %.4g%s",
                     self.task.name, self.replica, fit["loss_before"], fit["loss_after"],
                     f" (descriptor penalties {fit['penalty']})" if self.heads else "")

    def restore(self) -> None:
        """The optimiser, and on resume everything the checkpoint holds (weights, optimiser, RNG, position)."""
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.peak_lr, eps=self.tr.adam_eps)
        if self.files.checkpoint.is_file():
            state = load_checkpoint(self.files.checkpoint, architecture=self.arch.as_dict(), cfg_hash=self.cfg_hash)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            restore_rng_states(state["rng"])
            self.position = Position(**{k: state["position"][k] for k in ("epoch", "step", "global_step")})
            self.best_val = state["extra"].get("best_val_loss", math.inf)
            self.resumed_losses = list(state["extra"].get("epoch_losses", []))
            if self.leader:
                log.info("%s replica %d: resuming at epoch %d, step %d", self.task.name, self.replica,
                         self.position.epoch, self.position.step)
        # a metrics row exists only for finished epochs; drop any written after the checkpoint
        if self.leader:
            self.rows = [r for r in read_metrics(self.files.metrics) if int(r["epoch"]) < self.position.epoch]

    def score_fitted_start(self) -> None:
        """The fitted start (least squares on network features and descriptors) competes for best.pt:
        what training then selects is at least as good as it on the validation graphs."""
        if not (self.heads and self.fresh and self.val_graphs and self.leader):
            return
        tr = self.tr
        scores = evaluate_graphs(self.model, self.val_graphs, self.task.node_weight, tr.loss_nodes, tr.loss_edges, {},
                                 self.labels)
        self.best_val = selection_score(scores, tr.select_on, self.task.node_weight, self.labels)
        self.save(self.files.best, with_optimizer=False, position=Position(), extra={"val": scores})
        log.info("%s replica %d: fitted start, validation %s", self.task.name, self.replica,
                 ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

    # ------------------------------------------------------------------ the loop

    def save(self, path: Path, *, with_optimizer: bool, position: Position, extra: dict[str, Any]) -> None:
        save_checkpoint(path, model=self.model, optimizer=self.optimizer if with_optimizer else None,
                        architecture=self.arch.as_dict(), cfg_hash=self.cfg_hash, position=position.as_dict(),
                        extra={"task": asdict(self.task), "replica": self.replica, **extra})

    def checkpoint(self, epoch_losses: list[float]) -> None:
        if self.leader:
            self.save(self.files.checkpoint, with_optimizer=True, position=self.position,
                      extra={"best_val_loss": self.best_val, "epoch_losses": epoch_losses})

    def last_good(self) -> str:
        if self.files.checkpoint.is_file():
            return f"the last good checkpoint is {self.files.checkpoint}"
        return "no checkpoint had been written yet (check the targets and train.learning_rate)"

    def refuse_non_finite(self, value: Tensor, what: str) -> None:
        """Every rank of the slot stops together when one of them sees a NaN or infinite ``what``."""
        if not self.groups.all_true(bool(torch.isfinite(value))):
            p = self.position
            raise TrainingDiverged(f"{self.files.dir}: {what} is {float(value.detach())} at epoch {p.epoch}, step "
                                   f"{p.step} (optimiser step {p.global_step}); stopped, {self.last_good()}")

    def optimiser_step(self, forward: Any, autocast: Any) -> float:
        """One step: the step's graphs forward and backward, clipped, at the schedule's learning rate."""
        tr, p = self.tr, self.position
        graph = self.steps.at(p.epoch, p.step)
        loss = step_loss(forward, self.model, graph, self.task.node_weight, tr.loss_nodes, tr.loss_edges, autocast)
        self.refuse_non_finite(loss, "loss")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.refuse_non_finite(torch.nn.utils.clip_grad_norm_(self.model.parameters(), tr.grad_clip), "gradient norm")
        per_epoch = self.steps.steps_per_epoch
        lr = learning_rate_at(p.global_step, self.task.epochs * per_epoch, self.peak_lr, schedule=tr.lr_schedule,
                              warmup_steps=tr.warmup_epochs * per_epoch, min_fraction=tr.min_lr_fraction)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        return float(loss.detach())

    def train_epoch(self, forward: Any, autocast: Any) -> list[float]:
        losses, self.resumed_losses = self.resumed_losses, []
        p, per_epoch = self.position, self.steps.steps_per_epoch
        while p.step < per_epoch:
            losses.append(self.optimiser_step(forward, autocast))
            p.step += 1
            p.global_step += 1
            if p.step < per_epoch and p.global_step % self.tr.checkpoint_every_steps == 0:
                self.checkpoint(losses)
        p.epoch, p.step = p.epoch + 1, 0
        return losses

    def end_epoch(self, losses: list[float], seconds: float, board: Any) -> None:
        """Validation, model selection (best.pt) and the epoch's metrics row (the replica's leader only)."""
        if not self.leader:
            return
        tr, task = self.tr, self.task
        heads: dict[str, list[float]] = {}
        scores = evaluate_graphs(self.model, self.val_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges, heads,
                                 self.labels)
        criterion = selection_score(scores, tr.select_on, task.node_weight, self.labels)
        if not self.val_graphs or criterion < self.best_val:
            self.best_val = criterion if self.val_graphs else self.best_val
            self.save(self.files.best, with_optimizer=False, position=Position(self.position.epoch, 0,
                                                                               self.position.global_step),
                      extra={"val": scores})
        self.rows.append({"epoch": self.position.epoch - 1, "global_step": self.position.global_step,
                          "train_loss": float(np.mean(losses)) if losses else math.nan,
                          **scores, "seconds": round(seconds, 3), "lr": self.optimizer.param_groups[0]["lr"]})
        write_metrics(self.files.metrics, self.rows, metrics_columns(self.labels))
        if board is not None:
            log_epoch(board, self.rows[-1], heads, task, self.labels)

    def wrapped(self) -> tuple[Any, Any]:
        """(what the steps call forward: the model, DDP-wrapped across the slot's ranks and compiled where
        asked; the bf16 autocast context, disabled in fp32)."""
        model, device = self.model, self.groups.device
        trained = model
        if self.world.data_parallel > 1:
            trained = DistributedDataParallel(model, process_group=self.groups.slot_group, broadcast_buffers=False,
                                              device_ids=[device.index] if device.type == "cuda" else None)
        forward = torch.compile(trained, dynamic=True) if self.tr.compile else trained
        return forward, torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.tr.precision == "bf16")

    def loop(self) -> None:
        """Every remaining epoch, with a checkpoint at each epoch's end."""
        forward, autocast = self.wrapped()
        board = (tensorboard_writer(self.files.dir, self.position.epoch)
                 if "tensorboard" in self.tr.log and self.leader else None)
        progress = None
        if self.show_progress and self.world.rank == 0:
            progress = tqdm(total=self.task.epochs, initial=self.position.epoch, leave=False, unit="epoch",
                            desc=f"{self.task.name} r{self.replica:02d}")
        while self.position.epoch < self.task.epochs:
            t0 = time.perf_counter()
            losses = self.train_epoch(forward, autocast)
            self.end_epoch(losses, time.perf_counter() - t0, board)
            self.checkpoint([])
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{np.mean(losses):.4g}")
        for closing in (progress, board):
            if closing is not None:
                closing.close()

    def run(self) -> Path:
        if self.finished():
            return self.files.dir
        if self.task.published:
            self.install_published()
            return self.files.dir
        self.check_steps()
        self.build()
        self.restore()
        self.score_fitted_start()
        self.loop()
        if self.leader:
            self.save(self.files.final, with_optimizer=False, position=Position(self.position.epoch, 0,
                                                                                self.position.global_step),
                      extra={"best_val_loss": self.best_val})
        self.groups.all_true(True)  # the replica's ranks leave together
        return self.files.dir
