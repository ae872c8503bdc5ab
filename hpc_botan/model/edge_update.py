"""The edge update of one message-passing step as a single autograd function.

The reference edge update is ``h_e ← MLP([h_src, h_dst, h_e, h_e⁰])`` with a first layer of
input width 4·W.  Splitting that layer's weight into its four W-column blocks gives, exactly,

    pre = (h_v W_src^T)[src] + (h_v W_dst^T)[dst] + h_e W_e^T + (h_e⁰ W_e0^T + b1)

where the node blocks are applied per node (N rows instead of E) and then gathered, and the
last term is the same at every step.  This module evaluates the MLP of that sum and writes its
backward by hand so that, per step and per edge, only the two ReLU outputs are kept for the
backward, every temporary is reused in place, and the gathers' backward is an ``index_add``
(the backward of ``h[src]`` indexing is a much slower ``index_put`` with accumulation).
"""
from __future__ import annotations

import torch
from torch import Tensor


class FusedEdgeMLP(torch.autograd.Function):
    """relu(relu(a[src] + b[dst] + h_e W1^T + c) W2^T + b2), gradients by hand.

    Shapes: a, b (N, W) per-node terms; h_e (E, W); c (E, W) per-edge constant term (bias
    included); w1 (W, W) the h_e block of the first layer; w2 (W, W), b2 (W,) the second layer;
    src, dst (E,) int64.  Returns (E, W).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h_e: Tensor, c: Tensor, w1: Tensor, w2: Tensor, b2: Tensor,
                src: Tensor, dst: Tensor) -> Tensor:
        hidden = torch.index_select(a, 0, src)
        hidden.add_(torch.index_select(b, 0, dst))
        hidden.add_(c)
        hidden.addmm_(h_e, w1.t())
        hidden.relu_()
        out = torch.addmm(b2, hidden, w2.t())
        out.relu_()
        ctx.save_for_backward(hidden, out, h_e, w1, w2, src, dst)
        ctx.n_nodes = a.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        hidden, out, h_e, w1, w2, src, dst = ctx.saved_tensors
        # threshold_backward is ReLU's own backward kernel: one pass, no boolean mask, no clone
        grad = torch.ops.aten.threshold_backward(grad_out, out, 0.0)
        grad_w2 = grad.t().mm(hidden)
        grad_b2 = grad.sum(0)
        grad_hidden = grad.mm(w2)
        del grad
        # in place (out= its own input): no second (E, W) buffer at the peak of the backward
        torch.ops.aten.threshold_backward.grad_input(grad_hidden, hidden, 0.0, grad_input=grad_hidden)
        grad_w1 = grad_hidden.t().mm(h_e) if ctx.needs_input_grad[4] else None
        grad_h_e = grad_hidden.mm(w1) if ctx.needs_input_grad[2] else None
        n, width = ctx.n_nodes, hidden.shape[1]
        grad_a = grad_hidden.new_zeros(n, width).index_add_(0, src, grad_hidden) if ctx.needs_input_grad[0] else None
        grad_b = grad_hidden.new_zeros(n, width).index_add_(0, dst, grad_hidden) if ctx.needs_input_grad[1] else None
        grad_c = grad_hidden if ctx.needs_input_grad[3] else None
        return grad_a, grad_b, grad_h_e, grad_c, grad_w1, grad_w2, grad_b2, None, None


def fused_edge_mlp(a: Tensor, b: Tensor, h_e: Tensor, c: Tensor, w1: Tensor, w2: Tensor, b2: Tensor,
                   src: Tensor, dst: Tensor) -> Tensor:
    """See :class:`FusedEdgeMLP` (first-order gradients only)."""
    return FusedEdgeMLP.apply(a, b, h_e, c, w1, w2, b2, src, dst)


def plain_edge_mlp(a: Tensor, b: Tensor, h_e: Tensor, c: Tensor, w1: Tensor, w2: Tensor, b2: Tensor,
                   src: Tensor, dst: Tensor) -> Tensor:
    """The same function with ordinary autograd ops (for tests and ``torch.compile``)."""
    hidden = torch.relu(torch.index_select(a, 0, src) + torch.index_select(b, 0, dst) + c + h_e @ w1.t())
    return torch.relu(torch.addmm(b2, hidden, w2.t()))


@torch.no_grad()
def edge_mlp_inference(a: Tensor, b: Tensor, h_e: Tensor, c: Tensor, w1: Tensor, w2: Tensor, b2: Tensor,
                       src: Tensor, dst: Tensor) -> Tensor:
    """:class:`FusedEdgeMLP`'s forward without autograd: one (E, W) hidden buffer updated in place and the
    output, nothing kept (inference over edge chunks, :mod:`hpc_botan.model.bounded_memory`)."""
    hidden = torch.index_select(a, 0, src)
    hidden.add_(torch.index_select(b, 0, dst))
    hidden.add_(c)
    hidden.addmm_(h_e, w1.t())
    hidden.relu_()
    return torch.addmm(b2, hidden, w2.t()).relu_()
