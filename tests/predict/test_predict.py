"""The prediction core without a trained model: graph, temperature choice, out-of-range warnings."""
from __future__ import annotations

import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.structures import Structure
from hpc_botan.physics.neighbors import neighbor_pairs
from hpc_botan.predict.predict import build_graph, choose_temperature, out_of_range_warnings


def _structure(n=500, density=1.2, b_fraction=0.2, temperature=None, seed=0):
    rng = np.random.default_rng(seed)
    box = np.full(3, (n / density) ** (1 / 3))
    species = (np.arange(n) < round(b_fraction * n)).astype(np.int8)
    return Structure(positions=rng.uniform(0, box, (n, 3)), species=species, box=box, source="s.data",
                     temperature=temperature)


def test_graph_is_the_targets_graph():
    s = _structure()
    g = build_graph(s)
    np.testing.assert_array_equal(g.edge_index, neighbor_pairs(s.positions, s.box, 2.0))
    src, dst = g.edge_index
    d = s.positions[dst] - s.positions[src]
    d -= s.box * np.round(d / s.box)
    np.testing.assert_allclose(g.edge_attr, d, atol=1e-6)
    np.testing.assert_allclose(g.r0, np.linalg.norm(d, axis=1), rtol=1e-6)
    assert g.r0.max() < 2.0 and g.edge_attr.dtype == np.float32
    data = g.as_data(s.species)
    assert data.x.shape == (500, 1) and float(data.x.sum()) == 100.0


def test_box_too_small_for_the_graph():
    s = _structure(n=20)  # L = 2.55 < 4
    with pytest.raises(UserError, match="s.data: box .* is too small"):
        build_graph(s)


def test_choose_temperature():
    s = _structure(temperature=0.64)
    assert choose_temperature(s, [0.44, 0.64], None) == 0.64            # the file's, when trained
    assert choose_temperature(s, [0.44, 0.64], 0.44) == 0.44            # --temperature wins
    assert choose_temperature(_structure(), [0.44], None) == 0.44       # the only one
    assert choose_temperature(s, [0.44], None) == 0.44                  # the only one, file disagrees (warned)
    with pytest.raises(UserError, match=r"trained at T = 0.44, 0.5 and the file says T = 0.64.*--temperature"):
        choose_temperature(s, [0.44, 0.5], None)
    with pytest.raises(UserError, match=r"--temperature 0.6 is not one of them"):
        choose_temperature(s, [0.44, 0.5], 0.6)
    with pytest.raises(UserError, match="records no temperature"):
        choose_temperature(_structure(), [0.44, 0.5], None)


def test_out_of_range_warnings():
    cfg = load_config("quick", [])
    assert cfg.simulation.density == 1.2
    assert out_of_range_warnings(_structure(temperature=0.44), cfg.simulation.density, [0.44], None) == []
    assert out_of_range_warnings(_structure(density=1.22), cfg.simulation.density, [0.44], None) == []    # 1.7 %: inside
    (dense,) = out_of_range_warnings(_structure(density=1.23), cfg.simulation.density, [0.44], None)      # 2.5 %
    assert "density 1.23 differs from the trained 1.2" in dense
    (mix,) = out_of_range_warnings(_structure(b_fraction=0.26), cfg.simulation.density, [0.44], None)
    assert "B fraction 0.260" in mix
    assert out_of_range_warnings(_structure(b_fraction=0.24), cfg.simulation.density, [0.44], None) == []
    s = _structure()
    s.species[:3] = 2
    (other,) = out_of_range_warnings(s, cfg.simulation.density, [0.44], None)
    assert "species other than A and B (LAMMPS types [3])" in other
    (hot,) = out_of_range_warnings(_structure(temperature=0.5), cfg.simulation.density, [0.44, 0.64], None)
    assert "temperature 0.5 is not a trained temperature (0.44, 0.64)" in hot
    (asked,) = out_of_range_warnings(_structure(temperature=0.44), cfg.simulation.density, [0.44], 0.3)
    assert "temperature 0.3" in asked
    for line in (dense, mix, other, hot):
        assert "\n" not in line and line.startswith("s.data frame 0: ")
