"""Augmentation of training graphs: the edge vectors are the only geometric input.

The network sees positions only through ``edge_attr`` = r_j − r_i, so rotating or reflecting a
structure is a linear map of every edge vector by the same 3 × 3 matrix.
"""
from __future__ import annotations

import itertools

import torch
from torch import Tensor

#: The 48 symmetries of the cube (6 axis permutations × 8 sign flips) as (48, 3, 3) matrices.
CUBIC_SYMMETRIES = torch.stack([
    torch.eye(3)[list(perm)] * torch.tensor(signs, dtype=torch.float32)[:, None]
    for perm in itertools.permutations(range(3)) for signs in itertools.product((1.0, -1.0), repeat=3)
])


def random_rotation(generator: torch.Generator) -> Tensor:
    """A rotation matrix (3, 3) drawn uniformly from SO(3) (QR of a Gaussian matrix, det = +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))[None, :]
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(torch.float32)


def augmentation_matrix(kind: str, generator: torch.Generator) -> Tensor | None:
    """The (3, 3) matrix for one training graph, or None for ``kind == "none"``."""
    if kind == "none":
        return None
    if kind == "cubic":
        return CUBIC_SYMMETRIES[int(torch.randint(48, (1,), generator=generator))]
    if kind == "rotation":
        return random_rotation(generator)
    raise ValueError(f"augmentation: unknown kind {kind!r}")


def transform_edges(edge_attr: Tensor, matrix: Tensor | None) -> Tensor:
    """Edge vectors (E, 3) mapped by ``matrix`` (3, 3) acting on column vectors: r → M r."""
    return edge_attr if matrix is None else edge_attr @ matrix.to(edge_attr).t()
