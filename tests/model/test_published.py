"""The authors' eight networks shipped with the package (``hpc_botan/model/published_weights``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import hpc_botan.model.reference_weights as reference_weights
from hpc_botan.errors import UserError
from hpc_botan.model.botan import BotanArchitecture
from hpc_botan.model.reference_weights import (
    N_PUBLISHED,
    PUBLISHED_DIR,
    accepts_reference_weights,
    extends,
    load_published_weights,
    load_reference_weights,
    published_weights_file,
    read_state_dict,
)


@pytest.mark.parametrize("k", range(1, N_PUBLISHED + 1))
def test_shipped_archive_equals_the_published_file(sample_dir, k):
    """Bit for bit the tensors of the authors' model{k}.pth: only the container changed."""
    published = read_state_dict(sample_dir / "initial_model" / f"model{k}.pth")
    with np.load(published_weights_file(k), allow_pickle=False) as archive:
        shipped = {key: archive[key] for key in archive.files}
    assert shipped.keys() == published.keys()
    for key, value in published.items():
        assert shipped[key].dtype == np.float32 and np.array_equal(shipped[key], value.numpy()), key
    ours = load_published_weights(k).state_dict()
    theirs = load_reference_weights(sample_dir / "initial_model" / f"model{k}.pth").state_dict()
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def test_the_notice_and_licence_ship_beside_the_weights():
    notice = (PUBLISHED_DIR / "NOTICE.md").read_text()
    assert "Apache License, Version 2.0" in notice and "h3-Open-BDEC/pyg_botan" in notice
    assert "Apache License" in (PUBLISHED_DIR / "LICENSE-Apache-2.0").read_text()
    assert sorted(p.name for p in PUBLISHED_DIR.glob("*.npz")) == [f"model{k}.npz" for k in range(1, 9)]


def test_an_archive_that_holds_a_pickle_is_refused(tmp_path, monkeypatch):
    """The loader reads arrays only: an object array (a pickle inside the archive) is an error, not code."""
    np.savez(tmp_path / "model1.npz", payload=np.array([{"not": "an array"}], dtype=object))
    monkeypatch.setattr(reference_weights, "PUBLISHED_DIR", tmp_path)
    with pytest.raises(UserError, match="model1.npz: the published weights shipped with hpc_botan cannot be read"):
        load_published_weights(1)
    with pytest.raises(ValueError, match="model1 … model8, not model9"):
        published_weights_file(9)


def test_which_architectures_take_reference_weights():
    assert accepts_reference_weights(BotanArchitecture())
    assert accepts_reference_weights(BotanArchitecture(separate_decoders=True, n_outputs=7,
                                                       descriptor_shells=(1.0, 1.1), descriptor_lengths=(1.0,)))
    assert accepts_reference_weights(BotanArchitecture(temperature_input=True))
    assert not accepts_reference_weights(BotanArchitecture(width=32))
    assert not accepts_reference_weights(BotanArchitecture(n_steps=4))


def test_what_extends_an_architecture():
    """A start may lack what in_architecture adds (separate decoders, heads, temperature input), never
    have something the run lacks or differ in anything else."""
    heads = dict(descriptor_shells=(1.0, 1.1), descriptor_lengths=(1.0,))
    plain, separate = BotanArchitecture(), BotanArchitecture(separate_decoders=True)
    assert extends(BotanArchitecture(separate_decoders=True, n_outputs=7, **heads), plain)
    assert extends(BotanArchitecture(separate_decoders=True, **heads, force_features="ka"), separate)
    assert extends(BotanArchitecture(separate_decoders=True, **heads), BotanArchitecture(separate_decoders=True, **heads))
    assert not extends(plain, separate)                                         # would drop a decoder
    assert not extends(separate, BotanArchitecture(separate_decoders=True, **heads))  # would drop the heads
    assert not extends(BotanArchitecture(**heads, force_features="ka"), BotanArchitecture(**heads))  # other head shapes
    assert not extends(BotanArchitecture(descriptor_shells=(1.0,), descriptor_lengths=(1.0,)), BotanArchitecture(**heads))
    assert not extends(BotanArchitecture(width=32, **heads), plain)


def test_a_network_of_every_temperature_starts_as_the_published_one_at_every_temperature():
    """train.temperatures: joint from the published start: the temperature's column of the node encoder
    starts at zero, so (type, T) gives the published network's output whatever T is, until trained."""
    from hpc_botan.model.botan import with_temperature
    from hpc_botan.model.reference_weights import in_architecture

    published = load_published_weights(1)
    joint = in_architecture(published, BotanArchitecture(temperature_input=True, separate_decoders=True))
    torch.manual_seed(0)
    n = 40
    x = (torch.rand(n, 1) < 0.2).float()
    edge_index = torch.stack([torch.arange(n).repeat_interleave(3), torch.randint(0, n, (3 * n,))])
    edge_attr = torch.randn(3 * n, 3)
    with torch.no_grad():
        want = published(x, edge_index, edge_attr)
        for temperature in (0.44, 0.64, 0.8):
            got = joint(with_temperature(x, temperature), edge_index, edge_attr)
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert joint.node_encoder.fc1.weight.shape == (64, 2)
    assert torch.count_nonzero(joint.node_encoder.fc1.weight[:, 1]) == 0
