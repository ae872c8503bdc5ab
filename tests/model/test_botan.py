import numpy as np
import pytest
import torch

from hpc_botan.errors import UserError
from hpc_botan.model import Botan, BotanArchitecture, count_parameters
from hpc_botan.model.reference_weights import load_reference_weights, read_state_dict


def random_graph(n=30, e=200, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 1), generator=g).to(dtype)
    src = torch.randint(0, n, (e,), generator=g)
    dst = (src + torch.randint(1, n, (e,), generator=g)) % n
    return x, torch.stack([src, dst]), torch.randn(e, 3, generator=g, dtype=dtype)


def reference_forward(model: Botan, x, edge_index, edge_attr):
    """The reference network written plainly (concatenations, h[src] indexing) from the same weights."""
    src, dst = edge_index
    h_v0 = model.node_encoder(x)
    h_e0 = model.edge_encoder(edge_attr)
    h_v, h_e = h_v0, h_e0
    for step in range(model.arch.n_steps):
        k = 0 if model.arch.shared_weights else step
        h_e = model.edge_updates[k](torch.cat([h_v[src], h_v[dst], h_e, h_e0], dim=1))
        incoming = torch.zeros_like(h_v).index_add(0, dst, h_e)
        h_v = model.node_updates[k](torch.cat([h_v, h_v0, incoming], dim=1))
    return model.decoders[0](h_v), model.decoders[-1](h_e)


def test_reference_architecture_has_the_published_parameter_count():
    assert count_parameters(Botan()) == 54_209


@pytest.mark.parametrize("arch", [BotanArchitecture(), BotanArchitecture(width=16, n_steps=3, shared_weights=False,
                                                                         separate_decoders=True, n_outputs=2)])
@pytest.mark.parametrize("fused", [True, False])
def test_blockwise_network_equals_the_plain_one_with_gradients(arch, fused):
    torch.manual_seed(1)
    model = Botan(arch, fused=fused).double()
    x, ei, ea = random_graph()
    got = model(x, ei, ea)
    ref = reference_forward(model, x, ei, ea)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    weights = [torch.randn_like(t) for t in got]
    grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, got)), model.parameters())
    ref_grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, ref)), model.parameters())
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fused_edge_update_passes_gradcheck():
    from hpc_botan.model.edge_update import FusedEdgeMLP

    g = torch.Generator().manual_seed(3)
    n, e, w = 5, 12, 4
    args = [torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)
            for s in [(n, w), (n, w), (e, w), (e, w), (w, w), (w, w), (w,)]]
    src, dst = torch.randint(0, n, (e,), generator=g), torch.randint(0, n, (e,), generator=g)
    assert torch.autograd.gradcheck(lambda *a: FusedEdgeMLP.apply(*a, src, dst), args)


@pytest.mark.parametrize("which", [1, 2])
def test_reference_weights_reproduce_the_reference_predictions(sample_dir, which):
    ref = np.load(sample_dir / "reference_outputs_config1_tc07.npz")
    data = np.load(sample_dir / "train" / "isoconfig_N4096T0.44_1_tc07.npz")
    model = load_reference_weights(sample_dir / "initial_model" / f"model{which}.pth")
    x = torch.tensor(data["types"], dtype=torch.float32)[:, None]
    with torch.no_grad():
        node, edge = model(x, torch.tensor(ref["edge_index"], dtype=torch.int64), torch.tensor(ref["edge_attr"]))
    np.testing.assert_allclose(node[:, 0].numpy(), ref[f"model{which}_node_pred"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(edge[:, 0].numpy(), ref[f"model{which}_edge_pred"], rtol=0, atol=1e-4)


def test_weight_files_that_are_not_plain_state_dicts_are_refused(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (print, ("this would run",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"a": Payload()}))
    with pytest.raises(UserError, match="evil.pth: not a plain PyTorch state_dict"):
        read_state_dict(evil)
    wrong = tmp_path / "wrong.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, wrong)
    with pytest.raises(UserError, match="unexpected key 'encoder.weight'"):
        load_reference_weights(wrong)
    with pytest.raises(UserError, match="no such weight file"):
        read_state_dict(tmp_path / "absent.pth")


@pytest.mark.parametrize("arch", [
    BotanArchitecture(width=16, n_steps=3),
    BotanArchitecture(width=8, n_steps=3, shared_weights=False, separate_decoders=True, n_outputs=2,
                      descriptor_shells=(1.0, 1.3), descriptor_lengths=(0.0,), force_features="shifted_force"),
])
@pytest.mark.parametrize("fused", [True, False])
def test_activation_checkpointing_gives_the_same_outputs_and_gradients(arch, fused):
    """Recomputing each message-passing step in the backward changes neither outputs nor any gradient."""
    from tests.model.test_bounded_memory import randomised

    model = randomised(arch).train()
    model.fused = fused
    x, edge_index, edge_attr = (t.float() if t.is_floating_point() else t for t in random_graph(n=30, e=150, seed=5))
    extra = (torch.randn(30, arch.n_descriptors),) if arch.n_descriptors else ()
    results = []
    for checkpointed in (False, True):
        model.zero_grad()
        model.checkpoint_activations = checkpointed
        node, edge = model(x, edge_index, edge_attr, *extra)
        (node.square().sum() + edge.square().sum()).backward()
        results.append((node.detach(), edge.detach(), {k: p.grad.clone() for k, p in model.named_parameters()
                                                       if p.grad is not None}))
    (n0, e0, g0), (n1, e1, g1) = results
    torch.testing.assert_close(n1, n0)
    torch.testing.assert_close(e1, e0)
    assert g0.keys() == g1.keys() and len(g0) > 10
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-5, atol=1e-6, msg=k)
