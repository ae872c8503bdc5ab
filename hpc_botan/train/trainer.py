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
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.data import Batch, Data
from tqdm import tqdm

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.checkpoint import config_hash, load_checkpoint, restore_rng_states, save_checkpoint
from hpc_botan.io.durable import exclusive_lock, remove_stale_temporaries, write_text_atomic
from hpc_botan.io.rundir import RunLayout
from hpc_botan.metrics import correlation_summary
from hpc_botan.model.botan import OUTPUT_BUFFERS, Botan
from hpc_botan.model.build import architecture_of, build_model
from hpc_botan.model.descriptor_heads import DESCRIPTOR_BUFFERS
from hpc_botan.model.inference import network_inputs, predict_graphs
from hpc_botan.model.reference_weights import in_architecture, load_published_weights, published_weights_file
from hpc_botan.plan.tasks import TrainingTask, seed_for
from hpc_botan.train.augment import augmentation_matrix, transform_edges
from hpc_botan.train.distributed import ProcessGroups
from hpc_botan.train.head_init import fit_descriptor_standardisation, fit_output_heads
from hpc_botan.train.installed import install_replica
from hpc_botan.train.schedule import learning_rate_at

log = logging.getLogger("hpc_botan.train")

METRICS_COLUMNS = ["epoch", "global_step", "train_loss", "val_loss", "val_rho_S", "val_rho_E", "seconds", "lr"]


