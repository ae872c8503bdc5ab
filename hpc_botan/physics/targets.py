"""Dynamical observables of an isoconfigurational ensemble (pure numpy).

Shapes: ``R`` runs, ``F`` time points, ``N`` particles.  Lengths in σ_AA, times in τ.
"""
from __future__ import annotations

import numpy as np


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
