"""Descriptors against hand-computed cases: a few particles in a box, periodic images, species, weights."""
import numpy as np
import pytest

from hpc_botan.physics.descriptors import (
    PAIR_DISTANCE_CENTRES,
    DescriptorSettings,
    coarse_grain,
    coarse_grained_descriptors,
    local_density,
    n_pair_features,
    neighbour_distances,
    pair_distances,
    pair_features,
    radial_shell_densities,
)

BOX = np.array([10.0, 10.0, 10.0])
CENTRES = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
WIDTH = 0.1


def gaussian(r, centres=CENTRES, width=WIDTH):
    return np.exp(-0.5 * ((r - centres) / width) ** 2)


def test_two_particles_across_the_periodic_boundary():
    # 0.3 and 9.2 along x: 1.1 apart through the boundary, 8.9 apart inside the box
    pos = np.array([[0.3, 5.0, 5.0], [9.2, 5.0, 5.0]])
    g = radial_shell_densities(pos, np.array([0, 0]), BOX, CENTRES, WIDTH)
    assert g.shape == (2, 2, len(CENTRES))
    for i in (0, 1):
        np.testing.assert_allclose(g[i, 0], gaussian(1.1), rtol=1e-12)
        np.testing.assert_array_equal(g[i, 1], 0.0)   # no B neighbour
    assert g[0, 0, 3] == pytest.approx(1.0)            # the shell centred at 1.1 counts the neighbour fully


def test_species_are_counted_apart():
    # A at the origin, A at distance 1.0 along x, B at distance 1.5 along y from the first
    pos = np.array([[5.0, 5.0, 5.0], [6.0, 5.0, 5.0], [5.0, 6.5, 5.0]])
    species = np.array([0, 0, 1])
    g = radial_shell_densities(pos, species, BOX, CENTRES, WIDTH)
    r12 = np.hypot(1.0, 1.5)  # 1.80, within the last shell's reach (1.6 + 3 × 0.1)
    np.testing.assert_allclose(g[0, 0], gaussian(1.0), rtol=1e-12)
    np.testing.assert_allclose(g[0, 1], gaussian(1.5), rtol=1e-12)
    np.testing.assert_allclose(g[1, 0], gaussian(1.0), rtol=1e-12)
    np.testing.assert_allclose(g[1, 1], gaussian(r12), rtol=1e-12)
    np.testing.assert_allclose(g[2, 0], gaussian(1.5) + gaussian(r12), rtol=1e-12)  # the B sees two A
    np.testing.assert_array_equal(g[2, 1], 0.0)
    # beyond the reach nothing is counted: move the B particle out to 1.95 from both A's nearest
    far = radial_shell_densities(np.array([[5.0, 5.0, 5.0], [5.0, 6.95, 5.0]]), np.array([0, 1]), BOX, CENTRES,
                                 WIDTH)
    np.testing.assert_array_equal(far, 0.0)


def test_coarse_graining_weights():
    # on a line: 0 — 0.5 — 1.5; at ℓ = 1 only the pair 0–1 (0.5) is closer than ℓ (1–2 is exactly 1.0)
    pos = np.array([[2.0, 5.0, 5.0], [2.5, 5.0, 5.0], [3.5, 5.0, 5.0]])
    values = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]])
    out = coarse_grain(values, 1.0, positions=pos, box=BOX)
    w = np.exp(-0.5)
    np.testing.assert_allclose(out[0], (values[0] + w * values[1]) / (1 + w))
    np.testing.assert_allclose(out[1], (values[1] + w * values[0]) / (1 + w))
    np.testing.assert_allclose(out[2], values[2])                 # alone within ℓ
    # at ℓ = 2 everyone sees everyone: weights exp(−r/2)
    out2 = coarse_grain(values, 2.0, positions=pos, box=BOX)
    w01, w02, w12 = np.exp(-0.25), np.exp(-0.75), np.exp(-0.5)
    np.testing.assert_allclose(out2[0], (values[0] + w01 * values[1] + w02 * values[2]) / (1 + w01 + w02))
    np.testing.assert_allclose(out2[2], (values[2] + w02 * values[0] + w12 * values[1]) / (1 + w02 + w12))
    np.testing.assert_array_equal(coarse_grain(values, 0.0), values)  # ℓ = 0: the particle alone


