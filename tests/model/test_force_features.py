"""The force invariants that ``model.force_features`` gives the descriptor heads."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.force_features import ForceFeatures
from hpc_botan.physics.ka import pair_force


def pair_graph(positions: np.ndarray, box: float, cutoff: float = 2.0):
    """Directed edges (both ways) of every pair closer than ``cutoff`` (minimum image), edge_attr = r_dst − r_src."""
    pairs = cKDTree(positions, boxsize=box).query_pairs(cutoff, output_type="ndarray")
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    vec = positions[dst] - positions[src]
    vec -= box * np.round(vec / box)
    return torch.from_numpy(np.stack([src, dst])).long(), torch.from_numpy(vec).float()


def numpy_forces(positions, species, box, cutoff=2.0):
    """F_i = Σ_j f(r_ij) (r_i − r_j) / r_ij over pairs closer than ``cutoff``, float64: the hand computation."""
    forces = np.zeros_like(positions)
    for i in range(len(positions)):
        d = positions[i] - positions
        d -= box * np.round(d / box)
        r = np.linalg.norm(d, axis=1)
        for j in np.flatnonzero((r > 0) & (r < cutoff)):
            forces[i] += pair_force(r[j], int(species[i]), int(species[j])) * d[j] / r[j]
    return forces


def test_two_particles_by_hand():
    """An A–A pair at r = 1.1: |F| = |f(1.1)| on each, the relative force along the bond 2 f(1.1)."""
    layer = ForceFeatures("shifted_force")
    edge_index = torch.tensor([[0, 1], [1, 0]])
    edge_attr = torch.tensor([[1.1, 0.0, 0.0], [-1.1, 0.0, 0.0]])
    node, pair = layer(torch.zeros(2), edge_index, edge_attr)
    f = float(pair_force(1.1, 0, 0))
    torch.testing.assert_close(node, torch.tensor([[abs(f), f * f]] * 2), rtol=1e-4, atol=0)
    # repulsive (f > 0) pushes the two apart: F_j − F_i points along r_ij
    torch.testing.assert_close(pair, torch.tensor([[2 * f, 4 * f * f, 4 * f * f]] * 2), rtol=1e-4, atol=0)


def test_forces_of_a_liquid_are_the_sum_of_the_pair_forces():
    """On 125 KA particles (a jittered cubic lattice: no pair closer than 0.7 σ, as in a liquid) the layer's
    |F_i| equals the hand sum over the same pairs, and every feature is unchanged by a rotation of the
    pair vectors and by flipping their sign convention."""
    rng = np.random.default_rng(3)
    box = 5.0
    lattice = np.stack(np.meshgrid(*[np.arange(5.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    positions = (lattice + 0.5 + rng.uniform(-0.12, 0.12, lattice.shape)) % box
    species = (rng.uniform(size=len(positions)) < 0.2).astype(np.float32)
    edge_index, edge_attr = pair_graph(positions, box)
    layer = ForceFeatures("shifted_force")
    node, pair = layer(torch.from_numpy(species), edge_index, edge_attr)
    expected = np.linalg.norm(numpy_forces(positions, species, box), axis=1)
    np.testing.assert_allclose(node[:, 0].numpy(), expected, rtol=1e-3, atol=1e-3)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    for transformed in (edge_attr @ q.T, -edge_attr):
        node_t, pair_t = layer(torch.from_numpy(species), edge_index, transformed)
        torch.testing.assert_close(node_t, node, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(pair_t, pair, rtol=1e-4, atol=1e-3)


def test_the_potential_forms_give_their_own_forces():
    """truncated_shifted is not tilted: its force at 2.4 σ differs from shifted_force's."""
    edge_index = torch.tensor([[0, 1], [1, 0]])
    edge_attr = torch.tensor([[1.9, 0.0, 0.0], [-1.9, 0.0, 0.0]])
    a = ForceFeatures("shifted_force")(torch.zeros(2), edge_index, edge_attr)[0][0, 0]
    b = ForceFeatures("truncated_shifted")(torch.zeros(2), edge_index, edge_attr)[0][0, 0]
    assert float(a) == pytest.approx(abs(float(pair_force(1.9, 0, 0, "shifted_force"))), rel=1e-4)
    assert float(b) == pytest.approx(abs(float(pair_force(1.9, 0, 0, "truncated_shifted"))), rel=1e-4)
    assert abs(float(a) - float(b)) > 1e-3


