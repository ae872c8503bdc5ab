"""Spatial maps of one test configuration (Figs. 1a–b and 2a–d): actual, predicted and error.

Top row: E_ij on the A–A pairs closer than 1.35 σ with both ends in the slab, drawn as coloured
segments from r_i to r_i + r_ij(0) in the x–y plane.  Bottom row: S_i of the slab's particles as
coloured discs (the paper interpolates colour between particles; discs show the data without
inventing values between them).  Columns: actual, BOTAN, BOTAN − actual, and NT-GNN, NT-GNN − actual
when NT-GNN is trained at the same time point.  Predictions are the ensemble mean of the replicas.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.plots.common import FigureOutput, existing_run_dir, figures_dir, pyplot, save_figure
from hpc_botan.plots.snapshot import FIRST_SHELL, MAP_THICKNESS, Snapshot, load_snapshot, slab_pairs

MODEL_NAMES = {"botan": "BOTAN", "ntgnn": "NT-GNN"}


def pair_segments(positions: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray, keep: np.ndarray
                  ) -> np.ndarray:
    """(M, 2, 2) x–y segments from r_i to r_i + (r_j − r_i) of the kept edges (minimum image, so a pair
    across the periodic boundary is drawn whole, sticking out of the box on one side)."""
    start = positions[edge_index[0, keep]][:, :2]
    return np.stack([start, start + edge_attr[keep][:, :2]], axis=1)


def symmetric_limit(values: np.ndarray, quantile: float = 0.99) -> float:
    """A colour limit v for a diverging scale [−v, v]: the ``quantile`` of |values| (1e-12 if all zero)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return max(float(np.quantile(np.abs(v), quantile)) if v.size else 0.0, 1e-12)


def plot_maps(snap: Snapshot, base: str | Path, z0: float, thickness: float) -> list[Path]:
    """Draw the map figure of ``snap`` (which must carry BOTAN predictions) into ``base``.png/.pdf."""
    # matplotlib is slow to import; only where a figure is drawn (after the backend is chosen)
    from matplotlib.collections import LineCollection

    plt = pyplot()
    in_slab = snap.slab(z0, thickness, "maps")
    pairs = slab_pairs(snap.species, snap.edge_index, snap.edge_attr, in_slab)
    segments = pair_segments(snap.positions, snap.edge_index, snap.edge_attr, pairs)
    models = [m for m in ("botan", "ntgnn") if m in snap.predictions]
    n_cols = 1 + 2 * len(models)
    fig, axes = plt.subplots(2, n_cols, figsize=(2.7 * n_cols + 0.4, 5.6), dpi=150, squeeze=False)
    xy = snap.positions[in_slab, :2]
    size = np.where(snap.species[in_slab] == 0, 14.0, 8.0)   # B particles are smaller (σ_BB = 0.88)

    def frame(ax, title):
        ax.set_xlim(0, snap.box[0])
        ax.set_ylim(0, snap.box[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)

    # edges
    if snap.pair_change is not None and pairs.any():
        actual_e = snap.pair_change[pairs]
        e_lim = symmetric_limit(actual_e)
        errors = [snap.predictions[m][1][pairs] - actual_e for m in models if m == "botan"]
        err_lim = symmetric_limit(np.concatenate(errors)) if errors else 1.0
        columns = [("actual E_ij", actual_e, "RdBu_r", e_lim)]
        for m in models:
            if m == "botan":
                pred = snap.predictions[m][1][pairs]
                columns += [(f"{MODEL_NAMES[m]} E_ij", pred, "RdBu_r", e_lim),
                            (f"{MODEL_NAMES[m]} − actual", pred - actual_e, "PuOr_r", err_lim)]
            else:
                columns += ["NT-GNN learns no E_ij (p = 1)", None]
        for ax, col in zip(axes[0], columns):
            if not isinstance(col, tuple):
                ax.axis("off")
                if col:
                    ax.text(0.5, 0.5, col, ha="center", va="center", fontsize=8, transform=ax.transAxes)
                continue
            title, values, cmap, lim = col
            lc = LineCollection(segments, array=values, cmap=cmap, linewidths=1.6)
            lc.set_clim(-lim, lim)
            ax.add_collection(lc)
            frame(ax, title)
            fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    else:
        for ax in axes[0]:
            ax.axis("off")
        axes[0][0].text(0.5, 0.5, "no E_ij targets" if snap.pair_change is None else "no A–A pair in the slab",
                        ha="center", va="center", fontsize=8, transform=axes[0][0].transAxes)
    # nodes
    actual_s = snap.propensity[in_slab]
    s_lo, s_hi = np.quantile(actual_s, [0.01, 0.99])
    s_err_lim = symmetric_limit(np.concatenate([snap.predictions[m][0][in_slab] - actual_s for m in models]))
    columns = [("actual S_i", actual_s, "viridis", (s_lo, s_hi))]
    for m in models:
        pred = snap.predictions[m][0][in_slab]
        columns += [(f"{MODEL_NAMES[m]} S_i", pred, "viridis", (s_lo, s_hi)),
                    (f"{MODEL_NAMES[m]} − actual", pred - actual_s, "PuOr_r", (-s_err_lim, s_err_lim))]
    for ax, (title, values, cmap, (lo, hi)) in zip(axes[1], columns):
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=size, cmap=cmap, vmin=lo, vmax=hi, edgecolors="none")
        frame(ax, title)
        fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    fig.suptitle(snap.slab_title(z0, thickness), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, base)


def figure_maps(run_dir: str | Path, out_dir: str | Path | None = None, *, temperature: float | None = None,
                configuration: int | None = None, time_index: int | None = None, z0: float | None = None,
                thickness: float = MAP_THICKNESS) -> FigureOutput:
    """Figs. 1a–b, 2a–d: maps of one (test) configuration; needs targets and finished BOTAN fine-tune replicas."""
    run_dir = existing_run_dir(run_dir)
    snap = load_snapshot(run_dir, temperature=temperature, conf_id=configuration, time_index=time_index)
    z0 = float(snap.box[2] / 2) if z0 is None else z0
    files = plot_maps(snap, figures_dir(run_dir, out_dir) / "maps", z0, thickness)
    counts = ", ".join(f"{MODEL_NAMES[m]} ({n} replicas)" for m, n in snap.n_replicas.items())
    caption = (f"Actual and predicted pair-distance changes E_ij (A–A pairs with r_ij(0) < {FIRST_SHELL:g}, as "
               f"segments) and propensities S_i (discs), with prediction errors, in the slab "
               f"|z − {z0:.2f}| < {thickness / 2:g} of {snap.split} configuration {snap.conf_id} at T = "
               f"{snap.temperature:g}, t = {snap.time:g}; predictions are ensemble means of {counts} "
               f"(cf. Figs. 1a–b, 2a–d).")
    return FigureOutput(files, caption)
