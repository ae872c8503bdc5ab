"""Linear output heads on the ridge baseline's descriptors: a BOTAN that contains its baseline.

The ridge baseline (:mod:`hpc_botan.baselines`) predicts S_i from the coarse-grained radial
descriptors D_i of particle i (:mod:`hpc_botan.physics.descriptors`, F = 184 features with the
default settings) and E_ij from the pair features P_ij = [D_i + D_j, |D_i − D_j|, r_ij(0),
basis(r_ij(0))] (2F + 1 + 27 features).  With ``model.descriptors: heads`` the same features enter
BOTAN's outputs through linear heads, added to the decoders' outputs in the network's standardised
output units (before the affine map to σ, :class:`hpc_botan.model.botan.Botan`)::

    node_k = offset_k + scale_k · (Dec_k(h_v) + w_k · D̃_i + c_k)
    edge_k = offset_k + scale_k · (Dec_k(h_e) + u_k · P̃_ij)

D̃ and P̃ are the features standardised by their mean and spread over the training data (buffers
that training sets).  The heads start at zero, so a network with them computes exactly what the
same weights compute without them (published weights included) until they are fitted: by least
squares together with the decoders' last layer (``train.head_init: least_squares``,
:mod:`hpc_botan.train.head_init`), then by gradient descent with the rest.  A network whose message
passing contributes nothing reduces to the ridge model.

The pair features are never stored for all E edges at once where a linear map allows: the D_i + D_j
block acts per particle and is then gathered; only |D_i − D_j| is formed per edge, (E, F).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hpc_botan.physics.descriptors import PAIR_DISTANCE_CENTRES, PAIR_DISTANCE_WIDTH, n_pair_features

#: Spreads below this are a feature constant over the training data, left unscaled.  The features are
#: of order 0.1–10; a distance-basis Gaussian centred far from every scored pair has a spread of
#: 1e-38, and dividing by it made the gradients NaN.
MIN_SPREAD = 1.0e-6
#: The standardisation buffers of the heads (mean, spread of the node and of the pair features).
DESCRIPTOR_BUFFERS = ("descriptor_heads.node_mean", "descriptor_heads.node_std",
                      "descriptor_heads.pair_mean", "descriptor_heads.pair_std")


def distance_features(edge_attr: Tensor) -> Tensor:
    """[r, exp(−(r − c_k)² / 2w²) for the basis centres c_k] (E, 1 + 27) of r = |edge_attr| (E, 3), σ."""
    r = torch.linalg.vector_norm(edge_attr, dim=1, keepdim=True)
    centres = torch.tensor(PAIR_DISTANCE_CENTRES, dtype=edge_attr.dtype, device=edge_attr.device)
    return torch.cat([r, torch.exp(-0.5 * ((r - centres) / PAIR_DISTANCE_WIDTH) ** 2)], dim=1)


def pair_features(descriptors: Tensor, edge_index: Tensor, edge_attr: Tensor, extra: Tensor | None = None) -> Tensor:
    """P_ij (E, 2F + 28 [+ X]) of every edge, unstandardised: what the heads see (materialised; for fitting);
    ``extra`` (E, X): per-pair features appended last (the force invariants, :mod:`hpc_botan.model.force_features`)."""
    d_src = descriptors.index_select(0, edge_index[0])
    d_dst = descriptors.index_select(0, edge_index[1])
    blocks = [d_src + d_dst, (d_src - d_dst).abs(), distance_features(edge_attr)]
    return torch.cat(blocks if extra is None else [*blocks, extra], dim=1)


class DescriptorHeads(nn.Module):
    """``forward(descriptors (N, F), edge_index (2, E), edge_attr (E, 3), extra (E, X) | None)
    -> (node (N, K), edge (E, K))``; ``n_pair_extra`` = X, per-pair features beyond the ridge's.

    Outputs are in the network's standardised units (they are added to the decoders' outputs).
    """

    def __init__(self, n_node_features: int, n_outputs: int, n_pair_extra: int = 0):
        super().__init__()
        f, p = n_node_features, n_pair_features(n_node_features) + n_pair_extra
        self.n_node_features = f
        self.n_pair_extra = n_pair_extra
        # the node head's bias gives nodes an intercept of their own where one decoder serves nodes and
        # edges (the reference network), as the two ridge models have; the pair head uses the decoder's
        self.node = nn.Linear(f, n_outputs)
        self.pair = nn.Linear(p, n_outputs, bias=False)
        for parameter in (self.node.weight, self.node.bias, self.pair.weight):
            nn.init.zeros_(parameter)   # zero: the network is the one without heads until they are fitted
        for name, size, value in (("node_mean", f, 0.0), ("node_std", f, 1.0), ("pair_mean", p, 0.0),
                                  ("pair_std", p, 1.0)):
            self.register_buffer(name, torch.full((size,), value))

    def set_standardisation(self, node_mean: Tensor, node_std: Tensor, pair_mean: Tensor, pair_std: Tensor) -> None:
        """Features enter as (v − mean) / std (each argument the width of its features); a std below
        :data:`MIN_SPREAD` (a feature constant over the training data) leaves that feature unscaled."""
        for name, value in (("node_mean", node_mean), ("node_std", node_std), ("pair_mean", pair_mean),
                            ("pair_std", pair_std)):
            value = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
            if name.endswith("_std"):
                value = torch.where(value > MIN_SPREAD, value, torch.ones_like(value))
            getattr(self, name).copy_(value)

    def standardised_node_features(self, descriptors: Tensor) -> Tensor:
        """D̃ (N, F)."""
        return (descriptors - self.node_mean) / self.node_std

    def standardised_pair_features(self, descriptors: Tensor, edge_index: Tensor, edge_attr: Tensor,
                                   extra: Tensor | None = None) -> Tensor:
        """P̃ (E, 2F + 28 [+ X]), materialised (least-squares fitting)."""
        return (pair_features(descriptors, edge_index, edge_attr, extra) - self.pair_mean) / self.pair_std

    def forward(self, descriptors: Tensor, edge_index: Tensor, edge_attr: Tensor, extra: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        return self.node_head(descriptors), self.pair_head(descriptors, edge_index, edge_attr, extra)

    def node_head(self, descriptors: Tensor) -> Tensor:
        """w · D̃_i + c (N, K) of the node features (N, F)."""
        return self.node(self.standardised_node_features(descriptors))

    def pair_head(self, descriptors: Tensor, edge_index: Tensor, edge_attr: Tensor, extra: Tensor | None = None,
                  per_particle: Tensor | None = None) -> Tensor:
        """u · P̃_ij (E, K) of the edges; ``per_particle`` (N, K), :meth:`per_particle_term`, where it is already
        computed (a caller that goes over the edges a chunk at a time computes it once)."""
        f = self.n_node_features
        if (extra is None) != (self.n_pair_extra == 0):
            raise ValueError(f"these heads take {self.n_pair_extra} extra pair features, got "
                             f"{'none' if extra is None else tuple(extra.shape)}")
        # u · P̃ = (u / s) · P − (u / s) · μ, split by the three blocks of P
        scaled = self.pair.weight / self.pair_std                 # (K, P)
        if per_particle is None:
            per_particle = self.per_particle_term(descriptors)
        src, dst = edge_index[0], edge_index[1]
        edge = per_particle.index_select(0, src) + per_particle.index_select(0, dst)
        difference = (descriptors.index_select(0, src) - descriptors.index_select(0, dst)).abs()
        d = n_pair_features(f)
        edge = edge + difference @ scaled[:, f:2 * f].t() + distance_features(edge_attr) @ scaled[:, 2 * f:d].t()
        if extra is not None:
            edge = edge + extra @ scaled[:, d:].t()
        return edge - scaled @ self.pair_mean

    def per_particle_term(self, descriptors: Tensor) -> Tensor:
        """(N, K): the D_i + D_j block of the pair head, per particle (then gathered for both ends of an edge)."""
        return descriptors @ (self.pair.weight[:, :self.n_node_features] / self.pair_std[:self.n_node_features]).t()
