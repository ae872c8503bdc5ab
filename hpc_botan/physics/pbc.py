"""Periodic boundaries of an orthorhombic box (pure numpy).

Boxes are given by their edge lengths ``box`` (3,) in σ, with the origin at 0.
"""
from __future__ import annotations

import numpy as np


def minimum_image(dr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image convention for difference vectors.

    Args:
        dr: (..., 3) difference vectors r_j − r_i, σ.
        box: (3,) box edge lengths, σ.

    Returns:
        (..., 3) the periodic image of each vector with every component in [−L/2, L/2].
    """
    box = np.asarray(box, dtype=np.float64)
    return dr - box * np.round(dr / box)


def wrap(positions: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Positions (..., 3) folded into [0, L) per axis (exactly L, from round-off, becomes 0)."""
    box = np.asarray(box, dtype=np.float64)
    wrapped = np.mod(positions, box)
    return np.where(wrapped >= box, 0.0, wrapped)


def tile(positions: np.ndarray, species: np.ndarray, box: np.ndarray, repeats: tuple[int, int, int]
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The periodic structure repeated ``repeats`` = (a, b, c) times along x, y, z: a larger box of the same
    structure (every image a copy, so the same local environments and the same density).

    Args:
        positions: (N, 3) σ, any periodic image (wrapped first); species: (N,); box: (3,) σ.

    Returns:
        positions (a·b·c·N, 3) float64 in [0, L'), species (a·b·c·N,), box L' = (a, b, c) · box, σ.  Copy
        (i, j, k) of particle n is row ((i·b + j)·c + k)·N + n.
    """
    box = np.asarray(box, dtype=np.float64)
    counts = np.asarray(repeats, dtype=np.int64)
    if counts.shape != (3,) or (counts < 1).any():
        raise ValueError(f"repeats must be three positive integers, got {repeats}")
    shifts = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), axis=-1).reshape(-1, 3) * box
    tiled = (wrap(np.asarray(positions, dtype=np.float64), box)[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    return tiled, np.tile(np.asarray(species), len(shifts)), box * counts
