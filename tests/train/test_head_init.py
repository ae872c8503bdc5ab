"""Least-squares output heads (``train.head_init``) and reference weights split into two decoders."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.descriptor_heads import pair_features
from hpc_botan.model.reference_weights import load_reference_weights, with_separate_decoders
from hpc_botan.physics.descriptors import DescriptorSettings, n_pair_features
from hpc_botan.train.head_init import FALLBACK_PENALTY, fit_descriptor_standardisation, fit_output_heads
from hpc_botan.train.step import loss_terms


def random_graph(seed: int, n: int = 40, n_edges: int = 160, k: int = 2) -> Data:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, n_edges), generator=gen)
    y_node = torch.rand(n, k, generator=gen) * 0.3 + 0.5
    y_node[3, 0] = float("nan")  # a missing target is skipped, not propagated
    return Data(x=(torch.rand(n, 1, generator=gen) < 0.2).float(), edge_index=edge_index,
                edge_attr=torch.randn(n_edges, 3, generator=gen), y_node=y_node,
                y_edge=torch.randn(n_edges, k, generator=gen) * 0.1 + 0.2,
                node_mask=torch.rand(n, generator=gen) < 0.8, edge_mask=torch.rand(n_edges, generator=gen) < 0.3,
                has_edge_targets=True)


def finite_loss(model, graphs, p, loss_nodes, loss_edges):
    """The trainer's loss over the graphs (equal sizes: their mean is the pooled loss) with NaN items dropped."""
    total = 0.0
    for g in graphs:
        node, edge = model(g.x, g.edge_index, g.edge_attr)
        keep = torch.isfinite(g.y_node)
        g = g.clone()
        g.y_node = torch.where(keep, g.y_node, 0.0)
        node = torch.where(keep, node, 0.0)
        total = total + loss_terms(node, edge, g, p, loss_nodes, loss_edges, model.node_scale, model.edge_scale)[0]
    return total / len(graphs)


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("loss_nodes, loss_edges", [("all", "all"), ("A", "AA")])
def test_heads_minimise_the_training_loss(separate, loss_nodes, loss_edges):
    torch.manual_seed(0)
    model = Botan(BotanArchitecture(width=8, n_steps=2, separate_decoders=separate, n_outputs=2))
    model.set_output_standardisation(torch.tensor([0.6, 0.6]), torch.tensor([0.1, 0.2]),
                                     torch.tensor([0.2, 0.2]), torch.tensor([0.1, 0.1]))
    graphs = [random_graph(s) for s in range(3)]
    p = 0.4
    before = float(finite_loss(model, graphs, p, loss_nodes, loss_edges).detach())
    encoder = {k: v.clone() for k, v in model.state_dict().items() if ".fc3." not in k}
    fit = fit_output_heads(model, graphs, p, loss_nodes, loss_edges)
    # only the last layers moved
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in encoder.items())
    after = finite_loss(model, graphs, p, loss_nodes, loss_edges)
    # the reported losses are the trainer's (NaN items dropped), and the fit lowered it
    assert fit["loss_before"] == pytest.approx(before, rel=1e-5)
    assert fit["loss_after"] == pytest.approx(float(after), rel=1e-5)
    assert float(after) < before
    # stationary: the loss gradient with respect to every fitted head is ~0 (up to the tiny ridge penalty)
    model.zero_grad()
    after.backward()
    for d in model.decoders:
        assert float(d.fc3.weight.grad.abs().max()) < 1e-3 * float(after)
        assert float(d.fc3.bias.grad.abs().max()) < 1e-4


def test_nodes_only_leaves_edge_head_alone():
    torch.manual_seed(1)
    model = Botan(BotanArchitecture(width=8, n_steps=2, separate_decoders=True, n_outputs=2))
    edge_head = model.decoders[1].fc3.weight.clone()
    fit_output_heads(model, [random_graph(0)], node_weight=1.0)
    assert torch.equal(model.decoders[1].fc3.weight, edge_head)