def test_descriptor_layout_and_coarse_graining_of_the_shells():
    rng = np.random.default_rng(1)
    box = np.array([9.0, 9.0, 9.0])
    pos = rng.uniform(0, 9.0, size=(120, 3))
    species = (rng.uniform(size=120) < 0.3).astype(int)
    settings = DescriptorSettings(shell_centres=(0.8, 1.0, 1.2), shell_width=0.1, lengths=(0.0, 1.5))
    d = coarse_grained_descriptors(pos, species, box, settings)
    assert d.shape == (120, settings.n_features) == (120, 2 * 2 * 3)
    g = radial_shell_densities(pos, species, box, np.array(settings.shell_centres), 0.1).reshape(120, -1)
    np.testing.assert_allclose(d[:, :6], g)                         # ℓ = 0 block: A shells, then B shells
    np.testing.assert_allclose(d[:, 6:], coarse_grain(g, 1.5, positions=pos, box=box))
    # a rigid periodic translation changes nothing
    moved = coarse_grained_descriptors(pos + np.array([4.3, -7.1, 2.2]), species, box, settings)
    np.testing.assert_allclose(moved, d, atol=1e-10)


def test_shell_densities_match_a_brute_force_count():
    rng = np.random.default_rng(2)
    box = np.array([8.0, 8.5, 9.0])
    pos = rng.uniform(0, 1, size=(60, 3)) * box
    species = (rng.uniform(size=60) < 0.2).astype(int)
    settings = DescriptorSettings()
    g = radial_shell_densities(pos, species, box, np.array(settings.shell_centres), settings.shell_width)
    centres = np.array(settings.shell_centres)
    for i in (0, 7, 33):
        expected = np.zeros((2, len(centres)))
        for j in range(60):
            if j == i:
                continue
            dr = pos[j] - pos[i]
            dr -= box * np.round(dr / box)
            r = np.sqrt((dr ** 2).sum())
            if r < settings.shell_cutoff:
                expected[species[j]] += gaussian(r, centres, settings.shell_width)
        np.testing.assert_allclose(g[i], expected, rtol=1e-10, atol=1e-14)


def test_settings_shrink_to_a_small_box():
    full = DescriptorSettings()
    assert full.n_features == 4 * 2 * 23 and full.reach() == pytest.approx(3.3)
    small = full.fitted_to(np.array([5.97, 5.97, 5.97]))        # half box 2.985
    assert max(small.shell_centres) == pytest.approx(2.6) and small.lengths == (0.0, 1.0, 2.0)
    assert full.fitted_to(np.array([15.06] * 3)) == full
    with pytest.raises(ValueError, match="too small"):
        full.fitted_to(np.array([2.0, 2.0, 2.0]))


def test_local_density_and_pair_inputs():
    pos = np.array([[0.2, 5.0, 5.0], [9.6, 5.0, 5.0], [5.0, 5.0, 5.0]])  # 0–1 are 0.6 apart through x = 0
    rho = local_density(pos, BOX, width=1.0)
    norm = (2 * np.pi) ** 1.5
    np.testing.assert_allclose(rho, [np.exp(-0.18) / norm, np.exp(-0.18) / norm, 0.0])
    pairs = neighbour_distances(pos, BOX, 4.9)
    np.testing.assert_allclose(local_density(pos, BOX, width=1.0, pairs=pairs), rho)  # farther pairs ignored
    edge_attr = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, -1.5]])
    np.testing.assert_allclose(pair_distances(edge_attr), [5.0, 1.5])
    desc = np.array([[1.0, 2.0], [4.0, 0.0], [0.5, 0.5]])
    feats = pair_features(desc, np.array([[0, 1], [1, 0]]), np.array([1.2, 1.2]))
    np.testing.assert_allclose(feats[0, :5], [5.0, 2.0, 3.0, 2.0, 1.2])
    assert feats.shape == (2, n_pair_features(2))
    basis = feats[0, 5:]
    centre = PAIR_DISTANCE_CENTRES.index(1.2)
    assert basis[centre] == pytest.approx(1.0)                        # the Gaussian centred on r_ij(0)
    assert basis[centre + 1] == pytest.approx(np.exp(-0.5))           # one width away
    np.testing.assert_allclose(feats[1], feats[0])                   # symmetric in i and j
