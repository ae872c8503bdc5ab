"""The locally averaged displacement field (Fig. 2e) of one configuration in a slab.

Fig. 2e shows ⟨Δr_i(t)⟩_IC averaged over each particle's first shell (r_ij(0) < 1.35), the actual
field from the simulations, as 3-D arrows.  BOTAN predicts scalars only (S_i and E_ij), so this
figure shows the actual field too: the in-plane (x, y) components as arrows coloured by the full
3-D magnitude, over the particles' S_i in grey.  Arrows are scaled so that the 95th-percentile
in-plane length is drawn as 0.8 σ (the paper also enlarges its vectors).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.plots.common import FigureOutput, existing_run_dir, figures_dir, pyplot, save_figure
from hpc_botan.plots.snapshot import DISPLACEMENT_THICKNESS, Snapshot, load_snapshot

#: Drawn length (σ) of the 95th-percentile in-plane displacement.
ARROW_LENGTH = 0.8


def arrow_scale(in_plane: np.ndarray, drawn_length: float = ARROW_LENGTH) -> float:
    """Data units per drawn σ for ``quiver(scale_units="xy")``: the 95th-percentile length maps to ``drawn_length``.

    Args:
        in_plane: (M, 2) in-plane displacement components, σ.
    """
    lengths = np.linalg.norm(in_plane, axis=1)
    ref = float(np.quantile(lengths, 0.95)) if lengths.size else 0.0
    return max(ref, 1e-12) / drawn_length


def plot_displacement(snap: Snapshot, base: str | Path, z0: float, thickness: float) -> list[Path]:
    """Quiver of the locally averaged displacement over S_i in the slab; writes ``base``.png/.pdf."""
    if snap.local_displacement is None:
        raise UserError(f"displacement: configuration {snap.conf_id} has no locally averaged displacement "
                        "(a data set without trajectories)")
    plt = pyplot()
    in_slab = snap.slab(z0, thickness, "displacement")
    xy = snap.positions[in_slab, :2]
    field = snap.local_displacement[in_slab]
    magnitude = np.linalg.norm(field, axis=1)
    fig, ax = plt.subplots(figsize=(5.2, 5.6), dpi=150)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=snap.propensity[in_slab], s=30, cmap="Greys", edgecolors="none",
                    alpha=0.6)
    q = ax.quiver(xy[:, 0], xy[:, 1], field[:, 0], field[:, 1], magnitude, cmap="plasma", angles="xy",
                  scale_units="xy", scale=arrow_scale(field[:, :2]), width=0.004)
    fig.colorbar(q, ax=ax, fraction=0.046, pad=0.02, label="|⟨Δr⟩_local| (σ)")
    fig.colorbar(sc, ax=ax, location="bottom", fraction=0.05, pad=0.12, label="S_i (σ)")
    ax.set_xlim(0, snap.box[0])
    ax.set_ylim(0, snap.box[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x (σ)")
    ax.set_ylabel("y (σ)")
    ax.set_title(snap.slab_title(z0, thickness), fontsize=8)
    fig.tight_layout()
    return save_figure(fig, base)


def figure_displacement(run_dir: str | Path, out_dir: str | Path | None = None, *, temperature: float | None = None,
                        configuration: int | None = None, time_index: int | None = None, z0: float | None = None,
                        thickness: float = DISPLACEMENT_THICKNESS) -> FigureOutput:
    """Fig. 2e from the targets' ``local_displacement`` (the actual field; no model predicts vectors)."""
    run_dir = existing_run_dir(run_dir)
    snap = load_snapshot(run_dir, temperature=temperature, conf_id=configuration, time_index=time_index,
                         predict=False)
    z0 = float(snap.box[2] / 2) if z0 is None else z0
    files = plot_displacement(snap, figures_dir(run_dir, out_dir) / "displacement", z0, thickness)
    caption = (f"Actual locally averaged displacement (mean over the first shell, r_ij(0) < 1.35, and the ensemble) "
               f"in the slab |z − {z0:.2f}| < {thickness / 2:g} of {snap.split} configuration {snap.conf_id} at "
               f"T = {snap.temperature:g}, t = {snap.time:g}: in-plane arrows coloured by the 3-D magnitude, over "
               f"S_i in grey (cf. Fig. 2e).")
    return FigureOutput(files, caption)
