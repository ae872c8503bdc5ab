"""Least-squares initialisation of the output heads before fine-tuning (linear probe, then fine-tune).

A fine-tuning starts from pretrained weights whose encoder and message passing already describe
the structure, but whose last decoder layer was fitted to another target (the pretraining's
short-time E_ij) or, for S_i, never trained at all.  Gradient steps from there first spend
their budget, and disturb the pretrained features, just to move that one linear layer.  Its best
value given everything below it is a weighted least-squares problem, solved here exactly:

    minimise over (W, b) of decoder d:   mean over graphs of
        p · mean_nodes (φ_v·W + b − z_v)² + (1 − p) · mean_edges (φ_e·W + b − z_e)²   (+ λ · |W|²)

with φ the decoder's hidden features (after its second ReLU, width W) and z the standardised
targets, z = (y − offset) / scale, the quantity the training loss compares.  That is exactly the
training loss (without augmentation) as a function of the last layer, plus a small ridge penalty
for conditioning.  A shared decoder (reference) sees node and edge rows together; separate
decoders each see their own.  Every output column (time point) is solved on its own.

**Descriptor heads** (``model.descriptors: heads``, :mod:`hpc_botan.model.descriptor_heads`) are linear
in the standardised descriptors D̃_i (nodes) and pair features P̃_ij (edges) and add to the same
outputs, so they join the same problem: a node row is [φ_v, 1, D̃_i], an edge row [φ_e, 1, P̃_ij].
Their weights get the ridge baseline's penalty, λ · |w|² per item (scaled by each part's share of the
loss, p or 1 − p), with λ chosen per output column from :data:`PENALTIES` by the loss on the
validation graphs (:data:`FALLBACK_PENALTY` without any), as the baseline chooses its own.  With
zero network features the problem is the ridge baseline's, so the fitted start contains it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from hpc_botan.errors import UserError
from hpc_botan.model.botan import Botan
from hpc_botan.model.descriptor_heads import pair_features
from hpc_botan.model.inference import network_inputs

#: λ relative to the mean diagonal of the weighted normal matrix: enough to keep a hidden unit
#: that is zero everywhere (dead ReLU) from making the system singular, too small to bias the fit.
RELATIVE_PENALTY = 1.0e-4
#: Penalties per item on the standardised descriptor features, the grid of the ridge baseline
#: (:data:`hpc_botan.baselines.ridge.PENALTIES`), and the one used without validation graphs.
PENALTIES = tuple(float(x) for x in np.logspace(-6, 2, 17))
FALLBACK_PENALTY = 1.0e-3
#: Edges per block when the edge rows are formed (P̃ has about 400 columns: bounded memory).
EDGE_BLOCK = 16_384


def _embeddings(model: Botan, graph: Data) -> tuple[Tensor, Tensor]:
    """Final node and edge embeddings (N, W), (E, W): the inputs of the decoders."""
    seen: list[Tensor] = []
    hooks = [d.register_forward_pre_hook(lambda _m, args: seen.append(args[0])) for d in model.decoders]
    try:
        model(*network_inputs(model, graph))
    finally:
        for hook in hooks:
            hook.remove()
    return seen[0], seen[1]  # the node decoder is called first, then the edge decoder


@dataclass
class _Layout:
    """Where each part of a decoder's unknowns lies: [fc3 weights (W), bias, node head, (its bias), pair head]."""

    width: int
    node_head: tuple[int, int] | None   # [start, stop) of the node head's weights, if this system fits it
    pair_head: tuple[int, int] | None
    node_bias: int | None = None        # the node head's bias: where one decoder serves nodes and edges

    @property
    def size(self) -> int:
        ends = [self.width + 1] + [part[1] for part in (self.node_head, self.pair_head) if part]
        return max(ends + ([self.node_bias + 1] if self.node_bias is not None else []))


@dataclass
class _Sums:
    """Σ ω φ̃ φ̃ᵀ (K, n, n), Σ ω φ̃ z (K, n) and Σ ω z² (K,) of one decoder's rows."""

    normal: Tensor
    rhs: Tensor
    square: Tensor

    def loss(self, theta: Tensor) -> Tensor:
        """θᵀAθ − 2θᵀb + Σωz² per column (K,): the weighted squared error without a second pass."""
        return torch.einsum("kn,knm,km->k", theta, self.normal, theta) - 2 * (theta * self.rhs).sum(1) + self.square


