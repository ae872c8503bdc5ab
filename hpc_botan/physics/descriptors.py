"""Structural descriptors for the baselines (pure numpy/scipy, no I/O).

Lengths in σ (σ_AA), densities in σ⁻³.  Positions are (N, 3) in an orthorhombic periodic box given
by its edge lengths ``box`` (3,); species are (N,) ints, 0 = A, 1 = B.

**Radial shell densities** (Boattini, Smallenburg, Filion, PRL 127, 088007 (2021), "Averaging local
structure to predict the dynamic propensity in supercooled liquids"): for particle i, neighbour
species s and shell centre r_k,

    G_i(k, s) = Σ_{j ≠ i, species(j) = s} exp(−(r_ij − r_k)² / (2 δ²)),

with shell centres r_k = 0.80, 0.90, …, 3.00 σ (23 shells) and width δ = 0.1 σ.  Why these values:
the first peaks of the Kob–Andersen pair correlations (A–B near 0.8–0.9 σ, A–A near 1.0 σ) are about
0.2–0.3 σ wide, so 0.1 σ resolves their shape; with the centres spaced by the width, the shells
together weigh every distance in the range alike (their sum is flat in r to about 1e-8), so no distance
falls between shells, while a finer spacing would only add strongly correlated features; no pair is
closer than about 0.75 σ,
so nothing is lost below 0.8 σ; and 3 σ reaches the third coordination shell.  Neighbours are searched
up to r_max + 3 δ, where a shell's Gaussian has fallen to exp(−4.5) ≈ 1 %.

**Coarse-graining** (same reference): the descriptor of particle i at coarse-graining length ℓ is the
weighted mean of the neighbours' shell densities, the particle itself included,

    Ḡ_i(ℓ) = Σ_{j: r_ij < ℓ} w(r_ij) G_j / Σ_{j: r_ij < ℓ} w(r_ij),   w(r) = exp(−r / ℓ),  w(0) = 1 (j = i),

and ℓ = 0 means the particle alone (Ḡ_i(0) = G_i).  The full descriptor concatenates ℓ = 0, 1, 2, 3 σ:
4 × 2 species × 23 shells = 184 features per particle.

The one-variable inputs of the simplest baselines are the Gaussian-weighted local number density of a
particle (:func:`local_density`) and the initial pair distance r_ij(0) (:func:`pair_distances`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs

#: Species codes (0 = A, 1 = B), the neighbour species the shell densities are split by.
SPECIES = (0, 1)


@dataclass(frozen=True)
class DescriptorSettings:
    """Parameters of :func:`coarse_grained_descriptors` (σ).

    Attributes:
        shell_centres: (K,) shell centres r_k, σ.
        shell_width: δ, the standard deviation of each shell's Gaussian, σ.
        lengths: coarse-graining lengths ℓ, σ; 0 = the particle alone.
    """

    shell_centres: tuple[float, ...] = tuple(np.round(np.arange(0.8, 3.0 + 1e-9, 0.1), 10).tolist())
    shell_width: float = 0.1
    lengths: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0)

    @property
    def shell_cutoff(self) -> float:
        """Neighbour distance (σ) beyond which shell contributions are dropped: r_max + 3 δ."""
        return max(self.shell_centres) + 3.0 * self.shell_width

    @property
    def n_features(self) -> int:
        return len(self.lengths) * len(SPECIES) * len(self.shell_centres)

    def reach(self) -> float:
        """The largest neighbour distance (σ) any part of the descriptor looks at."""
        return max(self.shell_cutoff, max(self.lengths))

    def fitted_to(self, box: np.ndarray) -> "DescriptorSettings":
        """These settings, cut down to what the minimum image allows in ``box`` (3,) σ.

        Shells whose neighbour search would reach half the shortest edge are dropped, and so are
        coarse-graining lengths at or beyond it (only small test boxes are affected: the paper's
        box is 15.06 σ).  Raises ``ValueError`` if no shell is left.
        """
        half = 0.5 * float(np.min(box))
        centres = tuple(c for c in self.shell_centres if c + 3.0 * self.shell_width < half)
        if not centres:
            raise ValueError(f"box {np.asarray(box).tolist()} is too small for shells from {min(self.shell_centres)} σ")
        return DescriptorSettings(centres, self.shell_width, tuple(ell for ell in self.lengths if ell < half))

    def as_dict(self) -> dict:
        return {"shell_centres": list(self.shell_centres), "shell_width": self.shell_width,
                "lengths": list(self.lengths), "n_features": self.n_features}


def neighbour_distances(positions: np.ndarray, box: np.ndarray, cutoff: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour pairs closer than ``cutoff`` σ, both directions: src (P,), dst (P,) int64, r (P,) σ.

    One search serves every function of this module (pass it as ``pairs``) when ``cutoff`` covers
    the largest distance each of them needs.
    """
    edge_index = neighbor_pairs(positions, box, cutoff)
    r = np.linalg.norm(edge_vectors(np.asarray(positions, dtype=np.float64), edge_index, box), axis=1)
    return edge_index[0], edge_index[1], r


