"""Inference a chunk of edges at a time (hpc_botan.model.bounded_memory) equals the whole-graph forward."""
import pytest
import torch

from hpc_botan.model import Botan, BotanArchitecture
from hpc_botan.model.bounded_memory import (
    BYTES_PER_CHUNK_EDGE,
    CACHE_CHUNK_EDGES,
    MIN_CHUNK_EDGES,
    chunk_edges_for,
    held_bytes,
)
from tests.model.test_botan import random_graph

ARCHITECTURES = [
    BotanArchitecture(),
    BotanArchitecture(width=16, n_steps=3, shared_weights=False, separate_decoders=True, n_outputs=2),
    BotanArchitecture(width=16, n_steps=2, n_outputs=2, descriptor_shells=(1.0, 1.2), descriptor_lengths=(1.0,),
                      force_features="shifted_force"),
    BotanArchitecture(width=8, n_steps=2, descriptor_shells=(1.0, 1.2, 1.4), descriptor_lengths=(0.0, 1.0)),
]


def randomised(arch: BotanArchitecture, seed: int = 2) -> Botan:
    """A network with every weight random: the descriptor heads too (they start at zero) and the output
    standardisation, so that no part of the forward is an identity the test could not see."""
    torch.manual_seed(seed)
    model = Botan(arch).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("descriptor_heads"):
                parameter.normal_(0.0, 0.3)
        k = arch.n_outputs
        model.set_output_standardisation(torch.randn(k), torch.rand(k) + 0.5, torch.randn(k), torch.rand(k) + 0.5)
        if arch.n_descriptors:
            heads = model.descriptor_heads
            heads.set_standardisation(torch.randn(heads.node_mean.shape[0]), torch.rand(heads.node_std.shape[0]) + 0.5,
                                      torch.randn(heads.pair_mean.shape[0]), torch.rand(heads.pair_std.shape[0]) + 0.5)
    return model


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("chunk", [1, 7, 64, 199, 200, 10_000])
def test_the_edge_chunked_forward_equals_the_whole_graph_forward(arch, chunk):
    """Every output, node and edge, of every output column, with random descriptor heads and force features,
    at chunk sizes from one edge to more than the graph has."""
    model = randomised(arch)
    x, edge_index, edge_attr = (t.float() if t.is_floating_point() else t for t in random_graph(n=40, e=200, seed=4))
    extra = (torch.randn(40, arch.n_descriptors),) if arch.n_descriptors else ()
    with torch.no_grad():
        want = model(x, edge_index, edge_attr, *extra)
    got = model.forward_in_edge_chunks(x, edge_index, edge_attr, *extra, chunk_edges=chunk)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        assert b.abs().max() > 1e-3   # a non-trivial output
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_heads_contribute_in_the_test():
    """The randomised heads change the output: the equality above covers their chunked path."""
    arch = ARCHITECTURES[2]
    model = randomised(arch)
    x, edge_index, edge_attr = (t.float() if t.is_floating_point() else t for t in random_graph(n=40, e=200, seed=4))
    d = torch.randn(40, arch.n_descriptors)
    with torch.no_grad():
        node, edge = model(x, edge_index, edge_attr, d)
        model.descriptor_heads.pair.weight.zero_()
        model.descriptor_heads.node.weight.zero_()
        bare_node, bare_edge = model(x, edge_index, edge_attr, d)
    assert (node - bare_node).abs().max() > 1e-2 and (edge - bare_edge).abs().max() > 1e-2


def test_an_edge_chunk_must_hold_an_edge():
    x, edge_index, edge_attr = (t.float() if t.is_floating_point() else t for t in random_graph(n=10, e=30))
    with pytest.raises(ValueError, match="chunk_edges must be >= 1"):
        Botan().forward_in_edge_chunks(x, edge_index, edge_attr, chunk_edges=0)


def test_the_chunk_follows_the_memory_budget():
    """Cache-sized chunks where the budget allows, smaller ones where it does not, never below the minimum."""
    n, e = 100_000, 4_000_000
    held = held_bytes(n, e)
    assert held == e * (4 * 64 + 28) + 10 * n * 64 * 4
    assert chunk_edges_for(1e15, n, e) == CACHE_CHUNK_EDGES                          # a generous budget
    assert chunk_edges_for(held + 1000 * BYTES_PER_CHUNK_EDGE, n, e) == 1000          # what is left, per edge
    assert chunk_edges_for(0, n, e) == MIN_CHUNK_EDGES                                # too little: the smallest
    assert chunk_edges_for(1e15, 10, 3) == 3                                          # one chunk at most
    assert chunk_edges_for(1e15, n, e, width=128) == CACHE_CHUNK_EDGES // 2           # the same bytes per array