def _layouts(model: Botan, parts: list[tuple[str, int, float]]) -> dict[int, _Layout]:
    heads = getattr(model, "descriptor_heads", None)
    w = model.arch.width
    out = {}
    for d in sorted({d for _, d, _ in parts}):
        names = [name for name, dd, _ in parts if dd == d]
        start, node, pair, bias = w + 1, None, None, None
        if heads is not None and "node" in names:
            node, start = (start, start + heads.node.in_features), start + heads.node.in_features
            if "edge" in names:   # a shared decoder: nodes get their own intercept (else it is the decoder's bias)
                bias, start = start, start + 1
        if heads is not None and "edge" in names:
            pair = (start, start + heads.pair.in_features)
        out[d] = _Layout(w, node, pair, bias)
    return out


def _head_inputs(model: Botan, graph: Data) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """What the descriptor heads of ``model`` read on ``graph`` (:meth:`Botan.head_inputs`)."""
    with torch.no_grad():
        return model.head_inputs(graph.x, graph.edge_index, graph.edge_attr, graph.descriptors)


def _rows(model: Botan, inputs: tuple, name: str, d: int, layout: _Layout, h: Tensor, mask) -> list[Tensor]:
    """The least-squares rows (M, n) float64 of the items ``mask`` of one graph (nodes or edges), in blocks;
    ``inputs``: what the descriptor heads read on that graph (:func:`_head_inputs`; Nones without heads)."""
    f64 = {"dtype": torch.float64, "device": h.device}
    heads = getattr(model, "descriptor_heads", None)
    descriptors, edge_index, edge_attr, extra = inputs
    items = torch.arange(h.shape[0], device=h.device)[mask]
    blocks = []
    step = EDGE_BLOCK if name == "edge" else max(len(items), 1)
    for first in range(0, len(items), step):
        sel = items[first:first + step]
        rows = torch.zeros(len(sel), layout.size, **f64)
        rows[:, :layout.width] = model.decoders[d].hidden(h[sel]).double()
        rows[:, layout.width] = 1.0
        if name == "node" and layout.node_head is not None:
            a, b = layout.node_head
            rows[:, a:b] = heads.standardised_node_features(descriptors[sel]).double()
            if layout.node_bias is not None:
                rows[:, layout.node_bias] = 1.0
        if name == "edge" and layout.pair_head is not None:
            a, b = layout.pair_head
            rows[:, a:b] = heads.standardised_pair_features(descriptors, edge_index[:, sel], edge_attr[sel],
                                                            None if extra is None else extra[sel]).double()
        blocks.append(rows)
    return blocks


def _accumulate(model: Botan, graphs: Sequence[Data], parts, layouts, loss_nodes: str, loss_edges: str
                ) -> dict[int, _Sums]:
    k = model.arch.n_outputs
    f64 = {"dtype": torch.float64, "device": model.node_offset.device}
    sums = {d: _Sums(torch.zeros(k, lay.size, lay.size, **f64), torch.zeros(k, lay.size, **f64),
                     torch.zeros(k, **f64)) for d, lay in layouts.items()}
    heads = hasattr(model, "descriptor_heads")
    for g in graphs:
        h_node, h_edge = _embeddings(model, g)
        inputs = _head_inputs(model, g) if heads else (None,) * 4   # once per graph: the forces are not free
        for name, d, weight in parts:
            mask, y = _items(g, name, loss_nodes, loss_edges)
            h = h_node if name == "node" else h_edge
            z = ((y - getattr(model, f"{name}_offset")) / getattr(model, f"{name}_scale")).double()
            # one graph per step: the epoch's loss is the mean over graphs of each graph's means
            omega = weight / (len(graphs) * max(z.shape[0], 1))
            s, done = sums[d], 0
            for rows in _rows(model, inputs, name, d, layouts[d], h, mask):
                zb = z[done:done + rows.shape[0]]
                done += rows.shape[0]
                if bool(torch.isfinite(zb).all()):  # the usual case: one normal matrix serves every column
                    s.normal += omega * (rows.T @ rows)
                    s.rhs += omega * (rows.T @ zb).T
                    s.square += omega * (zb * zb).sum(0)
                    continue
                for c in range(k):
                    ok = torch.isfinite(zb[:, c])
                    p, zc = rows[ok], zb[ok, c]
                    s.normal[c] += omega * (p.T @ p)
                    s.rhs[c] += omega * (p.T @ zc)
                    s.square[c] += omega * float(zc @ zc)
    return sums


