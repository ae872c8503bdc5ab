"""Relaxation figures: the self-intermediate scattering function F_s(k, t) with τα."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.analysis import FsResult, format_tau_alpha_table, fs_analysis, tau_alpha_points
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout
from hpc_botan.io.shards import read_fs_curves
from hpc_botan.physics.targets import relaxation_time
from hpc_botan.plots.common import FigureOutput, existing_run_dir, figures_dir, pyplot, save_figure


def plot_fs(curves: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]], tau_alpha: dict[float, float],
            path: str | Path, k: float, title: str | None = None) -> list[Path]:
    """Plot F_s(k, t) per temperature on log time with the 1/e line and τα marked.

    Args:
        curves: temperature → (times (F,), mean F_s (F,), spread (F,) over configurations).
        tau_alpha: temperature → measured τα (NaN if F_s did not reach 1/e).
        path: output file without suffix; ``.png`` and ``.pdf`` are written.
        k: wave number, 1/σ (axis label).
        title: optional title (e.g. where the curves come from).
    """
    plt = pyplot()
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
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def plot_fs_result(result: FsResult, run_dir: str | Path) -> list[Path]:
    """``figures/fs.png|pdf`` of an :func:`hpc_botan.analysis.fs_analysis` result; returns the paths."""
    curves = {t: (result.times[t], result.mean(t), result.per_configuration[t].std(axis=0))
              for t in result.per_configuration}
    taus = {t: result.tau_alpha(t) for t in result.per_configuration}
    return plot_fs(curves, taus, RunLayout(run_dir).figures / "fs", result.k)


def figure_fs(run_dir: str | Path, out_dir: str | Path | None = None):
    """S2: F_s(k, t) of A particles with τα, from the trajectories or else from the targets' ``fs`` arrays.

    Returns a :class:`hpc_botan.plots.common.FigureOutput`; a UserError when neither source exists.
    """
    run_dir = existing_run_dir(run_dir)
    base = figures_dir(run_dir, out_dir) / "fs"
    if any(RunLayout(run_dir).simulate.glob("T*/*.h5")):
        result = fs_analysis(run_dir)
        curves = {t: (result.times[t], result.mean(t), result.per_configuration[t].std(axis=0))
                  for t in result.per_configuration}
        taus = {t: result.tau_alpha(t) for t in result.per_configuration}
        source, k = "trajectories", result.k
    else:
        index = RunLayout(run_dir).index
        if not index.is_file():
            raise UserError(f"fs: {run_dir} has neither trajectories (simulate/) nor targets/index.h5; "
                            f"run 'hpc-botan simulate' or 'hpc-botan import' first")
        times, per_conf = read_fs_curves(index)
        if not per_conf:
            raise UserError(f"fs: {index} holds no F_s arrays (a data set without trajectories) and "
                            f"{run_dir}/simulate has no trajectory files")
        curves = {t: (times[t], per_conf[t].mean(axis=0), per_conf[t].std(axis=0)) for t in per_conf}
        taus = {t: relaxation_time(times[t], per_conf[t].mean(axis=0)) for t in per_conf}
        source, k = "targets", 2.0 * np.pi
    files = plot_fs(curves, taus, base, k, title=f"from the {source}")
    n_conf = {t: (result.per_configuration[t].shape[0] if source == "trajectories" else per_conf[t].shape[0])
              for t in curves}
    caption = (f"Self-intermediate scattering function F_s(k = 2π, t) of A particles, mean over "
               f"{', '.join(f'{n} configuration(s) at T = {t:g}' for t, n in sorted(n_conf.items()))} "
               f"(band: spread over configurations; computed from the {source}), with τα where F_s = 1/e "
               f"(cf. Fig. S2).")
    return FigureOutput(files, caption)


def figure_tau_alpha(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> FigureOutput:
    """τα(T) of several run directories against the published values, and their ratio (``plot tau-alpha``).

    Left: τα (mean over configurations ± standard error) against 1/T on a log axis, one marker per
    (system size, equilibration), the published τα as a line.  Right: ours / published with its
    standard error.  Written to the first run directory's figures/ (or ``out_dir``); the caption
    is the markdown table of :func:`hpc_botan.analysis.format_tau_alpha_table`.
    """
    dirs = [existing_run_dir(d) for d in run_dirs]
    points = tau_alpha_points(dirs)
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.4), dpi=150)
    published = sorted({(p.temperature, p.published) for p in points if np.isfinite(p.published)})
    if published:
        t_pub, tau_pub = zip(*published)
        left.plot(1 / np.array(t_pub), tau_pub, "k--", lw=1, label="published")
    groups: dict[tuple[int, float], list] = {}
    for p in points:
        groups.setdefault((p.n_particles, p.equilibration_tau_alpha), []).append(p)
    for (n, eq), members in sorted(groups.items()):
        x = 1 / np.array([p.temperature for p in members])
        label = f"N = {n}, NVT {eq:g} τα"
        left.errorbar(x, [p.tau_mean for p in members], yerr=[p.tau_standard_error for p in members], fmt="o",
                      ms=4, capsize=2, label=label)
        right.errorbar(x, [p.ratio for p in members], yerr=[p.ratio_standard_error for p in members], fmt="o",
                       ms=4, capsize=2, label=label)
    left.set_yscale("log")
    left.set_xlabel("1 / T")
    left.set_ylabel("τα (τ), F_s(k = 2π) = 1/e")
    left.legend(frameon=False, fontsize=7)
    right.axhline(1.0, color="0.5", lw=0.8, ls="--")
    right.set_xlabel("1 / T")
    right.set_ylabel("τα (ours) / τα (published)")
    fig.tight_layout()
    files = save_figure(fig, figures_dir(dirs[0], out_dir) / "tau-alpha")
    return FigureOutput(files, format_tau_alpha_table(points))