def test_split_decoders_are_the_same_function(sample_dir):
    reference_outputs = np.load(sample_dir / "reference_outputs_config1_tc07.npz")
    reference = load_reference_weights(sample_dir / "initial_model" / "model1.pth")
    split = with_separate_decoders(reference)
    assert split.arch.separate_decoders and len(split.decoders) == 2
    x = torch.from_numpy(reference_outputs["node_mask_typeA"]).float().unsqueeze(1) * 0  # type A everywhere
    edge_index = torch.from_numpy(reference_outputs["edge_index"]).long()[:, :5000]
    edge_attr = torch.from_numpy(reference_outputs["edge_attr"]).float()[:5000]
    with torch.no_grad():
        a, b = reference(x, edge_index, edge_attr), split(x, edge_index, edge_attr)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_fine_tuning_with_least_squares_heads(synthetic_run, sample_dir, caplog):
    weights = [sample_dir / "initial_model" / "model1.pth"]
    sets = ["model.separate_decoders=true", "train.pretrain.time_index=0"]
    assert main(["-q", "import-weights", str(synthetic_run), *map(str, weights),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    installed = load_checkpoint(synthetic_run / "train" / "botan/pretrain/T0.440/t00/replica-00/final.pt")
    assert installed["architecture"]["separate_decoders"]
    train = ["train.epochs=1", "train.ntgnn.enabled=false", "train.time_indices=[0]", "train.head_init=least_squares",
             "train.validation_fraction=0.25"]
    with caplog.at_level("INFO", logger="hpc_botan.train"):
        assert main(["train", str(synthetic_run), "--no-progress", *[a for s in train for a in ("--set", s)]]) == 0
    assert "output heads fitted by least squares" in caplog.text
    tuned = load_checkpoint(synthetic_run / "train" / "botan/finetune/T0.440/t00/replica-00/final.pt")
    assert tuned["architecture"]["separate_decoders"]


def descriptor_graph(seed: int, f: int, truth: dict[str, torch.Tensor], noise: float = 0.0) -> Data:
    """A random graph whose targets are linear in its standardised descriptors and pair features
    (``truth``: node (F,), pair (P,) weights): what the ridge baseline models."""
    g = random_graph(seed, k=1)
    gen = torch.Generator().manual_seed(100 + seed)
    g.descriptors = torch.rand(g.x.shape[0], f, generator=gen)
    g.y_node = (g.descriptors @ truth["node"])[:, None] + noise * torch.randn(g.x.shape[0], 1, generator=gen)
    pairs = pair_features(g.descriptors, g.edge_index, g.edge_attr)
    g.y_edge = (pairs @ truth["pair"])[:, None] + noise * torch.randn(pairs.shape[0], 1, generator=gen)
    return g


@pytest.mark.parametrize("separate", [False, True])
def test_descriptor_heads_join_the_fit_and_contain_the_ridge(separate):
    """Targets that a ridge on the descriptors explains exactly are fitted exactly through the heads (a
    network without them cannot), and adding the heads never raises the fitted training loss."""
    f = 6
    gen = torch.Generator().manual_seed(7)
    truth = {"node": torch.randn(f, generator=gen), "pair": torch.randn(n_pair_features(f), generator=gen) * 0.3}
    graphs = [descriptor_graph(s, f, truth) for s in range(3)]
    validation = [descriptor_graph(s, f, truth) for s in (10, 11)]
    torch.manual_seed(0)
    plain = Botan(BotanArchitecture(width=8, n_steps=2, separate_decoders=separate))
    settings = DescriptorSettings(shell_centres=(1.0,), shell_width=0.1, lengths=(0.0, 1.0, 2.0))   # F = 6
    arch = replace(plain.arch, descriptor_shells=settings.shell_centres, descriptor_lengths=settings.lengths)
    heads = Botan(arch)
    heads.load_state_dict({**heads.state_dict(), **plain.state_dict()})
    for model in (plain, heads):
        model.set_output_standardisation(torch.tensor([0.5]), torch.tensor([0.7]), torch.tensor([0.2]),
                                         torch.tensor([0.9]))
    fit_descriptor_standardisation(heads, graphs)
    assert float(heads.descriptor_heads.node_std.min()) > 0
    plain_fit = fit_output_heads(plain, graphs, 0.4, validation=validation)
    heads_fit = fit_output_heads(heads, graphs, 0.4, validation=validation)
    assert heads_fit["loss_before"] == pytest.approx(plain_fit["loss_before"], rel=1e-6)   # zero heads: same start
    assert heads_fit["loss_after"] <= plain_fit["loss_after"] + 1e-9
    assert heads_fit["loss_after"] < 1e-4 < plain_fit["loss_after"]
    assert heads_fit["penalty"][0] <= 1e-3     # validation chose a small penalty for noiseless targets
    with torch.no_grad():
        for g in validation:   # and it generalises: the heads found the ridge's weights
            node, edge = heads(g.x, g.edge_index, g.edge_attr, g.descriptors)
            torch.testing.assert_close(node, g.y_node, atol=2e-2, rtol=0)
            torch.testing.assert_close(edge, g.y_edge, atol=2e-2, rtol=0)


def test_descriptor_heads_without_validation_take_the_fallback_penalty():
    f = 6
    gen = torch.Generator().manual_seed(8)
    truth = {"node": torch.randn(f, generator=gen), "pair": torch.randn(n_pair_features(f), generator=gen)}
    settings = DescriptorSettings(shell_centres=(1.0,), shell_width=0.1, lengths=(0.0, 1.0, 2.0))
    model = Botan(BotanArchitecture(width=8, n_steps=2, descriptor_shells=settings.shell_centres,
                                    descriptor_lengths=settings.lengths))
    graphs = [descriptor_graph(s, f, truth, noise=0.1) for s in range(2)]
    fit_descriptor_standardisation(model, graphs, loss_nodes="A", loss_edges="AA")
    fit = fit_output_heads(model, graphs, 1.0, loss_nodes="A")
    assert fit["penalty"] == [FALLBACK_PENALTY] and fit["loss_after"] < fit["loss_before"]
    assert float(model.descriptor_heads.pair.weight.abs().max()) == 0.0   # p = 1: the pair head is not fitted
