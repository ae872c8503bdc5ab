"""What every figure shares: the Agg backend, atomic PNG + PDF output, run-directory look-ups.

Plotting functions elsewhere in this package take arrays; the readers here turn a run
directory into those arrays and turn a missing input into a one-line :class:`UserError`
that names the command producing it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path
from hpc_botan.io.rundir import RunLayout

#: Formats every figure is written in: PNG for reports and screens, PDF for papers.
FORMATS = (".png", ".pdf")


class FigureOutput(NamedTuple):
    """One written figure: its files (``.png`` then ``.pdf``) and a one-sentence caption."""

    files: list[Path]
    caption: str


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (figures are written to files, never shown)."""
    # matplotlib is slow to import; only where a figure is drawn (after the backend is chosen)
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib is slow to import; only where a figure is drawn (after the backend is chosen)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, base: str | Path) -> list[Path]:
    """Write ``fig`` to ``base.png`` and ``base.pdf`` atomically, close it, return the two paths."""
    plt = pyplot()
    written = []
    base = Path(base)
    if base.suffix in FORMATS:  # "fs.png" names the same pair of files as "fs"
        base = base.with_suffix("")
    try:
        for suffix in FORMATS:
            out = base.with_name(base.name + suffix)
            with atomic_path(out) as tmp:
                fig.savefig(tmp, format=suffix[1:])
            written.append(out)
    finally:
        plt.close(fig)
    return written


def existing_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path; a UserError if it is not a run directory (no config.yaml)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory")
    if not RunLayout(path).config.is_file():
        raise UserError(f"{path}: not a run directory (no config.yaml)")
    return path


def figures_dir(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where a run's figures go: ``out_dir`` if given, else ``RUN_DIR/figures``."""
    return Path(out_dir) if out_dir is not None else RunLayout(run_dir).figures


def targets_index(run_dir: str | Path) -> Path:
    """``RUN_DIR/targets/index.h5``, or a UserError saying how to make it."""
    path = RunLayout(run_dir).index
    if not path.is_file():
        raise UserError(f"{path}: not found; run 'hpc-botan targets {run_dir}' (or 'hpc-botan import') first")
    return path


def load_metrics_json(path: Path, producer: str) -> list[dict[str, Any]]:
    """The ``tasks`` list of an ``eval/metrics.json``-shaped file; ``producer`` names the command that writes it."""
    if not path.is_file():
        raise UserError(f"{path}: not found; run '{producer}' first")
    try:
        data = json.loads(path.read_text())
        tasks = data["tasks"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not an evaluation file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(tasks, list):
        raise UserError(f"{path}: 'tasks' is not a list")
    return tasks


def default_time_index(times: Sequence[float], tau_alpha: float | None) -> int:
    """The time index closest to τα from below: the last t_k ≤ τα (relative tolerance 1e-6).

    Falls back to the last index when τα is unknown (None or NaN) or every t_k lies above it.

    Args:
        times: (F,) increasing time points, τ.
        tau_alpha: α-relaxation time, τ.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no time points")
    if tau_alpha is None or not np.isfinite(tau_alpha):
        return int(t.size - 1)
    below = np.nonzero(t <= tau_alpha * (1 + 1e-6))[0]
    return int(below[-1]) if below.size else int(t.size - 1)


def check_time_index(time_index: int, n_times: int, what: str) -> int:
    """``time_index`` (negative counts from the end) as 0 … n_times − 1, or a UserError naming ``what``."""
    k = time_index + n_times if time_index < 0 else time_index
    if not 0 <= k < n_times:
        raise UserError(f"--time-index {time_index}: {what} has {n_times} time point(s) (0 … {n_times - 1})")
    return k


def run_tau_alpha(cfg, temperature: float) -> float | None:
    """τα of ``temperature`` from the run's ``simulation.tau_alpha`` (None when not configured)."""
    for t, tau in cfg.simulation.tau_alpha.items():
        if np.isclose(float(t), temperature):
            return float(tau)
    return None
