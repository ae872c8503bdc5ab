"""One suite over every registered model (hpc_botan.model.registry): what any model family must honour.

Signature, output standardisation, permutation equivariance, how the cubic symmetries act, torch.export,
the Ensemble, and a checkpoint round trip through the run's loader.  A new entry in MODELS runs all of it.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from hpc_botan.config import Config
from hpc_botan.io.checkpoint import config_hash, save_checkpoint
from hpc_botan.model.botan import BotanArchitecture, with_temperature
from hpc_botan.model.ensemble import Ensemble, column_offsets
from hpc_botan.model.registry import MODELS, registered_model
from hpc_botan.train.augment import CUBIC_SYMMETRIES

ARCHITECTURES = {
    "plain": BotanArchitecture(width=16, n_steps=2, n_outputs=3),
    "separate decoders, joint T": BotanArchitecture(width=16, n_steps=2, separate_decoders=True,
                                                    temperature_input=True, n_outputs=2),
}


def graph(arch: BotanArchitecture, n: int = 24, e: int = 120, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 1), generator=g).float()
    if arch.temperature_input:
        x = with_temperature(x, 0.5)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (src + torch.randint(1, n, (e,), generator=g)) % n
    return x, torch.stack([src, dst]), torch.randn(e, 3, generator=g)


def built(name: str, arch: BotanArchitecture, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    network = registered_model(name).build(arch, True)
    # non-trivial output standardisation, so that every test sees it applied
    k = arch.n_outputs
    network.set_output_standardisation(torch.linspace(0.1, 0.3, k), torch.linspace(1.0, 2.0, k),
                                       torch.linspace(-0.2, 0.0, k), torch.linspace(0.5, 0.7, k))
    return network.eval()


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


@pytest.fixture(params=sorted(ARCHITECTURES))
def arch(request):
    return ARCHITECTURES[request.param]


def test_the_registry_knows_each_family_by_name(name):
    model = registered_model(name)
    assert model.name == name and model.description
    settings = model.training(Config())
    assert (settings.node_weight < 1.0) == model.learns_edges


def test_signature(name, arch):
    x, edge_index, edge_attr = graph(arch)
    node, edge = built(name, arch)(x, edge_index, edge_attr)
    assert node.shape == (x.shape[0], arch.n_outputs) and edge.shape == (edge_index.shape[1], arch.n_outputs)
    assert node.dtype == edge.dtype == torch.float32 and torch.isfinite(node).all() and torch.isfinite(edge).all()


def test_output_standardisation_round_trip(name, arch):
    """Outputs are offset + scale · raw, column by column: identity standardisation gives the raw outputs."""
    network = built(name, arch)
    inputs = graph(arch)
    with torch.no_grad():
        node, edge = network(*inputs)
        k = arch.n_outputs
        network.set_output_standardisation(torch.zeros(k), torch.ones(k), torch.zeros(k), torch.ones(k))
        raw_node, raw_edge = network(*inputs)
    torch.testing.assert_close(node, torch.linspace(0.1, 0.3, k) + torch.linspace(1.0, 2.0, k) * raw_node)
    torch.testing.assert_close(edge, torch.linspace(-0.2, 0.0, k) + torch.linspace(0.5, 0.7, k) * raw_edge)


def test_permuting_the_particles_permutes_the_predictions(name, arch):
    x, edge_index, edge_attr = graph(arch)
    network = built(name, arch)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(3))
    inverse = torch.argsort(perm)
    edge_perm = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        node, edge = network(x, edge_index, edge_attr)
        node_p, edge_p = network(x[perm], inverse[edge_index][:, edge_perm], edge_attr[edge_perm])
    torch.testing.assert_close(node_p, node[perm], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(edge_p, edge[edge_perm], rtol=1e-5, atol=1e-5)


def test_the_cubic_symmetries_act_through_the_edge_encoder_only(name, arch):
    """For each of the 48 cubic symmetries R: the network on rotated pair vectors equals the network whose
    edge encoder's first layer is rotated instead.  So training on rotated copies (train.augmentation:
    cubic) is exact, and nothing else in the model reads an orientation."""
    x, edge_index, edge_attr = graph(arch)
    network = built(name, arch)
    with torch.no_grad():
        for matrix in CUBIC_SYMMETRIES:
            rotated = built(name, arch)
            rotated.load_state_dict(network.state_dict())
            rotated.edge_encoder.fc1.weight.copy_(network.edge_encoder.fc1.weight @ matrix)   # (a Rᵀ) Wᵀ = a (W R)ᵀ
            want = rotated(x, edge_index, edge_attr)
            got = network(x, edge_index, edge_attr @ matrix.T)
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_torch_export_computes_what_the_module_computes(name, arch):
    from torch.export import Dim

    network = built(name, replace(arch), seed=1)
    network.fused = False   # torch.export traces the plain autograd ops
    inputs = graph(arch, n=20, e=90)
    n, e = Dim("n_nodes", min=2), Dim("n_edges", min=2)
    program = torch.export.export(network, inputs, dynamic_shapes=({0: n}, {1: e}, {0: e}))
    other = graph(arch, n=31, e=140, seed=5)     # another size: the shapes are dynamic
    with torch.no_grad():
        for a, b in zip(program.module()(*other), network(*other)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_an_ensemble_puts_its_networks_side_by_side(name, arch):
    networks = [built(name, arch, seed=s) for s in (0, 1)]
    ensemble = Ensemble(networks, temperature=0.5).eval()
    x, edge_index, edge_attr = graph(replace(arch, temperature_input=False))
    with torch.no_grad():
        node, edge = ensemble(x, edge_index, edge_attr)
        assert column_offsets(networks) == [0, arch.n_outputs]
        for network, start in zip(networks, column_offsets(networks)):
            inputs = with_temperature(x, 0.5) if arch.temperature_input else x
            own_node, own_edge = network(inputs, edge_index, edge_attr)
            torch.testing.assert_close(node[:, start:start + arch.n_outputs], own_node)
            torch.testing.assert_close(edge[:, start:start + arch.n_outputs], own_edge)


def test_a_checkpoint_comes_back_as_the_same_family_and_function(name, tmp_path):
    """Save as the trainer does (the task records its family), load with the run's loader: same outputs."""
    from hpc_botan.config import load_config
    from hpc_botan.model.build import architecture_of
    from hpc_botan.plan.networks import load_network

    cfg = load_config("quick", ["model.width=16", "model.n_steps=2", "model.descriptors=none",
                                "model.force_features=false", "train.pretrain.source=train"])
    arch = architecture_of(cfg, 2)
    network = built(name, arch, seed=2)
    path = tmp_path / "final.pt"
    save_checkpoint(path, model=network, optimizer=None, architecture=arch.as_dict(),
                    cfg_hash=config_hash(cfg.identity()), position={"epoch": 1, "step": 0, "global_step": 4},
                    extra={"task": {"name": f"{name}/T0.640/multi", "model": name}, "replica": 0})
    loaded = load_network(cfg, path, output=1)
    inputs = graph(arch)
    with torch.no_grad():
        for a, b in zip(loaded(*inputs), network(*inputs)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert type(loaded) is type(network)
