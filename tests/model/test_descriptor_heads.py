"""Descriptor heads (``model.descriptors: heads``): the ridge baseline's features as linear output heads."""
import json

import numpy as np
import pytest
import torch

from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.descriptor_heads import DescriptorHeads, pair_features
from hpc_botan.model.ensemble import Ensemble
from hpc_botan.model.reference_weights import in_architecture, load_reference_weights
from hpc_botan.physics import descriptors as physics
from tests.model.test_botan import random_graph

SETTINGS = physics.DescriptorSettings().fitted_to(np.full(3, 6.0))   # a small box: 3 σ half-edge


def heads_architecture(**kwargs) -> BotanArchitecture:
    return BotanArchitecture(descriptor_shells=SETTINGS.shell_centres, descriptor_shell_width=SETTINGS.shell_width,
                             descriptor_lengths=SETTINGS.lengths, **kwargs)


def test_architecture_names_its_descriptors_and_survives_json():
    arch = heads_architecture(width=8, n_steps=2, n_outputs=3)
    assert arch.descriptor_settings == SETTINGS
    assert arch.n_descriptors == SETTINGS.n_features == 2 * len(SETTINGS.lengths) * len(SETTINGS.shell_centres)
    assert BotanArchitecture(**json.loads(json.dumps(arch.as_dict()))) == arch   # lists from JSON compare equal
    assert BotanArchitecture().n_descriptors == 0 and BotanArchitecture().descriptor_settings is None
    assert physics.DescriptorSettings().n_features == 184   # the default: what the paper's box allows


def test_pair_features_are_the_ridge_baselines():
    """The torch pair features equal the baseline's numpy ones [D_i + D_j, |D_i − D_j|, r, basis(r)]."""
    gen = torch.Generator().manual_seed(1)
    d = torch.rand(12, 6, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, 12, (2, 40), generator=gen)
    edge_attr = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    expected = physics.pair_features(d.numpy(), edge_index.numpy(), physics.pair_distances(edge_attr.numpy()))
    np.testing.assert_allclose(pair_features(d, edge_index, edge_attr).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_heads_are_linear_maps_of_the_standardised_features():
    """The blockwise edge head (no (E, 2F + 28) matrix) equals the head applied to the materialised P̃."""
    torch.manual_seed(0)
    f, k = 10, 3
    heads = DescriptorHeads(f, k).double()
    p = physics.n_pair_features(f)
    heads.set_standardisation(torch.rand(f), torch.rand(f) + 0.5, torch.rand(p), torch.rand(p) + 0.5)
    with torch.no_grad():
        heads.node.weight.normal_()
        heads.pair.weight.normal_()
    gen = torch.Generator().manual_seed(2)
    d = torch.rand(15, f, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, 15, (2, 50), generator=gen)
    edge_attr = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    node, edge = heads(d, edge_index, edge_attr)
    assert node.shape == (15, k) and edge.shape == (50, k)
    torch.testing.assert_close(node, heads.standardised_node_features(d) @ heads.node.weight.t())
    torch.testing.assert_close(edge, heads.standardised_pair_features(d, edge_index, edge_attr) @ heads.pair.weight.t())


def test_a_constant_feature_is_left_unscaled():
    """Zero spread, and the 1e-38 of a distance-basis Gaussian that no scored pair reaches (dividing by it
    made the gradients NaN): both are left unscaled, and the gradients stay finite."""
    heads = DescriptorHeads(3, 1)
    pair_std = torch.ones(34)   # 2F + 1 + 27
    pair_std[-1] = 8e-39
    heads.set_standardisation(torch.zeros(3), torch.tensor([1.0, 0.0, 2.0]), torch.zeros(34), pair_std)
    assert heads.node_std.tolist() == [1.0, 1.0, 2.0] and float(heads.pair_std[-1]) == 1.0
    with torch.no_grad():
        heads.pair.weight.fill_(0.1)
    x, edge_index, edge_attr = random_graph(dtype=torch.float32)
    node, edge = heads(torch.rand(x.shape[0], 3), edge_index, edge_attr)
    (node.sum() + edge.sum()).backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in heads.parameters())


def test_the_network_takes_descriptors_exactly_when_it_has_heads():
    x, edge_index, edge_attr = random_graph(dtype=torch.float32)
    with_heads = Botan(heads_architecture(width=8, n_steps=2, n_outputs=2))
    d = torch.rand(x.shape[0], SETTINGS.n_features)
    node, edge = with_heads(x, edge_index, edge_attr, d)
    assert node.shape == (x.shape[0], 2) and edge.shape == (edge_index.shape[1], 2)
    with pytest.raises(ValueError, match="descriptors per particle"):
        with_heads(x, edge_index, edge_attr)
    with pytest.raises(ValueError, match="takes no descriptors"):
        Botan(BotanArchitecture(width=8, n_steps=2))(x, edge_index, edge_attr, d)


@pytest.mark.parametrize("separate", [False, True])
def test_published_weights_with_zero_heads_are_the_published_network(sample_dir, separate):
    """Epoch 0 from the published weights: the added heads change nothing until they are fitted."""
    ref = np.load(sample_dir / "reference_outputs_config1_tc07.npz")
    data = np.load(sample_dir / "train" / "isoconfig_N4096T0.44_1_tc07.npz")
    box = np.full(3, (len(data["types"]) / 1.2) ** (1 / 3))
    settings = physics.DescriptorSettings()
    d = physics.coarse_grained_descriptors(data["initial_positions"] % box, data["types"], box, settings)
    reference = load_reference_weights(sample_dir / "initial_model" / "model1.pth")
    arch = BotanArchitecture(separate_decoders=separate, descriptor_shells=settings.shell_centres,
                             descriptor_lengths=settings.lengths)
    network = in_architecture(reference, arch)
    assert network.arch.n_descriptors == 184
    x = torch.from_numpy(data["types"].astype(np.float32))[:, None]
    edge_index = torch.from_numpy(ref["edge_index"])
    edge_attr = torch.from_numpy(ref["edge_attr"]).float()
    with torch.no_grad():
        expected = reference(x, edge_index, edge_attr)
        got = network(x, edge_index, edge_attr, torch.from_numpy(d).float())
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    np.testing.assert_allclose(got[0][:, 0].numpy(), ref["model1_node_pred"].reshape(-1), atol=5e-5)


def test_an_ensemble_passes_the_descriptors_to_the_networks_with_heads():
    torch.manual_seed(0)
    x, edge_index, edge_attr = random_graph(dtype=torch.float32)
    d = torch.rand(x.shape[0], SETTINGS.n_features)
    plain, heads = Botan(BotanArchitecture(width=8, n_steps=2)), Botan(heads_architecture(width=8, n_steps=2))
    with torch.no_grad():
        heads.descriptor_heads.node.weight.normal_()
        ensemble = Ensemble([plain, heads], temperature=0.44)
        node, edge = ensemble(x, edge_index, edge_attr, d)
        assert ensemble.n_descriptors == SETTINGS.n_features
        torch.testing.assert_close(node[:, 0], plain(x, edge_index, edge_attr)[0][:, 0])
        torch.testing.assert_close(node[:, 1], heads(x, edge_index, edge_attr, d)[0][:, 0])
