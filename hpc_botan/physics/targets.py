"""Dynamical observables of an isoconfigurational ensemble (pure numpy).

Shapes: ``R`` runs, ``F`` time points, ``N`` particles.  Lengths in σ_AA, times in τ.
"""
from __future__ import annotations

import numpy as np

from hpc_botan.physics.pbc import minimum_image


def self_intermediate_scattering(displacements: np.ndarray, k: float = 2.0 * np.pi,
                                 mask: np.ndarray | None = None) -> np.ndarray:
    """Self-intermediate scattering function F_s(k, t), spherically averaged.

    F_s(k, t) = ⟨ (1/N_sel) Σ_i sin(k |Δr_i(t)|) / (k |Δr_i(t)|) ⟩_runs, the exact average
    of exp(i k·Δr_i) over directions of the wave vector.

    Args:
        displacements: (R, F, N, 3) unwrapped displacements r_i(t) − r_i(0), σ.
        k: wave number, 1/σ (2π ≈ the first peak of the A–A structure factor).
        mask: optional (N,) bool selecting particles (e.g. species == 0 for A).

    Returns:
        (F,) F_s at each time point (1 at zero displacement, dimensionless).
    """
    d = np.asarray(displacements, dtype=np.float64)
    if mask is not None:
        d = d[:, :, np.asarray(mask, dtype=bool)]
    kr = k * np.linalg.norm(d, axis=-1)  # (R, F, N_sel)
    return np.sinc(kr / np.pi).mean(axis=(0, 2))  # np.sinc(x) = sin(πx)/(πx)


def relaxation_time(times: np.ndarray, fs: np.ndarray, level: float = float(np.exp(-1.0))) -> float:
    """Time τ at which a decaying correlation ``fs`` first reaches ``level`` (default 1/e → τα).

    Interpolates F linearly in log t between the two bracketing time points.  Returns NaN
    if ``fs`` never falls to ``level`` within ``times``; if it is already below at the first
    point, NaN as well (τ lies before the first point).

    Args:
        times: (F,) increasing positive times, τ.
        fs: (F,) correlation values at those times.
    """
    times = np.asarray(times, dtype=np.float64)
    fs = np.asarray(fs, dtype=np.float64)
    below = np.nonzero(fs <= level)[0]
    if below.size == 0 or below[0] == 0:
        return float("nan")
    j = below[0]
    t0, t1 = np.log(times[j - 1]), np.log(times[j])
    f0, f1 = fs[j - 1], fs[j]
    frac = (f0 - level) / (f0 - f1)
    return float(np.exp(t0 + frac * (t1 - t0)))


# --------------------------------------------------------------------------- ensemble targets
# Conventions: ``positions0`` (N, 3) is the t = 0 structure; ``positions`` (R, N, 3) holds
# every run's *unwrapped* positions at one time point (call once per time point);
# ``edge_index`` (2, E) lists directed pairs (source i, destination j); ``box`` (3,) in σ.