def radial_shell_densities(positions: np.ndarray, species: np.ndarray, box: np.ndarray,
                           shell_centres: np.ndarray, shell_width: float, *,
                           pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Gaussian-smoothed neighbour counts G_i(k, s) in radial shells, per neighbour species.

    Args:
        positions: (N, 3) positions, σ.
        species: (N,) int, 0 = A, 1 = B.
        box: (3,) box edge lengths, σ.
        shell_centres: (K,) shell centres r_k, σ.
        shell_width: δ, σ.
        pairs: optional precomputed (src, dst, r) listing every pair closer than
            max(shell_centres) + 3 δ in both directions (more is fine); searched here when absent.

    Returns:
        (N, 2, K) float64: [i, s, k] = Σ_{j ≠ i of species s} exp(−(r_ij − r_k)² / 2δ²)
        (dimensionless counts; a neighbour exactly at r_k adds 1).
    """
    centres = np.asarray(shell_centres, dtype=np.float64)
    cutoff = float(centres.max()) + 3.0 * shell_width
    src, dst, r = pairs if pairs is not None else neighbour_distances(positions, box, cutoff)
    # the kernel is symmetric in i and j: evaluate it once per unordered pair, credit both ends
    keep = (r < cutoff) & (src < dst)
    first, second, r = src[keep], dst[keep], r[keep]
    n = len(species)
    kernel = np.exp(-0.5 * ((r[:, None] - centres[None, :]) / shell_width) ** 2)  # (P/2, K)
    out = np.empty((n, len(SPECIES), len(centres)))
    species = np.asarray(species)
    # row i collects the kernel rows of its pairs whose other end has species s: a sparse (N × P/2) product
    rows = np.concatenate([first, second])
    cols = np.concatenate([np.arange(len(r)), np.arange(len(r))])
    other = np.concatenate([species[second], species[first]])
    for s in SPECIES:
        sel = other == s
        gather = scipy.sparse.csr_matrix((np.ones(int(sel.sum())), (rows[sel], cols[sel])), shape=(n, len(r)))
        out[:, s, :] = gather @ kernel
    return out


def coarse_grain(values: np.ndarray, length: float, *, positions: np.ndarray | None = None,
                 box: np.ndarray | None = None,
                 pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Weighted neighbourhood mean Σ_j w(r_ij) v_j / Σ_j w(r_ij) over r_ij < ℓ, i itself included.

    Args:
        values: (N, F) per-particle values.
        length: ℓ, σ; w(r) = exp(−r/ℓ); 0 returns ``values`` unchanged (the particle alone).
        positions, box: (N, 3) and (3,) σ, to search the neighbours when ``pairs`` is absent.
        pairs: optional precomputed (src, dst, r) with every ordered pair closer than ℓ.

    Returns:
        (N, F) float64.
    """
    values = np.asarray(values, dtype=np.float64)
    if length <= 0:
        return values.copy()
    if pairs is None:
        if positions is None or box is None:
            raise ValueError("coarse_grain: give positions and box, or pairs")
        pairs = neighbour_distances(positions, box, length)
    src, dst, r = pairs
    keep = r < length
    n = values.shape[0]
    weights = scipy.sparse.csr_matrix((np.exp(-r[keep] / length), (src[keep], dst[keep])), shape=(n, n))
    weights = weights + scipy.sparse.identity(n, format="csr")  # the particle itself, w(0) = 1
    norm = np.asarray(weights.sum(axis=1)).ravel()
    return (weights @ values) / norm[:, None]


def coarse_grained_descriptors(positions: np.ndarray, species: np.ndarray, box: np.ndarray,
                               settings: DescriptorSettings = DescriptorSettings(), *,
                               pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The concatenated coarse-grained shell densities of every particle (module docstring).

    Args:
        positions: (N, 3) σ; species: (N,) 0 = A, 1 = B; box: (3,) σ, every edge above twice
            ``settings.reach()`` (see :meth:`DescriptorSettings.fitted_to`).
        settings: shells and coarse-graining lengths.
        pairs: optional (src, dst, r) from :func:`neighbour_distances` with a cutoff of at least
            ``settings.reach()``; searched here when absent.

    Returns:
        (N, L·2·K) float64, blocks ordered by length ℓ, then neighbour species (A, B), then shell:
        column ``(l·2 + s)·K + k`` is Ḡ_i(ℓ_l) of species s, shell k.

    Raises ``ValueError`` if ``box`` is too small for ``settings`` (the minimum image would not hold).
    """
    if settings.fitted_to(box) != settings:
        raise ValueError(f"box {np.asarray(box).tolist()} σ is too small for descriptors that look "
                         f"{settings.reach():g} σ around each particle (at most half its shortest edge)")
    positions = np.asarray(positions, dtype=np.float64)
    # one neighbour search at the largest reach serves the shells and every coarse-graining length
    if pairs is None:
        pairs = neighbour_distances(positions, box, settings.reach())
    shells = radial_shell_densities(positions, species, box, np.array(settings.shell_centres),
                                    settings.shell_width, pairs=pairs).reshape(len(positions), -1)
    return np.concatenate([coarse_grain(shells, ell, pairs=pairs) for ell in settings.lengths], axis=1)


def local_density(positions: np.ndarray, box: np.ndarray, width: float = 1.0, *,
                  pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Gaussian-weighted local number density around each particle, all species, σ⁻³.

        ρ_i = Σ_{j ≠ i} exp(−r_ij² / 2w²) / (2π w²)^{3/2},   neighbours up to 3w

    (a Gaussian-smoothed count of neighbours, normalised so that a uniform fluid of density ρ
    gives ρ as w grows; at w = 1 σ it weighs mostly the first shell).

    Args:
        positions: (N, 3) σ; box: (3,) σ, every edge above 6w.
        width: w, σ.
        pairs: optional (src, dst, r) from :func:`neighbour_distances` with a cutoff of at least 3w.

    Returns:
        (N,) float64, σ⁻³.
    """
    src, _, r = pairs if pairs is not None else neighbour_distances(positions, box, 3.0 * width)
    keep = r < 3.0 * width
    src, r = src[keep], r[keep]
    weights = np.exp(-0.5 * (r / width) ** 2) / (2.0 * np.pi * width ** 2) ** 1.5
    return np.bincount(src, weights=weights, minlength=len(positions))


def pair_distances(edge_attr: np.ndarray) -> np.ndarray:
    """|r_ij(0)| (E,) σ from the graph's edge vectors ``edge_attr`` (E, 3) = r_j − r_i, σ."""
    return np.linalg.norm(np.asarray(edge_attr, dtype=np.float64), axis=1)


#: Centres (σ) and width of the Gaussian basis of r_ij(0) among the E_ij ridge features.  E_ij depends
#: on the starting distance non-linearly (the one-variable r_ij(0) baseline is a binned curve), which a
#: single linear r_ij(0) term cannot follow; with the basis the ridge contains that curve.
PAIR_DISTANCE_CENTRES = tuple(round(0.7 + 0.05 * k, 3) for k in range(27))   # 0.70 … 2.00
PAIR_DISTANCE_WIDTH = 0.05


def distance_basis(distances: np.ndarray) -> np.ndarray:
    """Gaussians exp(−(r − c)² / 2w²) of r_ij(0) at :data:`PAIR_DISTANCE_CENTRES`; (P,) σ → (P, K)."""
    r = np.asarray(distances, np.float64)[:, None]
    centres = np.asarray(PAIR_DISTANCE_CENTRES)[None, :]
    return np.exp(-0.5 * ((r - centres) / PAIR_DISTANCE_WIDTH) ** 2)


def n_pair_features(n_node_features: int) -> int:
    """Width of :func:`pair_features` for ``n_node_features`` per-particle descriptors."""
    return 2 * n_node_features + 1 + len(PAIR_DISTANCE_CENTRES)


def pair_features(node_descriptors: np.ndarray, edge_index: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Descriptors of pairs (i, j) for the E_ij ridge model: symmetric in i and j.

    Args:
        node_descriptors: (N, F) per-particle descriptors.
        edge_index: (2, P) pairs (i, j).
        distances: (P,) |r_ij(0)|, σ.

    Returns:
        (P, 2F + 1 + K) float64: [D_i + D_j, |D_i − D_j|, r_ij(0), basis(r_ij(0))] — what the pair's
        neighbourhood holds in all, how different its two ends are, how far apart they start, and
        that distance through K Gaussians (:func:`distance_basis`).
    """
    d_src = node_descriptors[edge_index[0]]
    d_dst = node_descriptors[edge_index[1]]
    r = np.asarray(distances, np.float64)
    return np.concatenate([d_src + d_dst, np.abs(d_src - d_dst), r[:, None], distance_basis(r)], axis=1)