class TrainingDiverged(UserError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


def epoch_order(n: int, seed: int, replica: int, epoch: int) -> Tensor:
    """The order (n,) in which a replica visits its n training graphs in ``epoch``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed_for("order", seed, replica, epoch)))


def loss_terms(node_pred: Tensor, edge_pred: Tensor, graph: Data, node_weight: float,
               loss_nodes: str = "all", loss_edges: str = "all", node_scale: Tensor | None = None,
               edge_scale: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """(L, MSE(S), MSE(E)) with L = p·MSE(S) + (1 − p)·MSE(E) over the selected nodes and edges.

    Shapes: node_pred (N, K), edge_pred (E, K) against ``graph.y_node`` (N, K), ``graph.y_edge`` (E, K).
    ``loss_nodes="A"`` keeps type-A particles; ``loss_edges="AA"`` the evaluated A–A pairs (|r| < 1.35).
    With ``node_scale`` / ``edge_scale`` (K,) the errors are divided by them column by column: the
    MSE of standardised targets, averaged over the K time points.
    """
    node_err = node_pred - graph.y_node
    edge_err = edge_pred - graph.y_edge
    if node_scale is not None:
        node_err = node_err / node_scale
    if edge_scale is not None:
        edge_err = edge_err / edge_scale
    node_err = node_err ** 2
    edge_err = edge_err ** 2
    if loss_nodes == "A":
        node_err = node_err[graph.node_mask]
    if loss_edges == "AA":
        edge_err = edge_err[graph.edge_mask]
    mse_s, mse_e = node_err.mean(), edge_err.mean()
    return node_weight * mse_s + (1.0 - node_weight) * mse_e, mse_s, mse_e


def evaluate_graphs(model: torch.nn.Module, graphs: Sequence[Data], node_weight: float, loss_nodes: str,
                    loss_edges: str, per_column: dict[str, list[float]] | None = None) -> dict[str, float]:
    """Validation loss (as trained: standardised) and ρ of S_i (type A) and E_ij (A–A, < 1.35).

    ρ is the per-configuration mean, averaged over the model's output columns (time points);
    ``per_column``, if given, receives each column's ρ under "S" and "E".
    """
    if not graphs:
        return {"val_loss": math.nan, "val_rho_S": math.nan, "val_rho_E": math.nan}
    preds = predict_graphs(model, graphs)
    losses = []
    for (node, edge), g in zip(preds, graphs):
        loss, _, _ = loss_terms(torch.from_numpy(node).to(g.y_node), torch.from_numpy(edge).to(g.y_edge), g,
                                node_weight, loss_nodes, loss_edges, model.node_scale.to(g.y_node),
                                model.edge_scale.to(g.y_edge))
        losses.append(float(loss))
    cpu = [g.cpu() for g in graphs]
    rho_s = correlation_summary([p[0] for p in preds], [g.y_node.numpy() for g in cpu],
                                [g.node_mask.numpy() for g in cpu])["mean"]
    rho_e = (correlation_summary([p[1] for p in preds], [g.y_edge.numpy() for g in cpu],
                                 [g.edge_mask.numpy() for g in cpu])["mean"]
             if all(bool(g.has_edge_targets) for g in cpu) else np.array([math.nan]))
    if per_column is not None:  # one ρ per output head (time point), for the TensorBoard log
        per_column["S"] = [float(x) for x in np.atleast_1d(rho_s)]
        per_column["E"] = [float(x) for x in np.atleast_1d(rho_e)]
    return {"val_loss": float(np.mean(losses)), "val_rho_S": float(np.mean(rho_s)), "val_rho_E": float(np.mean(rho_e))}


def selection_score(scores: dict[str, float], select_on: str, node_weight: float) -> float:
    """What best.pt minimises: the validation loss, or −(p·ρ_S + (1 − p)·ρ_E) (a missing ρ drops out)."""
    if select_on == "loss":
        return scores["val_loss"]
    terms = [(w, scores[k]) for w, k in ((node_weight, "val_rho_S"), (1.0 - node_weight, "val_rho_E"))
             if w > 0 and math.isfinite(scores[k])]
    if not terms:
        return math.inf
    return -sum(w * r for w, r in terms) / sum(w for w, _ in terms)


def target_standardisation(graphs: Sequence[Data], node_weight: float, loss_nodes: str = "all",
                           loss_edges: str = "all", task: str = "task", edges: bool = True
                           ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean and spread (K,) of S_i and of E_ij per time point over the items the loss sees (σ).

    A target that the loss ignores (p = 0 for S, p = 1 for E), and E_ij when ``edges`` is false, keeps
    the identity (mean 0, spread 1).
    Raises :class:`UserError` when a target that the loss uses has zero spread.
    """
    k = graphs[0].y_node.shape[1]
    identity = (torch.zeros(k), torch.ones(k))

    def nodes(g: Data) -> Tensor:
        return g.y_node[g.node_mask] if loss_nodes == "A" else g.y_node

    def pairs(g: Data) -> Tensor:
        return g.y_edge[g.edge_mask] if loss_edges == "AA" else g.y_edge

    wanted: dict[str, Callable[[Data], Tensor]] = {}
    if node_weight > 0:
        wanted["S_i"] = nodes
    if edges and node_weight < 1:
        wanted["E_ij"] = pairs
    # NaN-aware: a target with a few non-finite values still gets its scale (the loss then diverges and
    # names the step, which says more than a statistics error would).  Two passes over the graphs, one
    # graph in float64 at a time, so memory does not grow with the data set (graphs may be read on use).
    total = {name: torch.zeros(k, dtype=torch.float64) for name in wanted}
    count = {name: torch.zeros(k, dtype=torch.float64) for name in wanted}
    for g in graphs:
        if "E_ij" in wanted and not bool(g.has_edge_targets):  # a data set without trajectories: S_i only
            del wanted["E_ij"]
        for name, select in wanted.items():
            v = select(g).double()
            finite = torch.isfinite(v)
            total[name] += torch.where(finite, v, 0.0).sum(0)
            count[name] += finite.sum(0)
    mean = {name: total[name] / count[name] for name in wanted}
    spread = {name: torch.zeros(k, dtype=torch.float64) for name in wanted}
    for g in graphs:
        for name, select in wanted.items():
            v = select(g).double()
            spread[name] += torch.where(torch.isfinite(v), (v - mean[name]) ** 2, 0.0).sum(0)
    out = {}
    for name in wanted:
        std = (spread[name] / count[name]).sqrt()
        empty = [c for c in range(k) if not bool(torch.isfinite(std[c]))]
        if empty:
            raise UserError(f"{task}: {name} at output column {empty[0]} has no finite values in the training "
                            "configurations (check the targets: hpc-botan verify)")
        flat = [c for c in range(k) if not float(std[c]) > 0]
        if flat:
            raise UserError(f"{task}: {name} at output column {flat[0]} has zero spread over the training "
                            "configurations; it cannot be standardised (check the targets, or set "
                            "train.standardize=false)")
        out[name] = (mean[name].float(), std.float())
    return (*out.get("S_i", identity), *out.get("E_ij", identity))


def initial_weights(model: Botan, state: dict[str, Tensor]) -> None:
    """Load another task's weights into ``model`` as a starting point.

    The output standardisation (buffers) is not taken over: the task sets its own.  A decoder head
    with one output column initialises every column of a multi-time model.
    """
    own = model.state_dict()
    take = {}
    per_task = (*OUTPUT_BUFFERS, *DESCRIPTOR_BUFFERS)   # each task standardises for its own data
    for key, value in state.items():
        if key in per_task:
            continue
        output_layer = (key.startswith("decoders.") and ".fc3." in key) or key.startswith("descriptor_heads.")
        if key in own and value.shape != own[key].shape and output_layer and value.shape[0] == 1:
            value = value.expand_as(own[key]).clone()
        take[key] = value
    missing = [k for k in own if k not in take and k not in per_task]
    if missing:
        raise UserError(f"initial weights lack {missing[0]!r}")
    model.load_state_dict({**own, **take})


def tensorboard_writer(replica_dir: Path, epoch: int):
    """A TensorBoard writer for ``replica_dir/tensorboard``; on resume, events after ``epoch`` are purged
    (they were written after the checkpoint the replica continues from)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
    except ImportError:
        raise UserError("train.log includes tensorboard, but the tensorboard package is not installed "
                        "(pip install tensorboard, or pip install -e '.[tensorboard]')") from None
    return SummaryWriter(log_dir=str(replica_dir / "tensorboard"), purge_step=epoch if epoch > 0 else None)


def log_epoch(board, row: dict[str, Any], heads: dict[str, list[float]], task: TrainingTask) -> None:
    """One epoch's metrics.csv row (and ρ per head) as TensorBoard scalars at step = epoch + 1."""
    step = int(row["epoch"]) + 1
    for tag, key in (("loss/train", "train_loss"), ("loss/validation", "val_loss"), ("rho/S", "val_rho_S"),
                     ("rho/E", "val_rho_E"), ("learning_rate", "lr")):
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


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS)
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
        return _train_replica(run_dir, cfg, task, replica, train_graphs, val_graphs, groups,
                              show_progress=show_progress)


