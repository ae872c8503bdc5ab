"""Joint PDF of the pair-distance change E_ij(t) and the initial distance r_ij(0) (Figs. 1d and S3).

Pairs: A–A pairs, each once, closer than ``max_distance`` at t = 0 (default 1.35 σ, the nearest
neighbours of Fig. 1d; up to 2.0 σ, the whole graph, shows the second shell too).  The PDF is
normalised over every selected pair, so that Σ pdf · Δr · ΔE = 1 − (fraction of pairs outside the
plotted window); the E window is the 0.05–99.95 % range of the data, so that a few outliers do not
squash the picture.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.shards import read_catalog, read_configuration
from hpc_botan.plots.common import (
    FigureOutput,
    check_time_index,
    existing_run_dir,
    figures_dir,
    pyplot,
    save_figure,
    targets_index,
)
from hpc_botan.plots.snapshot import FIRST_SHELL, aa_pairs

#: How many time points the figure shows by default (Fig. S3 has six).
DEFAULT_PANELS = 6


def default_pdf_time_indices(n_times: int, at_most: int = DEFAULT_PANELS) -> list[int]:
    """Up to ``at_most`` time indices spread evenly over 0 … n_times − 1, first and last included."""
    if n_times <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_times - 1, min(n_times, at_most))})


def joint_pdf(r: np.ndarray, e: np.ndarray, r_edges: np.ndarray, e_edges: np.ndarray) -> np.ndarray:
    """2-D probability density of (r, E) on the given bin edges, normalised by the number of all pairs.

    Args:
        r, e: (M,) initial distances and distance changes, σ.
        r_edges: (A + 1,), e_edges: (B + 1,) increasing bin edges, σ.

    Returns:
        (A, B) density in 1/σ²: counts / (M · Δr · ΔE); it integrates to the fraction of pairs inside.
    """
    counts, _, _ = np.histogram2d(r, e, bins=[r_edges, e_edges])
    area = np.outer(np.diff(r_edges), np.diff(e_edges))
    return counts / (max(len(r), 1) * area)


def collect_pairs(index: Path, ids: Sequence[int], time_indices: Sequence[int], max_distance: float
                  ) -> tuple[np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """(r_ij(0) (M,), time index → E_ij (M,), times (F,)) of the selected pairs of configurations ``ids``."""
    r_all, e_all, times = [], {k: [] for k in time_indices}, None
    for cid in ids:
        data = read_configuration(index, int(cid), ["species", "edge_index", "edge_attr", "pair_change", "times"])
        if "pair_change" not in data:
            raise UserError(f"pair-pdf: configuration {cid} has no E_ij targets (a data set without trajectories)")
        times = data["times"] if times is None else times
        keep, r = aa_pairs(data["species"], data["edge_index"], data["edge_attr"], max_distance)
        r_all.append(r[keep].astype(np.float32))
        for k in time_indices:
            e_all[k].append(data["pair_change"][k][keep])
    return np.concatenate(r_all), {k: np.concatenate(v) for k, v in e_all.items()}, times


def plot_pair_pdf(r: np.ndarray, e_by_time: dict[int, np.ndarray], times: np.ndarray, base: str | Path,
                  title: str, n_bins: int = 80) -> list[Path]:
    """One panel per time index: log-coloured joint PDF of (r_ij(0), E_ij(t)); writes ``base``.png/.pdf."""
    # matplotlib is slow to import; only where a figure is drawn (after the backend is chosen)
    from matplotlib.colors import LogNorm

    plt = pyplot()
    keys = sorted(e_by_time)
    n_cols = min(3, len(keys))
    n_rows = -(-len(keys) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(3.3 * n_cols, 4.6) + 0.4, 2.9 * n_rows + 0.5), dpi=150,
                             squeeze=False)
    r_edges = np.linspace(float(r.min()), float(r.max()) + 1e-6, n_bins + 1)
    for ax, k in zip(axes.flat, keys):
        e = e_by_time[k]
        lo, hi = np.quantile(e, [0.0005, 0.9995])
        if hi <= lo:
            lo, hi = lo - 1e-3, hi + 1e-3
        e_edges = np.linspace(lo, hi, n_bins + 1)
        pdf = joint_pdf(r, e, r_edges, e_edges)
        positive = pdf[pdf > 0]
        norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
        mesh = ax.pcolormesh(r_edges, e_edges, np.where(pdf > 0, pdf, np.nan).T, norm=norm, cmap="magma_r",
                             shading="flat")
        fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        ax.axhline(0.0, color="0.5", lw=0.5)
        ax.set_title(f"t = {times[k]:g}", fontsize=8)
        ax.set_xlabel("r_ij(0) (σ)", fontsize=8)
        ax.set_ylabel("E_ij(t) (σ)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, base)


def figure_pair_pdf(run_dir: str | Path, out_dir: str | Path | None = None, *, temperature: float | None = None,
                    time_indices: Sequence[int] | None = None, max_distance: float = FIRST_SHELL,
                    split: str = "test") -> FigureOutput:
    """Figs. 1d / S3 from the targets of ``split`` ("test", "train" or "all"; "test" falls back to all
    configurations when the run has no test split) at ``temperature`` (default: the lowest)."""
    run_dir = existing_run_dir(run_dir)
    index = targets_index(run_dir)
    catalog = read_catalog(index)
    temps = sorted(set(float(t) for t in catalog["temperature"]))
    temperature = temps[0] if temperature is None else temperature
    at_t = catalog[np.isclose(catalog["temperature"], temperature)]
    if at_t.size == 0:
        raise UserError(f"pair-pdf: --temperature {temperature:g} is not in the targets (temperatures {temps})")
    used = split
    if split == "all":
        rows = at_t
    else:
        rows = at_t[at_t["split"] == (1 if split == "test" else 0)]
        if rows.size == 0 and split == "test":
            rows, used = at_t, "all (no test split)"
        elif rows.size == 0:
            raise UserError(f"pair-pdf: no {split} configurations at T = {temperature:g}")

    n_times = len(read_configuration(index, int(rows["id"][0]), ["times"])["times"])
    chosen = (default_pdf_time_indices(n_times) if not time_indices
              else sorted({check_time_index(k, n_times, f"T = {temperature:g}") for k in time_indices}))
    r, e_by_time, times = collect_pairs(index, rows["id"], chosen, max_distance)
    if r.size == 0:
        raise UserError(f"pair-pdf: no A–A pairs closer than {max_distance:g} in the chosen configurations")
    title = (f"T = {temperature:g}, {len(rows)} configuration(s) ({used})\n{r.size} A–A pairs with "
             f"r_ij(0) < {max_distance:g}")
    files = plot_pair_pdf(r, e_by_time, times, figures_dir(run_dir, out_dir) / "pair-pdf", title)
    caption = (f"Joint probability density (log colour) of the pair-distance change E_ij(t) and the initial distance "
               f"r_ij(0) of A–A pairs closer than {max_distance:g} at T = {temperature:g}, over {len(rows)} "
               f"configuration(s) ({used} split), at t = {', '.join(f'{times[k]:g}' for k in chosen)} "
               "(cf. Figs. 1d, S3).")
    return FigureOutput(files, caption)
