import numpy as np
import pytest

from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs
from hpc_botan.physics.pbc import minimum_image, wrap


def test_minimum_image_hand_cases():
    box = np.array([10.0, 10.0, 4.0])
    np.testing.assert_allclose(minimum_image(np.array([9.0, -6.0, 3.0]), box), [-1.0, 4.0, -1.0])
    np.testing.assert_allclose(minimum_image(np.array([0.5, 0.0, -1.9]), box), [0.5, 0.0, -1.9])


def test_wrap_never_returns_the_upper_edge():
    box = np.array([2.0, 2.0, 2.0])
    out = wrap(np.array([[-1e-17, 2.0, 5.5]]), box)
    assert (out >= 0).all() and (out < box).all()
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.5]])


def test_pairs_across_the_boundary_in_a_non_cubic_box():
    box = np.array([10.0, 6.0, 8.0])
    pos = np.array([[0.2, 3.0, 4.0],   # 0
                    [9.7, 3.0, 4.0],   # 1: 0.5 from 0 through the x boundary (9.5 directly)
                    [0.2, 0.1, 4.0],   # 2: 2.9 from 0 directly, 3.1 through y: no pair
                    [0.2, 3.0, 0.5],   # 3: 3.5 from 0 directly, 4.5 through z: no pair
                    [1.5, 3.0, 5.0]])  # 4: 1.64 from 0; 2.06 from 1: pair with 0 only
    ei = neighbor_pairs(pos, box, 2.0)
    assert ei.tolist() == [[0, 0, 1, 4], [1, 4, 0, 0]]
    np.testing.assert_allclose(edge_vectors(pos, ei[:, [0, 2]], box), [[-0.5, 0, 0], [0.5, 0, 0]], atol=1e-12)


def test_matches_brute_force_on_random_points():
    rng = np.random.default_rng(3)
    box = np.array([7.0, 8.0, 9.0])
    pos = rng.uniform(-5, 15, size=(300, 3))  # any periodic image
    ei = neighbor_pairs(pos, box, 1.7)
    d = np.linalg.norm(minimum_image(pos[None] - pos[:, None], box), axis=-1)
    i, j = np.nonzero((d < 1.7) & ~np.eye(300, dtype=bool))
    assert ei.tolist() == [i.tolist(), j.tolist()]


def test_cutoff_must_fit_the_box():
    with pytest.raises(ValueError, match="half the shortest box edge"):
        neighbor_pairs(np.zeros((2, 3)), np.array([3.0, 10.0, 10.0]), 2.0)


def test_a_tiled_structure_repeats_every_particle_and_its_neighbours():
    """Each copy of a particle has the neighbours of the original, shifted: the same local structure."""
    from hpc_botan.physics.pbc import tile

    rng = np.random.default_rng(3)
    box = np.array([5.0, 5.5, 6.0])
    positions = rng.uniform(0, 1, (60, 3)) * box - box   # another periodic image: wrapped first
    species = rng.integers(0, 2, 60)
    big, big_species, big_box = tile(positions, species, box, (2, 1, 3))
    assert big.shape == (360, 3) and big_species.shape == (360,) and np.allclose(big_box, [10.0, 5.5, 18.0])
    assert (big >= 0).all() and (big < big_box).all()
    np.testing.assert_array_equal(big_species[60 * 5:], species)
    np.testing.assert_allclose(big[60 * 5 + 7], wrap(positions[7], box) + [1 * 5.0, 0.0, 2 * 6.0])
    small = neighbor_pairs(positions, box, 2.0)
    large = neighbor_pairs(big, big_box, 2.0)
    assert large.shape[1] == 6 * small.shape[1]
    copy0 = large[:, large[0] < 60]   # the first copy's particles keep their neighbour distances
    np.testing.assert_allclose(np.sort(np.linalg.norm(edge_vectors(big, copy0, big_box), axis=1)),
                               np.sort(np.linalg.norm(edge_vectors(positions, small, box), axis=1)))
    with pytest.raises(ValueError, match="three positive integers"):
        tile(positions, species, box, (2, 0, 1))
