"""One training step apart from the loop that repeats it: the loss and the validation metrics of graphs,
and the graphs a step sees (their order in an epoch, their augmentation, batched).

Nothing here knows of files, checkpoints, process groups or schedules: the loop
(:mod:`hpc_botan.train.trainer`) owns those.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from hpc_botan.learned_targets import DEFAULT_EDGE_TARGET, DEFAULT_NODE_TARGET
from hpc_botan.metrics import correlation_summary
from hpc_botan.model.inference import network_inputs, predict_graphs
from hpc_botan.plan.tasks import seed_for
from hpc_botan.train.augment import augmentation_matrix, transform_edges


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


def rho_keys(labels: tuple[str, str]) -> tuple[str, str]:
    """The validation-ρ keys (metrics.csv columns) of a network's (node, edge) learned targets."""
    return f"val_rho_{labels[0]}", f"val_rho_{labels[1]}"


def evaluate_graphs(model: torch.nn.Module, graphs: Sequence[Data], node_weight: float, loss_nodes: str,
                    loss_edges: str, per_column: dict[str, list[float]] | None = None,
                    labels: tuple[str, str] = (DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET)) -> dict[str, float]:
    """Validation loss (as trained: standardised) and ρ of the node target (S_i; on each graph's node
    mask, type A) and the edge target (E_ij; edge mask, A–A closer than 1.35), keyed by
    :func:`rho_keys` of their ``labels`` (hpc_botan.learned_targets).

    ρ is the per-configuration mean, averaged over the model's output columns (time points);
    ``per_column``, if given, receives each column's ρ under the two labels.
    """
    node_key, edge_key = rho_keys(labels)
    if not graphs:
        return {"val_loss": math.nan, node_key: math.nan, edge_key: math.nan}
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
        per_column[labels[0]] = [float(x) for x in np.atleast_1d(rho_s)]
        per_column[labels[1]] = [float(x) for x in np.atleast_1d(rho_e)]
    return {"val_loss": float(np.mean(losses)), node_key: float(np.mean(rho_s)), edge_key: float(np.mean(rho_e))}


def selection_score(scores: dict[str, float], select_on: str, node_weight: float,
                    labels: tuple[str, str] = (DEFAULT_NODE_TARGET, DEFAULT_EDGE_TARGET)) -> float:
    """What best.pt minimises: the validation loss, or −(p·ρ_node + (1 − p)·ρ_edge) (a missing ρ drops out)."""
    if select_on == "loss":
        return scores["val_loss"]
    terms = [(w, scores[k]) for w, k in zip((node_weight, 1.0 - node_weight), rho_keys(labels))
             if w > 0 and math.isfinite(scores[k])]
    if not terms:
        return math.inf
    return -sum(w * r for w, r in terms) / sum(w for w, _ in terms)


class StepGraphs:
    """The graphs each optimiser step of one replica sees on one data-parallel rank.

    Epoch e visits the training graphs in :func:`epoch_order` (seed, replica, e); with D ranks, rank d
    takes graphs d, D + d, 2D + d, … of it, ``batch_graphs`` at a time (steps per epoch =
    n_train // (D · batch_graphs), the same on every rank).  Each graph of a step is augmented by a
    generator seeded by (seed, replica, e, step, d, slot in the batch), so a resumed replica sees
    exactly what it would have seen.
    """

    def __init__(self, graphs: Sequence[Data], batch_graphs: int, data_parallel: int, data_rank: int,
                 augmentation: str, seed: int, replica: int):
        self.graphs, self.batch_graphs, self.augmentation = graphs, batch_graphs, augmentation
        self.data_parallel, self.data_rank, self.seed, self.replica = data_parallel, data_rank, seed, replica
        self._order: tuple[int, Tensor] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.graphs) // (self.data_parallel * self.batch_graphs)

    def order(self, epoch: int) -> Tensor:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.graphs), self.seed, self.replica, epoch))
        return self._order[1]

    def at(self, epoch: int, step: int) -> Data:
        """The (augmented, batched) graph of optimiser step ``step`` of ``epoch`` on this rank."""
        first = (step * self.data_parallel + self.data_rank) * self.batch_graphs
        batch = []
        for slot, k in enumerate(self.order(epoch)[first:first + self.batch_graphs].tolist()):
            g = self.graphs[k]
            gen = torch.Generator().manual_seed(seed_for("augment", self.seed, self.replica, epoch, step,
                                                         self.data_rank, slot))
            matrix = augmentation_matrix(self.augmentation, gen)
            batch.append(g if matrix is None else g.clone().update({"edge_attr": transform_edges(g.edge_attr, matrix)}))
        return batch[0] if len(batch) == 1 else Batch.from_data_list(batch)


def step_loss(forward: Callable[..., tuple[Tensor, Tensor]], model: torch.nn.Module, graph: Data, node_weight: float,
              loss_nodes: str, loss_edges: str, autocast: Any) -> Tensor:
    """The training loss of one step's graph: ``forward`` (the model, or its DDP / compiled wrapper) under
    ``autocast``, scored by :func:`loss_terms` in float32 against the model's standardisation."""
    with autocast:
        node_pred, edge_pred = forward(*network_inputs(model, graph))
    loss, _, _ = loss_terms(node_pred.float(), edge_pred.float(), graph, node_weight, loss_nodes, loss_edges,
                            model.node_scale, model.edge_scale)
    return loss
