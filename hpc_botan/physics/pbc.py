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
