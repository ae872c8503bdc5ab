"""Invariants of the instantaneous Kob–Andersen forces, computed inside the network from the pair vectors.

At short times a particle moves ballistically, r_i(t) ≈ r_i(0) + v_i t + F_i t² / 2m, and the
isoconfigurational average over the random initial velocities leaves the structure only in the force:
the propensity grows as 3 T t² / m + |F_i|² t⁴ / 4m², and the change of a pair distance as
(F_j − F_i)·r̂_ij t² / 2m plus a term in r_ij alone.  Neither is a function of radial descriptors (a
force is a vector sum), and a network learns it from a handful of configurations only slowly.  With
``model.force_features: true`` the descriptor heads (:mod:`hpc_botan.model.descriptor_heads`) read

* per particle: |F_i| and |F_i|²;
* per pair: (F_j − F_i)·r̂_ij (positive where the forces push the pair apart), its square, and
  |F_j − F_i|²,

with F_i = Σ_j f_αβ(r_ij) r̂_ji (f = −dU/dr, r̂_ji the unit vector from j to i) the force of the run's potential (``simulation.potential``) summed over
the graph's pairs (|r_ij| < 2.0 σ; beyond, up to the potential's cutoff of 2.5 σ_αβ, |f| < 0.15 ε/σ is
left out).  All five are invariant under rotations and reflections and do not depend on the sign
convention of the edge vectors, so the cubic augmentation, prediction and export need nothing new.  The
pair force f(r) is the package's own (:func:`hpc_botan.physics.ka.pair_force`), tabulated once and
interpolated linearly (error below 1e-4 relative where pairs are found).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from hpc_botan.physics.ka import pair_force

#: Per-particle and per-pair features the heads gain.
N_NODE_FORCE_FEATURES = 2
N_PAIR_FORCE_FEATURES = 3
#: The table of f(r): from R_MIN (no pair comes closer; the repulsion there is above 10⁵ ε/σ) to
#: R_MAX (every cutoff lies below it), TABLE_POINTS points.
R_MIN, R_MAX, TABLE_POINTS = 0.5, 2.75, 9001


def force_table(potential: str) -> np.ndarray:
    """f(r) = −dU/dr (ε/σ) of the A–A, A–B and B–B pairs (3, TABLE_POINTS) on the grid R_MIN … R_MAX."""
    r = np.linspace(R_MIN, R_MAX, TABLE_POINTS)
    return np.stack([pair_force(r, a, b, potential) for a, b in ((0, 0), (0, 1), (1, 1))])


class ForceFeatures(nn.Module):
    """``forward(species (N,) float 0 = A / 1 = B, edge_index (2, E), edge_attr (E, 3) σ)
    -> (node (N, 2), pair (E, 3))``: the force invariants of the module docstring."""

    def __init__(self, potential: str):
        super().__init__()
        self.potential = potential
        # a buffer (saved with the weights): an exported program computes exactly what training saw
        self.register_buffer("table", torch.tensor(force_table(potential), dtype=torch.float32))

    def pair_forces(self, species: Tensor, edge_index: Tensor, r: Tensor) -> Tensor:
        """f_αβ(r) (E,) of every edge, linearly interpolated in the table (0 beyond R_MAX)."""
        kind = (species.index_select(0, edge_index[0]) + species.index_select(0, edge_index[1])).long()
        position = (r.clamp(R_MIN, R_MAX) - R_MIN) * ((TABLE_POINTS - 1) / (R_MAX - R_MIN))
        lower = position.floor().long().clamp(max=TABLE_POINTS - 2)
        fraction = position - lower
        flat = self.table.reshape(-1)
        base = kind * TABLE_POINTS + lower
        f = flat.index_select(0, base) * (1 - fraction) + flat.index_select(0, base + 1) * fraction
        return torch.where(r < R_MAX, f, torch.zeros_like(f))

    def forward(self, species: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        forces = self.source_forces(species, edge_index, edge_attr, edge_attr.new_zeros(species.shape[0], 3))
        return self.node_invariants(forces), self.pair_invariants(forces, edge_index, edge_attr)

    def source_forces(self, species: Tensor, edge_index: Tensor, edge_attr: Tensor, forces: Tensor) -> Tensor:
        """Add each edge's force on its source particle into ``forces`` (N, 3), ε/σ, and return it.

        Every pair appears as i→j and j→i: summing over sources gives each particle all its neighbours.
        With edge_attr = r_dst − r_src a repulsive pair (f > 0) pushes the source along −unit; with the
        opposite convention every force flips sign, and no invariant changes."""
        r, unit = _length_and_direction(edge_attr)
        return forces.index_add_(0, edge_index[0], -self.pair_forces(species, edge_index, r).unsqueeze(1) * unit)

    def destination_forces(self, species: Tensor, edge_index: Tensor, edge_attr: Tensor, forces: Tensor) -> Tensor:
        """Add each edge's force on its destination particle into ``forces`` (N, 3), ε/σ, and return it: the
        same total as :meth:`source_forces` on a graph holding both directions of every pair, and what a
        spatial domain, which holds only the edges into its own particles, can sum."""
        r, unit = _length_and_direction(edge_attr)
        return forces.index_add_(0, edge_index[1], self.pair_forces(species, edge_index, r).unsqueeze(1) * unit)

    @staticmethod
    def node_invariants(forces: Tensor) -> Tensor:
        """[|F_i|, |F_i|²] (N, 2) of the forces (N, 3)."""
        magnitude_sq = (forces * forces).sum(1)
        return torch.stack([magnitude_sq.sqrt(), magnitude_sq], dim=1)

    @staticmethod
    def pair_invariants(forces: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """[(F_j − F_i)·r̂_ij, its square, |F_j − F_i|²] (E, 3) of the edges, from the forces (N, 3)."""
        _, unit = _length_and_direction(edge_attr)
        difference = forces.index_select(0, edge_index[1]) - forces.index_select(0, edge_index[0])
        along = (difference * unit).sum(1)
        return torch.stack([along, along * along, (difference * difference).sum(1)], dim=1)


def _length_and_direction(edge_attr: Tensor) -> tuple[Tensor, Tensor]:
    """|r| (E,) and r / |r| (E, 3) of the edge vectors (E, 3)."""
    r = torch.linalg.vector_norm(edge_attr, dim=1)
    return r, edge_attr / r.clamp_min(1e-6).unsqueeze(1)