def _train_replica(run_dir: str | Path, cfg: Config, task: TrainingTask, replica: int, train_graphs: Sequence[Data],
                   val_graphs: Sequence[Data], groups: ProcessGroups, *, show_progress: bool = True) -> Path:
    """:func:`train_replica` under the replica's lock."""
    tr = cfg.train
    world = groups.world
    files = task.replica(run_dir, replica)
    out_dir, final = files.dir, files.final
    arch = architecture_of(cfg, len(task.columns))
    cfg_hash = config_hash(cfg.identity())
    if final.is_file():
        # refuse a foreign one; imported reference weights (import-weights) fit any training settings
        state = load_checkpoint(final, architecture=arch.as_dict())
        if "imported_from" not in state.get("extra", {}):
            load_checkpoint(final, architecture=arch.as_dict(), cfg_hash=cfg_hash)
        return out_dir
    if task.published:
        if world.is_replica_leader:
            install_replica(final, in_architecture(load_published_weights(replica + 1), arch), cfg, task, replica,
                            f"hpc_botan {published_weights_file(replica + 1).name}")
            log.info("%s replica %d: the published network model%d installed (not trained here)",
                     task.name, replica, replica + 1)
        return out_dir
    per_step = world.data_parallel * task.batch_graphs
    steps_per_epoch = len(train_graphs) // per_step
    if steps_per_epoch == 0:
        raise UserError(f"{task.name}: {len(train_graphs)} training configurations for {world.data_parallel} "
                        f"data-parallel rank(s) x {task.batch_graphs} graph(s) per step; lower "
                        f"train.data_parallel or the batch, or add configurations")
    device = groups.device
    seed = tr.seed
    torch.manual_seed(seed_for("init", seed, replica, task.name))  # same on every rank of the replica
    model = build_model(cfg, device, len(task.columns))
    if task.init_from is not None:
        init = RunLayout(run_dir).replica(task.init_from, replica).final
        init_state = load_checkpoint(init)
        init_arch = {**init_state["architecture"], "n_outputs": arch.n_outputs}
        if init_arch != arch.as_dict():
            raise UserError(f"{init}: a network of another architecture {init_state['architecture']}, "
                            f"cannot initialise {arch.as_dict()}")
        initial_weights(model, init_state["model"])
    ckpt_path = files.checkpoint
    if tr.standardize:
        model.set_output_standardisation(*(t.to(device) for t in target_standardisation(
            train_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges, task.name, tr.standardize_edges)))
    heads = bool(arch.n_descriptors)
    fresh = not ckpt_path.is_file()   # a resumed replica's checkpoint holds all of what follows
    if heads and fresh:
        fit_descriptor_standardisation(model, train_graphs, tr.loss_nodes, tr.loss_edges)
    # descriptor heads are fitted from scratch too: the start then contains the ridge baseline
    if (task.init_from is not None or heads) and tr.head_init == "least_squares" and fresh:
        fit = fit_output_heads(model, train_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges,
                               validation=val_graphs if heads else ())
        if world.is_replica_leader:
            log.info("%s replica %d: output heads fitted by least squares, training loss %.4g -> %.4g%s",
                     task.name, replica, fit["loss_before"], fit["loss_after"],
                     f" (descriptor penalties {fit['penalty']})" if heads else "")
    peak_lr = task.learning_rate if task.learning_rate is not None else tr.learning_rate
    optimizer = torch.optim.Adam(model.parameters(), lr=peak_lr, eps=tr.adam_eps)
    total_steps = task.epochs * steps_per_epoch
    warmup_steps = tr.warmup_epochs * steps_per_epoch
    epoch, step, global_step, best_val = 0, 0, 0, math.inf
    resumed_losses: list[float] = []
    metrics_path = files.metrics
    if ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, architecture=arch.as_dict(), cfg_hash=cfg_hash)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng_states(state["rng"])
        epoch, step, global_step = (state["position"][k] for k in ("epoch", "step", "global_step"))
        best_val = state["extra"].get("best_val_loss", math.inf)
        resumed_losses = list(state["extra"].get("epoch_losses", []))
        if world.is_replica_leader:
            log.info("%s replica %d: resuming at epoch %d, step %d", task.name, replica, epoch, step)
    # a metrics row exists only for finished epochs; drop any written after the checkpoint
    rows = [r for r in read_metrics(metrics_path) if int(r["epoch"]) < epoch] if world.is_replica_leader else []
    if heads and fresh and val_graphs and world.is_replica_leader:
        # the fitted start (least squares on network features and descriptors) competes for best.pt:
        # what training then selects is at least as good as it on the validation graphs
        scores = evaluate_graphs(model, val_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges, {})
        best_val = selection_score(scores, tr.select_on, task.node_weight)
        save_checkpoint(files.best, model=model, optimizer=None, architecture=arch.as_dict(),
                        cfg_hash=cfg_hash, position={"epoch": 0, "step": 0, "global_step": 0},
                        extra={"val": scores, "task": asdict(task), "replica": replica})
        log.info("%s replica %d: fitted start, validation %s", task.name, replica,
                 ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))

    trained = model
    if world.data_parallel > 1:
        trained = DistributedDataParallel(model, process_group=groups.slot_group, broadcast_buffers=False,
                                          device_ids=[device.index] if device.type == "cuda" else None)
    forward = torch.compile(trained, dynamic=True) if tr.compile else trained
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=tr.precision == "bf16")

    def checkpoint(at_epoch: int, at_step: int, epoch_losses: list[float]) -> None:
        if world.is_replica_leader:
            save_checkpoint(ckpt_path, model=model, optimizer=optimizer, architecture=arch.as_dict(),
                            cfg_hash=cfg_hash, position={"epoch": at_epoch, "step": at_step,
                                                         "global_step": global_step},
                            extra={"best_val_loss": best_val, "task": asdict(task), "replica": replica,
                                   "epoch_losses": epoch_losses})

    def last_good() -> str:
        if ckpt_path.is_file():
            return f"the last good checkpoint is {ckpt_path}"
        return "no checkpoint had been written yet (check the targets and train.learning_rate)"

    board = tensorboard_writer(out_dir, epoch) if "tensorboard" in tr.log and world.is_replica_leader else None
    progress = None
    if show_progress and world.rank == 0:
        progress = tqdm(total=task.epochs, initial=epoch, desc=f"{task.name} r{replica:02d}", unit="epoch",
                        leave=False)
    while epoch < task.epochs:
        t0 = time.perf_counter()
        order = epoch_order(len(train_graphs), seed, replica, epoch)
        losses, resumed_losses = resumed_losses, []
        while step < steps_per_epoch:
            first = (step * world.data_parallel + world.data_rank) * task.batch_graphs
            batch = []
            for slot, k in enumerate(order[first:first + task.batch_graphs].tolist()):
                g = train_graphs[k]
                gen = torch.Generator().manual_seed(seed_for("augment", seed, replica, epoch, step, world.data_rank,
                                                             slot))
                matrix = augmentation_matrix(tr.augmentation, gen)
                batch.append(g if matrix is None else g.clone().update({"edge_attr": transform_edges(g.edge_attr,
                                                                                                     matrix)}))
            graph = batch[0] if len(batch) == 1 else Batch.from_data_list(batch)
            with autocast:
                node_pred, edge_pred = forward(*network_inputs(model, graph))
            loss, _, _ = loss_terms(node_pred.float(), edge_pred.float(), graph, task.node_weight, tr.loss_nodes,
                                    tr.loss_edges, model.node_scale, model.edge_scale)
            if not groups.all_true(bool(torch.isfinite(loss))):
                raise TrainingDiverged(f"{out_dir}: loss is {float(loss.detach())} at epoch {epoch}, step {step} "
                                       f"(optimiser step {global_step}); stopped, {last_good()}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip)
            if not groups.all_true(bool(torch.isfinite(norm))):
                raise TrainingDiverged(f"{out_dir}: gradient norm is {float(norm)} at epoch {epoch}, step {step} "
                                       f"(optimiser step {global_step}); stopped, {last_good()}")
            lr = learning_rate_at(global_step, total_steps, peak_lr, schedule=tr.lr_schedule,
                                  warmup_steps=warmup_steps, min_fraction=tr.min_lr_fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
            global_step += 1
            if step < steps_per_epoch and global_step % tr.checkpoint_every_steps == 0:
                checkpoint(epoch, step, losses)
        epoch, step = epoch + 1, 0
        if world.is_replica_leader:
            heads: dict[str, list[float]] = {}
            scores = evaluate_graphs(model, val_graphs, task.node_weight, tr.loss_nodes, tr.loss_edges, heads)
            criterion = selection_score(scores, tr.select_on, task.node_weight)
            improved = not val_graphs or criterion < best_val
            if improved:
                best_val = criterion if val_graphs else best_val
                save_checkpoint(files.best, model=model, optimizer=None, architecture=arch.as_dict(),
                                cfg_hash=cfg_hash, position={"epoch": epoch, "step": 0, "global_step": global_step},
                                extra={"val": scores, "task": asdict(task), "replica": replica})
            rows.append({"epoch": epoch - 1, "global_step": global_step,
                         "train_loss": float(np.mean(losses)) if losses else math.nan,
                         **scores, "seconds": round(time.perf_counter() - t0, 3),
                         "lr": optimizer.param_groups[0]["lr"]})
            write_metrics(metrics_path, rows)
            if board is not None:
                log_epoch(board, rows[-1], heads, task)
        checkpoint(epoch, 0, [])
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{np.mean(losses):.4g}")
    if progress is not None:
        progress.close()
    if board is not None:
        board.close()
    if world.is_replica_leader:
        save_checkpoint(final, model=model, optimizer=None, architecture=arch.as_dict(), cfg_hash=cfg_hash,
                        position={"epoch": epoch, "step": 0, "global_step": global_step},
                        extra={"task": asdict(task), "replica": replica, "best_val_loss": best_val})
    groups.all_true(True)  # the replica's ranks leave together
    return out_dir
