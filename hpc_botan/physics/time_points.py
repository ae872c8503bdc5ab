"""Recording times calibrated to the liquid: the published times as fractions of τα.

The published data set (REFERENCE §1) records every temperature at ten times t_k; the
seventh is τα itself.  Dividing them by that τα gives fractions t_k / τα that describe
the same stage of relaxation at any temperature.  A run whose time points are
``calibrated`` measures its own τα in a short pilot (``hpc_botan.calibrate``) and records at
those fractions of it, so that "t = τα" means the 1/e crossing of F_s of *this* liquid,
whatever its potential form, density or size.

Pure functions; times are in τ (LJ units) throughout.
"""
from __future__ import annotations

import math

import numpy as np

#: The published time points (τ) per temperature, as listed with GlassBench (REFERENCE §1).
PUBLISHED_TIMES: dict[float, tuple[float, ...]] = {
    0.44: (0.13, 1.3, 13, 130, 412, 1300, 4120, 13000, 41200, 130000),
    0.50: (0.108, 0.434, 2.17, 6.86, 21.7, 68.6, 217, 686, 2170, 6860),
    0.56: (0.104, 0.33, 0.99, 1.65, 5.2, 16.5, 52, 165, 520, 1650),
    0.64: (0.032, 0.1, 0.165, 0.52, 1.65, 5.2, 16.5, 52, 165, 520),
}
#: The published α-relaxation time (τ) per temperature: the seventh time point of each.
PUBLISHED_TAU_ALPHA: dict[float, float] = {0.44: 4120.0, 0.50: 217.0, 0.56: 52.0, 0.64: 16.5}
#: How many published time points each temperature has (the most ``calibrated`` can use).
N_PUBLISHED = 10


def nearest_published_temperature(temperature: float) -> float:
    """The published temperature closest to ``temperature`` (ties: the lower one)."""
    return min(PUBLISHED_TIMES, key=lambda t: (abs(t - temperature), t))


def published_fractions(temperature: float) -> tuple[float, ...]:
    """The published t_k / τα (dimensionless, increasing, 10 values) of the nearest published temperature.

    Temperatures outside 0.44 … 0.64 take the fractions of the nearest end: the shape of the
    schedule (how far before and after τα it reaches) is kept, its scale comes from τα.
    """
    t_pub = nearest_published_temperature(temperature)
    tau = PUBLISHED_TAU_ALPHA[t_pub]
    return tuple(t / tau for t in PUBLISHED_TIMES[t_pub])


def calibrated_time_points(tau_alpha: float, temperature: float, n: int = N_PUBLISHED,
                           timestep: float | None = None) -> list[float]:
    """The first ``n`` published fractions at ``temperature`` times ``tau_alpha``: (n,) times in τ.

    Args:
        tau_alpha: the measured α-relaxation time, τ (> 0).
        temperature: picks the fractions (:func:`published_fractions`).
        n: how many, counted from the shortest (1 … 10).
        timestep: if given (τ), each time is rounded to the nearest whole MD step, ``step × timestep``:
            the time a simulation records, and so the one its trajectories will carry.
    """
    if not tau_alpha > 0:
        raise ValueError(f"tau_alpha must be > 0, got {tau_alpha!r}")
    if not 1 <= n <= N_PUBLISHED:
        raise ValueError(f"n must be in 1 … {N_PUBLISHED}, got {n!r}")
    times = [f * tau_alpha for f in published_fractions(temperature)[:n]]
    if timestep is not None:
        times = [round(t / timestep) * timestep for t in times]
    return times


def pilot_frames(tau_estimate: float, max_tau_alpha: float, timestep: float, per_decade: int = 10) -> list[float]:
    """Recording times (τ) of a pilot run that is to find τα: log-spaced from one step to the end.

    The end is ``max_tau_alpha × tau_estimate`` rounded to whole MD steps; in between about
    ``per_decade`` times per decade of steps, each rounded to a whole step, duplicates dropped
    (the first decades have fewer distinct steps than points).  Returns (F,) strictly increasing
    times, each ``step × timestep`` for a distinct integer step ≥ 1; the last one is the end.

    τα is found by interpolating F_s in log t between two recorded times, so even spacing in
    log t gives the same resolution wherever the crossing turns out to lie.
    """
    if not (tau_estimate > 0 and max_tau_alpha > 0 and timestep > 0 and per_decade >= 1):
        raise ValueError(f"tau_estimate, max_tau_alpha, timestep and per_decade must be > 0, got "
                         f"{tau_estimate!r}, {max_tau_alpha!r}, {timestep!r}, {per_decade!r}")
    last = max(1, round(max_tau_alpha * tau_estimate / timestep))
    n = max(2, math.ceil(math.log10(last) * per_decade) + 1)
    steps = np.unique(np.rint(np.geomspace(1, last, n)).astype(np.int64))
    return [int(s) * timestep for s in steps]
