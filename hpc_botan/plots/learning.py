"""Learning curves (Figs. S4, S6, S7) from ``train/<task>/replica-XX/metrics.csv``.

Each column of the figure is one task: on top the training and validation loss per epoch (log
scale), below the validation ρ of S_i and E_ij; one colour per replica.  Our "test" curve is the
validation split (part of the training configurations): the test split never steers training.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.io.shards import index_times
from hpc_botan.plots.common import (
    FigureOutput,
    default_time_index,
    existing_run_dir,
    figures_dir,
    pyplot,
    run_tau_alpha,
    save_figure,
)

#: Columns read from metrics.csv (written by hpc_botan.train.trainer; see METRICS_COLUMNS there).
CURVE_COLUMNS = ("epoch", "train_loss", "val_loss", "val_rho_S", "val_rho_E")
TASK_PATTERN = re.compile(r"^(?P<family>botan/pretrain|botan/finetune|ntgnn)/T(?P<T>[0-9.]+)/(?:t(?P<k>\d+)|multi)$")
FAMILY_TITLES = {"botan/pretrain": "BOTAN pretraining (p = 0)", "botan/finetune": "BOTAN", "ntgnn": "NT-GNN (p = 1)"}


def read_learning_curve(path: str | Path) -> dict[str, np.ndarray]:
    """The per-epoch columns of one metrics.csv as float arrays (E,) (empty or unparsable cells → NaN).

    Raises UserError if the file lacks a column of :data:`CURVE_COLUMNS`.
    """
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CURVE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: no column(s) {', '.join(missing)}; not a metrics.csv of 'hpc-botan train'")
        rows = list(reader)

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else np.nan
        except ValueError:
            return np.nan

    return {c: np.array([number(r[c]) for r in rows], dtype=np.float64) for c in CURVE_COLUMNS}


def trained_tasks(run_dir: Path) -> list[str]:
    """Task names (``botan/finetune/T0.440/t06`` …) with at least one replica metrics.csv, sorted."""
    found = {p.parent.parent.relative_to(RunLayout(run_dir).train).as_posix()
             for p in (r.metrics for r in RunLayout(run_dir).replicas()) if p.is_file()}
    return sorted(found)


def default_tasks(tasks: Sequence[str], times: dict[float, np.ndarray], tau_alpha: dict[float, float | None]
                  ) -> list[str]:
    """One task per family (pretraining, fine-tuning, NT-GNN): at the lowest temperature, the time index
    closest to τα from below among that family's tasks (as Figs. S6–S7 show t = τα at T = 0.44).

    Args:
        tasks: task names; names that do not match the layout are ignored.
        times: temperature → (F,) time points (τ); temperatures missing here fall back to the last index.
        tau_alpha: temperature → τα (τ) or None.
    """
    parsed: dict[str, list[tuple[float, int, str]]] = {}
    for name in tasks:
        m = TASK_PATTERN.match(name)
        if m:  # a multi-time task (…/multi, every time point in one network) sorts before per-time ones
            parsed.setdefault(m["family"], []).append((float(m["T"]), int(m["k"]) if m["k"] else -1, name))
    chosen = []
    for family in FAMILY_TITLES:
        if family not in parsed:
            continue
        lowest = min(t for t, _, _ in parsed[family])
        at_t = sorted((k, name) for t, k, name in parsed[family] if t == lowest)
        if at_t[0][0] < 0:
            chosen.append(at_t[0][1])
            continue
        grid = next((v for T, v in times.items() if np.isclose(T, lowest)), None)
        if grid is None:
            chosen.append(at_t[-1][1])
            continue
        k = default_time_index(grid[[k for k, _ in at_t]], tau_alpha.get(lowest))
        chosen.append(at_t[k][1])
    return chosen


def plot_learning_curves(curves: dict[str, list[tuple[int, dict[str, np.ndarray]]]], base: str | Path
                         ) -> list[Path]:
    """One column per task: losses (top) and validation ρ (bottom) against epoch, a colour per replica.

    Args:
        curves: task name → [(replica number, columns from :func:`read_learning_curve`)].
    """
    plt = pyplot()
    names = list(curves)
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names) + 0.4, 5.2), dpi=150, squeeze=False,
                             sharex="col")
    for col, name in enumerate(names):
        top, bottom = axes[0][col], axes[1][col]
        family = m["family"] if (m := TASK_PATTERN.match(name)) else ""
        # a target the loss ignores (S_i at p = 0, E_ij at p = 1) has a meaningless ρ: leave it out
        show_s, show_e = family != "botan/pretrain", family != "ntgnn"
        for k, (replica, c) in enumerate(curves[name]):
            colour = f"C{replica % 10}"
            epoch = c["epoch"] + 1          # epoch e's row is written after e + 1 passes
            # the legend names the line styles once; colours are replicas (its title says so), so
            # that eight replicas do not bury the curves under sixteen legend rows
            labels = (lambda text: text) if k == 0 else (lambda text: None)
            top.plot(epoch, c["train_loss"], "-", color=colour, lw=1, label=labels("train"))
            top.plot(epoch, c["val_loss"], "--", color=colour, lw=1, label=labels("validation"))
            if show_s and np.isfinite(c["val_rho_S"]).any():
                bottom.plot(epoch, c["val_rho_S"], "-", color=colour, lw=1, label=labels("ρ(S_i)"))
            if show_e and np.isfinite(c["val_rho_E"]).any():
                bottom.plot(epoch, c["val_rho_E"], ":", color=colour, lw=1.2, label=labels("ρ(E_ij)"))
        replicas = [r for r, _ in curves[name]]
        colours = f"colour: replica {replicas[0]}" if len(replicas) == 1 else \
            f"colours: replicas {min(replicas)}–{max(replicas)}"
        positive = [c[k] for _, c in curves[name] for k in ("train_loss", "val_loss")]
        if all(np.all(v[np.isfinite(v)] > 0) for v in positive):
            top.set_yscale("log")
        m = TASK_PATTERN.match(name)
        when = f"t index {int(m['k'])}" if m and m["k"] else "all time points (mean ρ)"
        # two lines: "NT-GNN (p = 1), T = 0.64, all time points (mean ρ)" is wider than its 3.6-inch panel
        title = f"{FAMILY_TITLES[m['family']]}, T = {float(m['T']):g}\n{when}" if m else name
        top.set_title(title, fontsize=8, wrap=True)
        top.set_ylabel("loss (σ²)", fontsize=8)
        bottom.set_ylabel("validation ρ", fontsize=8)
        bottom.set_xlabel("epoch", fontsize=8)
        for ax in (top, bottom):
            ax.grid(alpha=0.3, lw=0.5)
            ax.tick_params(labelsize=7)
            ax.legend(frameon=False, fontsize=6, title=colours, title_fontsize=6)
    fig.tight_layout()
    return save_figure(fig, base)


def figure_learning(run_dir: str | Path, out_dir: str | Path | None = None, *, tasks: Sequence[str] | None = None
                    ) -> FigureOutput:
    """Figs. S4, S6, S7: learning curves of ``tasks`` (default: one per family, see :func:`default_tasks`)."""
    run_dir = existing_run_dir(run_dir)
    available = trained_tasks(run_dir)
    if not available:
        raise UserError(f"learning: no metrics.csv under {run_dir / 'train'}; run 'hpc-botan train {run_dir}' first")
    if tasks:
        unknown = [t for t in tasks if t not in available]
        if unknown:
            raise UserError(f"--task {unknown[0]}: no metrics.csv; trained tasks are {', '.join(available)}")
        chosen = list(tasks)
    else:
        times: dict[float, np.ndarray] = {}
        index = RunLayout(run_dir).index
        if index.is_file():
            times = index_times(index)
        cfg = load_run_config(run_dir)
        chosen = default_tasks(available, times, {t: run_tau_alpha(cfg, t) for t in times}) or available[:3]
    curves = {}
    for name in chosen:
        files = [r.metrics for r in RunLayout(run_dir).replicas(name) if r.metrics.is_file()]
        curves[name] = [(int(p.parent.name.split("-")[1]), read_learning_curve(p)) for p in files]
    files = plot_learning_curves(curves, figures_dir(run_dir, out_dir) / "learning")
    caption = (f"Learning curves of {', '.join(chosen)}: training (solid) and validation (dashed) loss, and the "
               "validation Pearson ρ of S_i (solid) and E_ij (dotted) per epoch, one colour per replica "
               "(cf. Figs. S4, S6, S7).")
    return FigureOutput(files, caption)