def test_zero_heads_with_force_features_change_nothing():
    """The heads start at zero: a network with force features computes what the one without computes,
    and the heads grow by the 2 node and 3 pair invariants."""
    arch = BotanArchitecture(width=8, n_steps=2, descriptor_shells=(1.0,), descriptor_lengths=(0.0, 1.0, 2.0))
    torch.manual_seed(0)
    plain = Botan(arch)
    forces = Botan(BotanArchitecture(**{**arch.as_dict(), "force_features": "shifted_force"}))
    forces.load_state_dict({**forces.state_dict(), **{k: v for k, v in plain.state_dict().items()
                                                      if not k.startswith("descriptor_heads.")}})
    assert forces.descriptor_heads.node.in_features == plain.descriptor_heads.node.in_features + 2
    # the pair head reads the node features summed and differenced (2 × 2) and the 3 pair invariants
    assert forces.descriptor_heads.pair.in_features == plain.descriptor_heads.pair.in_features + 2 * 2 + 3
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 4.0, (60, 3))
    edge_index, edge_attr = pair_graph(positions, 4.0)
    x = torch.zeros(60, 1)
    descriptors = torch.rand(60, arch.n_descriptors)
    for a, b in zip(plain(x, edge_index, edge_attr, descriptors), forces(x, edge_index, edge_attr, descriptors)):
        assert torch.equal(a, b)
    assert "force_features" not in arch.as_dict()    # absent when off: older checkpoints keep their identity
    assert forces.arch.as_dict()["force_features"] == "shifted_force"


def test_least_squares_heads_find_the_ballistic_limit():
    """Targets that are the force invariants themselves (S = |F_i|², E = (F_j − F_i)·r̂_ij: the short-time
    limit) are fitted exactly by heads with force features; the same heads without them cannot."""
    from torch_geometric.data import Data

    from hpc_botan.train.head_init import fit_descriptor_standardisation, fit_output_heads

    def graph(seed: int) -> Data:
        rng = np.random.default_rng(seed)
        lattice = np.stack(np.meshgrid(*[np.arange(5.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        positions = (lattice + 0.5 + rng.uniform(-0.12, 0.12, lattice.shape)) % 5.0
        species = (rng.uniform(size=len(positions)) < 0.2).astype(np.float32)
        edge_index, edge_attr = pair_graph(positions, 5.0)
        node, pair = ForceFeatures("shifted_force")(torch.from_numpy(species), edge_index, edge_attr)
        n, e = len(positions), edge_index.shape[1]
        return Data(x=torch.from_numpy(species)[:, None], edge_index=edge_index, edge_attr=edge_attr,
                    descriptors=torch.rand(n, 6, generator=torch.Generator().manual_seed(seed)),
                    y_node=node[:, 1:2] / 100.0, y_edge=pair[:, :1] / 10.0,
                    node_mask=torch.ones(n, dtype=torch.bool), edge_mask=torch.ones(e, dtype=torch.bool),
                    has_edge_targets=True)

    graphs, validation = [graph(s) for s in range(3)], [graph(s) for s in (10, 11)]
    losses = {}
    for forces in ("", "shifted_force"):
        torch.manual_seed(0)
        model = Botan(BotanArchitecture(width=8, n_steps=1, separate_decoders=True, descriptor_shells=(1.0,),
                                        descriptor_lengths=(0.0, 1.0, 2.0), force_features=forces))
        fit_descriptor_standardisation(model, graphs)
        losses[forces] = fit_output_heads(model, graphs, 0.4, validation=validation)["loss_after"]
    assert losses["shifted_force"] < 1e-3 < losses[""], losses
