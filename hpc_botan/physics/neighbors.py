"""Periodic neighbour pairs in O(N) with a k-d tree (scipy's cKDTree with ``boxsize``)."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from hpc_botan.physics.pbc import minimum_image, wrap


def neighbor_pairs(positions: np.ndarray, box: np.ndarray, cutoff: float) -> np.ndarray:
    """All ordered pairs (i, j), i ≠ j, with minimum-image distance |r_j − r_i| < ``cutoff``.

    Both directions of every pair are listed; rows are sorted by (source i, destination j).

    Args:
        positions: (N, 3) positions, σ (any periodic image; they are wrapped first).
        box: (3,) edge lengths of the orthorhombic box, σ.
        cutoff: pair distance, σ; must be below half the shortest edge, so that the
            minimum image is the only image within reach.

    Returns:
        (2, E) int64 ``edge_index``: row 0 = source i, row 1 = destination j.
    """
    box = np.asarray(box, dtype=np.float64)
    if cutoff >= 0.5 * box.min():
        raise ValueError(f"cutoff {cutoff} must be below half the shortest box edge ({box.min()})")
    tree = cKDTree(wrap(np.asarray(positions, dtype=np.float64), box), boxsize=box)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")  # i < j, each pair once
    # query_pairs uses <=; the graph convention is a strict <
    d = np.linalg.norm(minimum_image(positions[pairs[:, 1]] - positions[pairs[:, 0]], box), axis=1)
    pairs = pairs[d < cutoff]
    both = np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int64)
    order = np.lexsort((both[:, 1], both[:, 0]))
    return both[order].T.copy()


def edge_vectors(positions: np.ndarray, edge_index: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image edge vectors r_j − r_i (E, 3) for ``edge_index`` (2, E) = (i, j)."""
    src, dst = edge_index
    return minimum_image(positions[dst] - positions[src], box)
