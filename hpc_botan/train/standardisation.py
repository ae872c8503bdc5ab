"""A task's starting point: another task's weights, and the output standardisation of the targets the
loss sees (mean and spread per time point).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from hpc_botan.errors import UserError
from hpc_botan.model.botan import OUTPUT_BUFFERS, Botan
from hpc_botan.model.descriptor_heads import DESCRIPTOR_BUFFERS


def loss_items(node_weight: float, loss_nodes: str, loss_edges: str, edges: bool
               ) -> dict[str, Callable[[Data], Tensor]]:
    """Target name → the items of a graph the loss sees (S_i: all or type-A particles; E_ij: all or the
    evaluated A–A pairs), for the targets the loss uses (p > 0 for S, p < 1 for E, E only with ``edges``)."""
    wanted: dict[str, Callable[[Data], Tensor]] = {}
    if node_weight > 0:
        wanted["S_i"] = (lambda g: g.y_node[g.node_mask]) if loss_nodes == "A" else (lambda g: g.y_node)
    if edges and node_weight < 1:
        wanted["E_ij"] = (lambda g: g.y_edge[g.edge_mask]) if loss_edges == "AA" else (lambda g: g.y_edge)
    return wanted


def finite_mean_and_spread(graphs: Sequence[Data], wanted: dict[str, Callable[[Data], Tensor]], k: int
                           ) -> dict[str, tuple[Tensor, Tensor]]:
    """Target name → (mean, spread) (K,) float64 over the finite selected items of every graph.

    NaN-aware: a target with a few non-finite values still gets its scale (the loss then diverges and
    names the step, which says more than a statistics error would).  Two passes over the graphs, one
    graph in float64 at a time, so memory does not grow with the data set (graphs may be read on use).
    A data set without trajectories has no E_ij: that target is dropped at the first such graph.
    """
    wanted = dict(wanted)
    total = {name: torch.zeros(k, dtype=torch.float64) for name in wanted}
    count = {name: torch.zeros(k, dtype=torch.float64) for name in wanted}
    for g in graphs:
        if "E_ij" in wanted and not bool(g.has_edge_targets):
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
    return {name: (mean[name], (spread[name] / count[name]).sqrt()) for name in wanted}


def check_spread(std: Tensor, name: str, task: str) -> None:
    """Refuse (one line) a target column with no finite values or zero spread: it cannot be standardised."""
    empty = [c for c in range(std.shape[0]) if not bool(torch.isfinite(std[c]))]
    if empty:
        raise UserError(f"{task}: {name} at output column {empty[0]} has no finite values in the training "
                        "configurations (check the targets: hpc-botan verify)")
    flat = [c for c in range(std.shape[0]) if not float(std[c]) > 0]
    if flat:
        raise UserError(f"{task}: {name} at output column {flat[0]} has zero spread over the training "
                        "configurations; it cannot be standardised (check the targets, or set "
                        "train.standardize=false)")


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
    out = {}
    for name, (mean, std) in finite_mean_and_spread(graphs, loss_items(node_weight, loss_nodes, loss_edges, edges),
                                                    k).items():
        check_spread(std, name, task)
        out[name] = (mean.float(), std.float())
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