def propensity(positions0: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Particle propensity S_i(t) = ⟨|r_i(t) − r_i(0)|⟩_IC (mean absolute displacement, σ).

    Args:
        positions0: (N, 3) t = 0 positions, σ.
        positions: (R, N, 3) unwrapped positions of the R runs at time t, σ.

    Returns:
        (N,) S_i.
    """
    return np.linalg.norm(positions - positions0, axis=-1).mean(axis=0)


def mirror_edges(edge_index: np.ndarray, n: int) -> np.ndarray | None:
    """For each edge (i, j), the position of (j, i) in ``edge_index`` (2, E); None if some are missing."""
    src, dst = np.asarray(edge_index, dtype=np.int64)
    key = src * n + dst
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    pos = np.searchsorted(sorted_key, dst * n + src)
    if pos.size and (pos.max() >= sorted_key.size or not np.array_equal(sorted_key[pos], dst * n + src)):
        return None
    return order[pos]


_FIND = object()  # sentinel: look for the mirror edges here


def pair_distance_change_per_run(positions0: np.ndarray, positions: np.ndarray, edge_index: np.ndarray,
                                 box: np.ndarray, chunk: int = 4096, mirror: np.ndarray | None = _FIND
                                 ) -> np.ndarray:
    """Per-run pair-distance change |r_ij(t)| − |r_ij(0)| (σ), minimum-image pair vectors.

    r_ij(t) is built as r_ij(0) + Δr_j − Δr_i from unwrapped displacements and folded back
    to the minimum image only where a component exceeds L/2, which gives the same vectors as
    the minimum image of r_j(t) − r_i(t) at a fraction of the cost.  Edges are processed in
    chunks so that memory stays O(chunk · R) beyond the (R, E) result.  When every edge's
    reverse is listed too (a graph's usual both directions), each pair is computed once and
    copied: the reverse vector is the exact negation, so the copy is bit-identical.

    Args:
        positions0: (N, 3); positions: (R, N, 3) unwrapped; edge_index: (2, E); box: (3,).
        mirror: :func:`mirror_edges` of ``edge_index`` when the caller has it already (one graph,
            many time points); by default it is looked up here.

    Returns:
        (R, E) float64.
    """
    box = np.asarray(box, dtype=np.float64)
    src, dst = edge_index
    n_runs, n, _ = positions.shape
    if mirror is _FIND:
        mirror = mirror_edges(edge_index, n)
    todo = np.flatnonzero(src <= dst) if mirror is not None else np.arange(src.shape[0])
    # one row of R·3 displacement components per particle: gathers read contiguous rows
    rows = np.ascontiguousarray((positions - positions0).transpose(1, 0, 2)).reshape(n, n_runs * 3)
    out = np.empty((src.shape[0], n_runs))   # edges first: each chunk writes contiguous memory
    half = box / 2
    for a in range(0, todo.shape[0], chunk):
        idx = todo[a:a + chunk]
        s, d = src[idx], dst[idx]
        r0 = minimum_image(positions0[d] - positions0[s], box)
        d0 = np.sqrt(np.einsum("ek,ek->e", r0, r0))
        rel = rows[d]
        rel -= rows[s]
        rel = rel.reshape(idx.shape[0], n_runs, 3)
        rel += r0[:, None, :]
        if (np.abs(rel) > half).any():
            rel -= box * np.round(rel / box)
        dist = np.sqrt(np.einsum("erk,erk->er", rel, rel))
        dist -= d0[:, None]
        out[idx] = dist
    if mirror is not None:
        rest = np.flatnonzero(src > dst)
        out[rest] = out[mirror[rest]]
    return out.T


def pair_distance_change(positions0: np.ndarray, positions: np.ndarray, edge_index: np.ndarray,
                         box: np.ndarray) -> np.ndarray:
    """E_ij(t) = ⟨|r_ij(t)| − |r_ij(0)|⟩_IC with minimum-image pair vectors (σ).

    Args:
        positions0: (N, 3); positions: (R, N, 3) unwrapped; edge_index: (2, E); box: (3,).

    Returns:
        (E,) E_ij, symmetric (E_ij = E_ji) when both directions are listed.
    """
    return pair_distance_change_per_run(positions0, positions, edge_index, box).mean(axis=0)


def _neighbour_mean(values: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
    """Mean of ``values[j]`` (N, 3) over the destinations j of each source i; 0 without neighbours."""
    src, dst = edge_index
    n = values.shape[0]
    counts = np.bincount(src, minlength=n).astype(np.float64)
    total = np.zeros_like(values)
    np.add.at(total, src, values[dst])
    return total / np.maximum(counts, 1.0)[:, None]


def cage_relative_displacement(positions0: np.ndarray, positions: np.ndarray, shell_index: np.ndarray) -> np.ndarray:
    """R_i(t) = ⟨|Δr_i − (1/n_i) Σ_{j ∈ shell(i)} Δr_j|⟩_IC (σ): displacement relative to the cage.

    Args:
        positions0: (N, 3); positions: (R, N, 3) unwrapped.
        shell_index: (2, E') first-shell pairs (i, j), |r_ij(0)| < 1.35 by convention.

    Returns:
        (N,) R_i; a particle without neighbours keeps its plain displacement.
    """
    n = positions0.shape[0]
    result = np.zeros(n)
    for run in positions:
        disp = run - positions0
        result += np.linalg.norm(disp - _neighbour_mean(disp, shell_index), axis=-1)
    return result / positions.shape[0]


def local_average_displacement(positions0: np.ndarray, positions: np.ndarray, shell_index: np.ndarray) -> np.ndarray:
    """⟨Σ_j Δr_j Θ(1.35 − r_ij(0)) / Σ_j Θ(1.35 − r_ij(0))⟩_IC, vectors (N, 3), σ.

    The sum runs over i itself (r_ii = 0 lies inside the shell) and its first-shell
    neighbours given by ``shell_index`` (2, E').
    """
    n = positions0.shape[0]
    src, dst = shell_index
    counts = np.bincount(src, minlength=n).astype(np.float64) + 1.0
    result = np.zeros((n, 3))
    for run in positions:
        disp = run - positions0
        total = disp.copy()
        np.add.at(total, src, disp[dst])
        result += total / counts[:, None]
    return result / positions.shape[0]


def d2min(positions0: np.ndarray, positions: np.ndarray, shell_index: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Falk–Langer non-affine displacement ⟨D²_min,i(t)⟩_IC (σ², summed over neighbours).

    D²_min,i = min_J Σ_j |d_ij(t) − J d_ij(0)|², over the first-shell neighbours j of i, where
    d_ij(0) is the minimum-image pair vector at t = 0 and d_ij(t) = d_ij(0) + Δr_j − Δr_i
    (unwrapped displacements, so no periodic ambiguity).  The best local affine map is
    J = X Y⁻¹ with X = Σ_j d_ij(t) d_ij(0)ᵀ, Y = Σ_j d_ij(0) d_ij(0)ᵀ.  Particles with fewer
    than 3 neighbours (Y singular) get NaN.

    Args:
        positions0: (N, 3); positions: (R, N, 3) unwrapped; shell_index: (2, E'); box: (3,).

    Returns:
        (N,) ⟨D²_min⟩.
    """
    n = positions0.shape[0]
    src, dst = shell_index
    d0 = minimum_image(positions0[dst] - positions0[src], box)  # (E', 3)
    y = np.zeros((n, 3, 3))
    np.add.at(y, src, d0[:, :, None] * d0[:, None, :])
    counts = np.bincount(src, minlength=n)
    ok = counts >= 3
    y_inv = np.full((n, 3, 3), np.nan)
    y_inv[ok] = np.linalg.pinv(y[ok])
    result = np.zeros(n)
    for run in positions:
        disp = run - positions0
        dt = d0 + disp[dst] - disp[src]
        x = np.zeros((n, 3, 3))
        np.add.at(x, src, dt[:, :, None] * d0[:, None, :])
        j = x @ y_inv  # (N, 3, 3)
        resid = dt - np.einsum("eab,eb->ea", j[src], d0)
        per_particle = np.zeros(n)
        np.add.at(per_particle, src, np.einsum("ea,ea->e", resid, resid))
        result += per_particle
    result /= positions.shape[0]
    result[~ok] = np.nan
    return result


def split_half_reliability(per_run: np.ndarray, mask: np.ndarray | None = None, n_splits: int = 50,
                           seed: int = 0) -> tuple[float, float]:
    """Noise ceiling of an ensemble average from its per-run values.

    The R runs are split at random into two halves; the Pearson correlation r of the two
    half-averages across particles (or edges) measures how reproducible the average is.
    The Spearman–Brown correction gives the reliability of the full R-run average,
    ρ_full = 2r / (1 + r), and √ρ_full is the highest Pearson ρ any predictor can reach
    against the R-run target.  Averaged over ``n_splits`` random splits (seeded).

    Args:
        per_run: (R, M) per-run values, e.g. |Δr_i| of each run for S_i.
        mask: optional (M,) bool selecting the entries (e.g. type-A particles).

    Returns:
        (reliability ρ_full, ceiling √ρ_full).
    """
    values = np.asarray(per_run, dtype=np.float64)
    if mask is not None:
        values = values[:, np.asarray(mask, dtype=bool)]
    n_runs = values.shape[0]
    if n_runs < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    rs = []
    for _ in range(n_splits):
        perm = rng.permutation(n_runs)
        a = values[perm[: n_runs // 2]].mean(axis=0)
        b = values[perm[n_runs // 2:]].mean(axis=0)
        rs.append(np.corrcoef(a, b)[0, 1])
    r = float(np.mean(rs))
    reliability = 2.0 * r / (1.0 + r)
    return reliability, float(np.sqrt(max(reliability, 0.0)))
