"""BOTAN inference with bounded memory, on a whole graph or on one spatial domain of it.

:meth:`Botan.forward <hpc_botan.model.botan.Botan.forward>` keeps several (E, W) temporaries per
message-passing step (gathered node blocks, the hidden layer, the constant h_e⁰ term, the new edge
states) and the descriptor heads an (E, F) block: about 1.4 KB per edge at W = 64.  Here every step
goes over the edges ``chunk_edges`` at a time (gather, edge MLP, scatter-add of the chunk), the node
state whole, so what is held for the whole graph is the edge states h_e (E, W), updated in place (an
edge's new state depends only on its own old state and on node states of the previous step), the
node states (N, W) and the inputs; h_e⁰ and the first layer's constant term are recomputed per chunk
from ``edge_attr``.  The descriptor heads, the force invariants and the decoders go over the same
chunks.  The peak is about 0.3 KB per edge at W = 64 plus one chunk's intermediates
(:data:`BYTES_PER_CHUNK_EDGE` per edge and unit of width / 64).

**Spatial domains.**  With ``halo`` the graph is one domain of a larger one (:mod:`hpc_botan.predict.domains`):
its node rows are the domain's own particles and their ghosts (particles of other domains within the
graph cutoff of an own particle), its edges every edge *into* an own particle.  Node quantities computed
from those edges are right for the own particles only; ``halo(t)`` overwrites the ghost rows of a node
array (rows, C) with their owners' values (exchanged between the MPI ranks that hold the domains) and
returns it.  It is called after each node update and on the forces of the force features: once per
message-passing step.  The forces are then summed over the edges into each particle (the same total,
since the graph holds both directions of every pair).  Without ``halo`` the graph is whole and the
function equals :meth:`Botan.forward` to float32 rounding (tests/model/test_bounded_memory.py).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from hpc_botan.model.edge_update import edge_mlp_inference

#: Fills the ghost rows of a node array (rows, C) in place with their owners' values; returns it.
HaloExchange = Callable[[Tensor], Tensor]
#: Bytes of intermediates per edge of a chunk at width 64 (float32: the gathered node blocks, the
#: constant term and its encoder layers, the hidden layer, the new state, the decoder's layers and the
#: descriptor heads' |D_i − D_j| block of up to 184 features): what :func:`chunk_edges_for` budgets.
BYTES_PER_CHUNK_EDGE = 4 * (12 * 64 + 200)
#: Bytes held per edge for the whole graph beside the chunk (h_e at W = 64, edge_index int64, edge_attr):
#: :func:`chunk_edges_for` subtracts them from the budget first.
BYTES_PER_EDGE_HELD = 4 * 64 + 16 + 12
#: Edges per chunk at width 64 where the budget allows: small enough that a chunk's (C, W) intermediates
#: stay in the processor's cache (1 MB per array).  Measured on 1.3 × 10⁶ edges, one thread: chunks of
#: 1024–4096 edges take 6.2–6.6 s, 16384 8.1 s, 131072 15.4 s, the whole-graph forward 8.4 s
#: (docs/benchmarks.md): smaller chunks are faster, not only smaller.
CACHE_CHUNK_EDGES = 4096
#: The smallest chunk :func:`chunk_edges_for` chooses, however tight the budget.
MIN_CHUNK_EDGES = 256


def chunk_edges_for(memory_bytes: float, n_nodes: int, n_edges: int, width: int = 64) -> int:
    """Edges per chunk for inference of a graph of ``n_nodes`` and ``n_edges`` within ``memory_bytes``.

    :data:`CACHE_CHUNK_EDGES` (scaled by 64 / ``width``: the same bytes per array), smaller where the budget
    left after the whole-graph arrays (:func:`held_bytes`) is smaller than a chunk's intermediates
    (:data:`BYTES_PER_CHUNK_EDGE` per edge), never below :data:`MIN_CHUNK_EDGES` nor above ``n_edges``."""
    scale = width / 64
    fits = int((memory_bytes - held_bytes(n_nodes, n_edges, width)) / (BYTES_PER_CHUNK_EDGE * scale))
    return max(1, min(max(fits, MIN_CHUNK_EDGES), max(1, int(CACHE_CHUNK_EDGES / scale)), n_edges))


def held_bytes(n_nodes: int, n_edges: int, width: int = 64) -> float:
    """Bytes that inference holds for the whole graph whatever the chunk: :data:`BYTES_PER_EDGE_HELD` per
    edge and ten (N, W) node arrays, scaled to ``width``."""
    return n_edges * BYTES_PER_EDGE_HELD * width / 64 + 10 * n_nodes * width * 4


@torch.no_grad()
def forward_in_edge_chunks(model, x: Tensor, edge_index: Tensor, edge_attr: Tensor, descriptors: Tensor | None = None,
                           chunk_edges: int = 1 << 20, halo: HaloExchange | None = None) -> tuple[Tensor, Tensor]:
    """``model``'s (a :class:`~hpc_botan.model.botan.Botan`) ``(node (N, K), edge (E, K))`` predictions, σ,
    computed ``chunk_edges`` edges at a time (module docstring); no gradients.

    x (N, 1 or 2), edge_index (2, E) int64 (source, destination), edge_attr (E, 3) σ, descriptors (N, F)
    (networks with descriptor heads); ``halo``: the ghost exchange of a spatial domain (None: a whole graph).
    """
    if chunk_edges < 1:
        raise ValueError(f"chunk_edges must be >= 1, got {chunk_edges}")
    if (descriptors is not None) != bool(model.arch.n_descriptors):
        raise ValueError(f"this network takes {model.arch.n_descriptors or 'no'} descriptors per particle, "
                         f"got {'none' if descriptors is None else tuple(descriptors.shape)}")
    arch = model.arch
    w, n, n_edges = arch.width, x.shape[0], edge_index.shape[1]
    src, dst = edge_index[0], edge_index[1]
    chunks = [slice(k, min(k + chunk_edges, n_edges)) for k in range(0, n_edges, chunk_edges)]
    h_v0 = model.node_encoder(x)
    h_v = h_v0
    h_e = edge_attr.new_empty(n_edges, w)
    for c in chunks:
        h_e[c] = model.edge_encoder(edge_attr[c])
    for step in range(arch.n_steps):
        e_mlp = model.edge_updates[0 if arch.shared_weights else step]
        w_e = e_mlp.fc1.weight  # (W, 4W): blocks act on h_src, h_dst, h_e, h_e⁰
        a = h_v @ w_e[:, :w].t()
        b = h_v @ w_e[:, w:2 * w].t()
        incoming = h_v.new_zeros(n, w)
        for c in chunks:
            # recomputed per chunk: nothing more of size E is held (and in cache it costs less than reading it)
            constant = model.constant_term(step, model.edge_encoder(edge_attr[c]))
            new = edge_mlp_inference(a, b, h_e[c], constant, w_e[:, 2 * w:3 * w], e_mlp.fc2.weight, e_mlp.fc2.bias,
                                     src[c], dst[c])
            h_e[c] = new
            incoming.index_add_(0, dst[c], new)
        h_v = model.node_update(step, h_v, h_v0, incoming)
        if halo is not None:
            h_v = halo(h_v)
    node = model.decoders[0](h_v)
    edge = h_e.new_empty(n_edges, node.shape[1])
    for c in chunks:   # the edge states are not needed after their decoding: each chunk's rows are overwritten
        edge[c] = model.decoders[-1](h_e[c])
    del h_e
    if descriptors is not None:
        node_features, pair_extra = _head_node_features(model, x, edge_index, edge_attr, descriptors, chunks, halo)
        heads = model.descriptor_heads
        node = node + heads.node_head(node_features)
        per_particle = heads.per_particle_term(node_features)
        for c in chunks:
            extra = None if pair_extra is None else pair_extra(c)
            edge[c] += heads.pair_head(node_features, edge_index[:, c], edge_attr[c], extra, per_particle)
    return torch.addcmul(model.node_offset, node, model.node_scale), torch.addcmul(model.edge_offset, edge,
                                                                                   model.edge_scale)


def _head_node_features(model, x: Tensor, edge_index: Tensor, edge_attr: Tensor, descriptors: Tensor,
                        chunks: list[slice], halo: HaloExchange | None):
    """What the descriptor heads read per particle (N, F [+ 2]) and, with force features, a function of a
    chunk giving its pair force invariants (chunk, 3); the forces summed chunk by chunk."""
    if not model.arch.force_features:
        return descriptors, None
    features = model.force_features
    species = x[:, 0]
    forces = edge_attr.new_zeros(x.shape[0], 3)
    for c in chunks:
        if halo is None:   # a whole graph: as Botan.forward sums them
            features.source_forces(species, edge_index[:, c], edge_attr[c], forces)
        else:              # a domain holds the edges into its own particles only
            features.destination_forces(species, edge_index[:, c], edge_attr[c], forces)
    if halo is not None:
        forces = halo(forces)
    node = torch.cat([descriptors, features.node_invariants(forces).to(descriptors.dtype)], dim=1)
    return node, lambda c: features.pair_invariants(forces, edge_index[:, c], edge_attr[c])


def run_network(model, inputs: tuple[Tensor, ...], chunk_edges: int | None = None,
                halo: HaloExchange | None = None) -> tuple[Tensor, Tensor]:
    """``model(*inputs)`` (no gradients), or :func:`forward_in_edge_chunks` where ``chunk_edges`` or ``halo``
    is given (a halo alone: the whole graph as one chunk)."""
    with torch.no_grad():
        if chunk_edges is None and halo is None:
            return model(*inputs)
        return forward_in_edge_chunks(model, *inputs, chunk_edges=chunk_edges or max(1, inputs[1].shape[1]),
                                      halo=halo)
