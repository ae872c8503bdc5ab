"""Relaxation figures: the self-intermediate scattering function F_s(k, t) with τα."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.io_utils import atomic_path


def plot_fs(curves: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]], tau_alpha: dict[float, float],
            path: str | Path, k: float) -> list[Path]:
    """Plot F_s(k, t) per temperature on log time with the 1/e line and τα marked.

    Args:
        curves: temperature → (times (F,), mean F_s (F,), spread (F,) over configurations).
        tau_alpha: temperature → measured τα (NaN if F_s did not reach 1/e).
        path: output file without suffix; ``.png`` and ``.pdf`` are written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=150)
    for temp, (times, mean, spread) in sorted(curves.items()):
        line, = ax.plot(times, mean, "o-", ms=3, label=f"T = {temp:g}")
        ax.fill_between(times, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, lw=0)
        tau = tau_alpha.get(temp, float("nan"))
        if np.isfinite(tau):
            ax.axvline(tau, color=line.get_color(), ls=":", lw=1)
            ax.annotate(f"τα = {tau:.3g}", (tau, 0.5), rotation=90, fontsize=7, color=line.get_color(),
                        ha="right", va="center")
    ax.axhline(np.exp(-1.0), color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("t (τ)")
    ax.set_ylabel(f"F_s(k = {k:.3g}, t), A particles")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    written = []
    base = Path(path)
    for suffix in (".png", ".pdf"):
        out = base.with_suffix(suffix)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=suffix[1:])
        written.append(out)
    plt.close(fig)
    return written
