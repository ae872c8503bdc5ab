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
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from hpc_botan.errors import UserError
from hpc_botan.model.botan import Botan

#: λ relative to the mean diagonal of the weighted normal matrix: enough to keep a hidden unit
#: that is zero everywhere (dead ReLU) from making the system singular, too small to bias the fit.
RELATIVE_PENALTY = 1.0e-4


def _embeddings(model: Botan, graph: Data) -> tuple[Tensor, Tensor]:
    """Final node and edge embeddings (N, W), (E, W): the inputs of the decoders."""
    seen: list[Tensor] = []
    hooks = [d.register_forward_pre_hook(lambda _m, args: seen.append(args[0])) for d in model.decoders]
    try:
        model(graph.x, graph.edge_index, graph.edge_attr)
    finally:
        for hook in hooks:
            hook.remove()
    return seen[0], seen[1]  # the node decoder is called first, then the edge decoder


@torch.no_grad()
def fit_output_heads(model: Botan, graphs: Sequence[Data], node_weight: float, loss_nodes: str = "all",
                     loss_edges: str = "all", edges: bool = True) -> dict[str, float]:
    """Set every decoder's last layer (``fc3``) to the least-squares minimiser of the training loss.

    ``graphs``: the training graphs (targets ``y_node`` (N, K), ``y_edge`` (E, K) in σ, as the
    model predicts them through its output standardisation).  ``loss_nodes``/``loss_edges`` select
    the items as the loss does; ``edges=False`` (or p = 1) leaves E_ij out.  Non-finite targets are
    skipped.  Returns the standardised training loss before and after (``loss_before``, ``loss_after``).
    """
    was_training = model.training
    model.eval()
    k = model.arch.n_outputs
    w = model.arch.width
    n_decoders = len(model.decoders)
    # per decoder: normal matrix Σ ω φ̃ φ̃ᵀ (W+1, W+1) and right-hand side Σ ω φ̃ z (W+1, K), φ̃ = [φ, 1]
    f64 = {"dtype": torch.float64, "device": model.node_offset.device}
    normal = [torch.zeros(k, w + 1, w + 1, **f64) for _ in range(n_decoders)]
    rhs = [torch.zeros(k, w + 1, **f64) for _ in range(n_decoders)]
    parts = []
    if node_weight > 0:
        parts.append(("node", 0, node_weight))
    if edges and node_weight < 1 and all(bool(g.has_edge_targets) for g in graphs):
        parts.append(("edge", n_decoders - 1, 1.0 - node_weight))
    if not parts or not graphs:
        raise UserError("train.head_init=least_squares: no targets to fit the output heads to")
    square = [torch.zeros(k, **f64) for _ in range(n_decoders)]  # Σ ω z²
    for g in graphs:
        h_node, h_edge = _embeddings(model, g)
        for name, d, weight in parts:
            mask, y = _items(g, name, loss_nodes, loss_edges)
            h = (h_node if name == "node" else h_edge)[mask]
            z = ((y - getattr(model, f"{name}_offset")) / getattr(model, f"{name}_scale")).double()
            phi = torch.cat([model.decoders[d].hidden(h).double(),
                             torch.ones(h.shape[0], 1, **f64)], 1)
            # one graph per step: the epoch's loss is the mean over graphs of each graph's means
            omega = weight / (len(graphs) * max(phi.shape[0], 1))
            if bool(torch.isfinite(z).all()):  # the usual case: one normal matrix serves every column
                normal[d] += omega * (phi.T @ phi)
                rhs[d] += omega * (phi.T @ z).T
                square[d] += omega * (z * z).sum(0)
                continue
            for c in range(k):
                ok = torch.isfinite(z[:, c])
                p, zc = phi[ok], z[ok, c]
                normal[d][c] += omega * (p.T @ p)
                rhs[d][c] += omega * (p.T @ zc)
                square[d][c] += omega * float(zc @ zc)
    used = sorted({d for _, d, _ in parts})

    def loss() -> float:
        # θᵀAθ − 2θᵀb + Σωz² per column: the weighted squared error without a second pass
        total = 0.0
        for d in used:
            fc3 = model.decoders[d].fc3
            theta = torch.cat([fc3.weight.double(), fc3.bias.double()[:, None]], 1)  # (K, W+1)
            for c in range(k):
                total += float(theta[c] @ normal[d][c] @ theta[c] - 2 * theta[c] @ rhs[d][c] + square[d][c])
        return total / k

    before = loss()
    for d in used:
        for c in range(k):
            a = normal[d][c].clone()
            penalty = RELATIVE_PENALTY * float(torch.diagonal(a)[:w].mean())
            a[:w, :w] += penalty * torch.eye(w, **f64)  # the bias is not penalised
            solution = torch.linalg.solve(a, rhs[d][c])
            model.decoders[d].fc3.weight[c].copy_(solution[:w].float())
            model.decoders[d].fc3.bias[c] = float(solution[w])
    after = loss()
    model.train(was_training)
    return {"loss_before": before, "loss_after": after}


def _items(graph: Data, name: str, loss_nodes: str, loss_edges: str) -> tuple[Tensor | slice, Tensor]:
    """(selection, targets (M, K)) of the nodes or edges of ``graph`` that the loss sees."""
    if name == "node":
        mask = graph.node_mask if loss_nodes == "A" else slice(None)
        return mask, graph.y_node[mask]
    mask = graph.edge_mask if loss_edges == "AA" else slice(None)
    return mask, graph.y_edge[mask]