def _solve(sums: _Sums, layout: _Layout, parts, d: int, penalty: float) -> Tensor:
    """θ (K, n) minimising the weighted loss plus the penalties (``penalty``: λ of the descriptor heads)."""
    w = layout.width
    solutions = []
    # one column at a time: a batched solve runs MKL's LU inside torch's parallel loop, which has hung
    # (nested OpenMP teams) in a process whose thread count was changed
    for c in range(sums.normal.shape[0]):
        a = sums.normal[c].clone()
        a[:w, :w] += RELATIVE_PENALTY * float(torch.diagonal(a)[:w].mean()) * torch.eye(w, dtype=a.dtype,
                                                                                         device=a.device)
        for name, part in (("node", layout.node_head), ("edge", layout.pair_head)):
            if part is not None:  # the bias is never penalised
                share = sum(weight for n, dd, weight in parts if n == name and dd == d)
                idx = torch.arange(*part, device=a.device)
                a[idx, idx] += share * penalty
        solutions.append(torch.linalg.solve(a, sums.rhs[c]))
    return torch.stack(solutions)


def _set(model: Botan, d: int, layout: _Layout, theta: Tensor) -> None:
    w = layout.width
    model.decoders[d].fc3.weight.copy_(theta[:, :w].float())
    model.decoders[d].fc3.bias.copy_(theta[:, w].float())
    heads = getattr(model, "descriptor_heads", None)
    if layout.node_head is not None:
        heads.node.weight.copy_(theta[:, slice(*layout.node_head)].float())
    if layout.node_bias is not None:
        heads.node.bias.copy_(theta[:, layout.node_bias].float())
    elif layout.node_head is not None:
        heads.node.bias.zero_()   # the node decoder's own bias is the intercept the fit found
    if layout.pair_head is not None:
        heads.pair.weight.copy_(theta[:, slice(*layout.pair_head)].float())


def _current(model: Botan, d: int, layout: _Layout) -> Tensor:
    fc3 = model.decoders[d].fc3
    theta = torch.zeros(fc3.weight.shape[0], layout.size, dtype=torch.float64, device=fc3.weight.device)
    theta[:, :layout.width] = fc3.weight.double()
    theta[:, layout.width] = fc3.bias.double()
    heads = getattr(model, "descriptor_heads", None)
    if layout.node_head is not None:
        theta[:, slice(*layout.node_head)] = heads.node.weight.double()
    if layout.node_bias is not None:
        theta[:, layout.node_bias] = heads.node.bias.double()
    if layout.pair_head is not None:
        theta[:, slice(*layout.pair_head)] = heads.pair.weight.double()
    return theta


@torch.no_grad()
def fit_output_heads(model: Botan, graphs: Sequence[Data], node_weight: float, loss_nodes: str = "all",
                     loss_edges: str = "all", edges: bool = True, validation: Sequence[Data] = ()
                     ) -> dict[str, float]:
    """Set every decoder's last layer (``fc3``), and the descriptor heads where the network has them,
    to the least-squares minimiser of the training loss.

    ``graphs``: the training graphs (targets ``y_node`` (N, K), ``y_edge`` (E, K) in σ, as the
    model predicts them through its output standardisation; ``descriptors`` (N, F) for descriptor
    heads).  ``loss_nodes``/``loss_edges`` select the items as the loss does; ``edges=False`` (or
    p = 1) leaves E_ij out.  Non-finite targets are skipped.  ``validation``: graphs that choose the
    descriptor heads' penalty.  Returns the standardised training loss before and after
    (``loss_before``, ``loss_after``) and, with descriptor heads, the penalty of each column
    (``penalty``, a list).
    """
    was_training = model.training
    model.eval()
    parts = _fitted_parts(model, graphs, node_weight, edges)
    layouts = _layouts(model, parts)
    sums = _accumulate(model, graphs, parts, layouts, loss_nodes, loss_edges)
    k = model.arch.n_outputs

    def loss() -> float:
        return float(sum(sums[d].loss(_current(model, d, lay)).sum() for d, lay in layouts.items())) / k

    before = loss()
    heads = hasattr(model, "descriptor_heads")
    penalties = [FALLBACK_PENALTY] * k
    if heads and validation:
        val_sums = _accumulate(model, validation, parts, layouts, loss_nodes, loss_edges)
        val_loss = torch.stack([sum(val_sums[d].loss(_solve(sums[d], lay, parts, d, lam)) for d, lay in layouts.items())
                                for lam in PENALTIES])                       # (λ, K)
        penalties = [PENALTIES[int(i)] for i in torch.argmin(val_loss, dim=0)]
    for d, lay in layouts.items():
        if heads:   # each output column with its own penalty
            solutions = {lam: _solve(sums[d], lay, parts, d, lam) for lam in set(penalties)}
            solution = torch.stack([solutions[lam][c] for c, lam in enumerate(penalties)])
        else:
            solution = _solve(sums[d], lay, parts, d, 0.0)
        _set(model, d, lay, solution)
    after = loss()
    model.train(was_training)
    return {"loss_before": before, "loss_after": after, **({"penalty": penalties} if heads else {})}


def _fitted_parts(model: Botan, graphs: Sequence[Data], node_weight: float, edges: bool
                  ) -> list[tuple[str, int, float]]:
    """(target, decoder, loss weight) of each target the least-squares fit solves for."""
    parts = []
    if node_weight > 0:
        parts.append(("node", 0, node_weight))
    if edges and node_weight < 1 and all(bool(g.has_edge_targets) for g in graphs):
        parts.append(("edge", len(model.decoders) - 1, 1.0 - node_weight))
    if not parts or not graphs:
        raise UserError("train.head_init=least_squares: no targets to fit the output heads to")
    return parts


@torch.no_grad()
def fit_descriptor_standardisation(model: Botan, graphs: Sequence[Data], loss_nodes: str = "all",
                                   loss_edges: str = "all") -> None:
    """Set the descriptor heads' feature standardisation to the mean and spread of the training items
    the loss sees (nodes: ``loss_nodes``; pairs: ``loss_edges``), one graph at a time (float64 sums)."""
    heads = model.descriptor_heads
    totals = {}
    for g in graphs:
        node_mask, _ = _items(g, "node", loss_nodes, loss_edges)
        edge_mask, _ = _items(g, "edge", loss_nodes, loss_edges)
        descriptors, edge_index, edge_attr, extra = _head_inputs(model, g)
        node = descriptors[node_mask].double()
        edges = torch.arange(edge_index.shape[1], device=edge_index.device)[edge_mask]
        blocks = [("node", node)]
        for first in range(0, len(edges), EDGE_BLOCK):
            sel = edges[first:first + EDGE_BLOCK]
            blocks.append(("pair", pair_features(descriptors, edge_index[:, sel], edge_attr[sel],
                                                 None if extra is None else extra[sel]).double()))
        for name, values in blocks:
            n, s, ss = totals.get(name, (0, 0.0, 0.0))
            totals[name] = (n + values.shape[0], s + values.sum(0), ss + (values * values).sum(0))

    def moments(name: str) -> tuple[Tensor, Tensor]:
        n, s, ss = totals[name]
        mean = s / n
        return mean, (ss / n - mean * mean).clamp_min(0.0).sqrt()

    heads.set_standardisation(*moments("node"), *moments("pair"))


def _items(graph: Data, name: str, loss_nodes: str, loss_edges: str) -> tuple[Tensor | slice, Tensor]:
    """(selection, targets (M, K)) of the nodes or edges of ``graph`` that the loss sees."""
    if name == "node":
        mask = graph.node_mask if loss_nodes == "A" else slice(None)
        return mask, graph.y_node[mask]
    mask = graph.edge_mask if loss_edges == "AA" else slice(None)
    return mask, graph.y_edge[mask]
