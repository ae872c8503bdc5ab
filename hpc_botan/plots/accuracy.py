"""Prediction accuracy: Pearson ρ against time (Figs. 3 and 1c) and against the loss weight p (Fig. S5).

Input is the ``tasks`` list of ``eval/metrics.json`` (and of ``eval/baselines.json``, same schema):
each task has ``model``, ``temperature``, ``time`` (τ), ``time_index`` and ``scores[target]`` with
``median``, ``best``, ``worst`` (over replicas), ``ensemble`` (the replicas' mean prediction) and
``ceiling`` (√ split-half reliability of the targets).  Missing keys read as NaN, so a baseline
with one deterministic score gives only its ``ensemble`` or ``median``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.learned_targets import LEARNED_TARGETS
from hpc_botan.plots.common import (
    FigureOutput,
    default_time_index,
    existing_run_dir,
    figures_dir,
    load_metrics_json,
    pyplot,
    run_tau_alpha,
    save_figure,
)

SCORE_KEYS = ("median", "best", "worst", "ensemble", "ceiling")
#: How each model family is drawn and named (models not listed get the default cycle).
MODEL_STYLE = {"botan": ("BOTAN", "C3"), "ntgnn": ("NT-GNN", "C0"), "ridge": ("ridge", "C2"),
               "density": ("local density", "C4"), "distance": ("pair distance", "C5")}
TARGET_NAME = {label: f"{t.symbol}(t)" for label, t in LEARNED_TARGETS.items()}


@dataclass
class RhoSeries:
    """ρ of one model and target at one temperature, by time: every array is (K,), sorted by time (τ)."""

    model: str
    times: np.ndarray
    median: np.ndarray
    best: np.ndarray
    worst: np.ndarray
    ensemble: np.ndarray
    ceiling: np.ndarray


def rho_series(tasks: Iterable[dict[str, Any]], target: str) -> dict[float, dict[str, RhoSeries]]:
    """Group evaluation tasks into temperature → model → :class:`RhoSeries` of ``target`` ("S" or "E").

    Tasks without ``scores[target]`` are left out.  Two tasks of one model at the same temperature
    and time (e.g. two pretraining tasks) are not expected; the later one wins.
    """
    rows: dict[float, dict[str, dict[float, dict[str, float]]]] = {}
    for task in tasks:
        score = (task.get("scores") or {}).get(target)
        if score is None:
            continue
        temp, time = float(task["temperature"]), float(task["time"])
        values = {k: float(score[k]) if score.get(k) is not None else np.nan for k in SCORE_KEYS}
        rows.setdefault(temp, {}).setdefault(str(task["model"]), {})[time] = values
    out: dict[float, dict[str, RhoSeries]] = {}
    for temp, models in rows.items():
        for model, by_time in models.items():
            times = np.array(sorted(by_time))
            cols = {k: np.array([by_time[t][k] for t in times]) for k in SCORE_KEYS}
            out.setdefault(temp, {})[model] = RhoSeries(model=model, times=times, **cols)
    return out


def ceiling_curve(series: Sequence[RhoSeries]) -> tuple[np.ndarray, np.ndarray]:
    """Noise ceiling by time, (times (K,), ceiling (K,)): the mean of the models' ceilings at each time.

    All models are scored against the same targets, so their ceilings agree where both exist;
    the mean only fills in times one model lacks.  NaN ceilings (unknown) are dropped.
    """
    values: dict[float, list[float]] = {}
    for s in series:
        for t, c in zip(s.times, s.ceiling):
            if np.isfinite(c):
                values.setdefault(float(t), []).append(float(c))
    times = np.array(sorted(values))
    return times, np.array([np.mean(values[t]) for t in times])


def _headline(s: RhoSeries) -> np.ndarray:
    """The line drawn for a model: the median over replicas, or the ensemble where there is no median."""
    return np.where(np.isfinite(s.median), s.median, s.ensemble)


def plot_rho_vs_time(panels: dict[float, dict[str, RhoSeries]], target: str, base: str | Path,
                     tau_alpha: dict[float, float | None] | None = None, held_out: Iterable[float] = ()
                     ) -> list[Path]:
    """One panel per temperature: ρ(t) of each model on a log time axis.

    Each model: the median over replicas as a line, best–worst as a band, the ensemble mean as
    markers; the noise ceiling as a dashed grey line; τα as a dotted vertical line when known.

    Args:
        panels: temperature → model → series (from :func:`rho_series`).
        target: "S" or "E" (labels only).
        base: output path without suffix.
        tau_alpha: temperature → τα in τ (None or missing: not drawn).
        held_out: temperatures a joint network was scored at but never trained on (said in the title).
    """
    plt = pyplot()
    held_out = [float(t) for t in held_out]
    temps = sorted(panels)
    # the legend sits right of the last panel: inside, it hides the curves it explains
    fig, axes = plt.subplots(1, len(temps), figsize=(3.4 * len(temps) + 2.2, 3.3), dpi=150, squeeze=False,
                             sharey=True)
    for ax, temp in zip(axes[0], temps):
        models = panels[temp]
        order = sorted(models, key=lambda m: (list(MODEL_STYLE).index(m) if m in MODEL_STYLE else 99, m))
        for n, model in enumerate(order):
            s = models[model]
            label, colour = MODEL_STYLE.get(model, (model, f"C{(n + 6) % 10}"))
            line = _headline(s)
            ax.plot(s.times, line, "-", marker="s", ms=3, color=colour, lw=1.4, label=f"{label} (median)")
            spread = np.isfinite(s.best) & np.isfinite(s.worst)
            if spread.sum() >= 2:
                ax.fill_between(s.times, s.worst, s.best, where=spread, color=colour, alpha=0.2, lw=0)
            elif spread.any():   # a band needs two times: show the one best–worst range as a bar
                ax.vlines(s.times[spread], s.worst[spread], s.best[spread], color=colour, alpha=0.5, lw=3)
            if np.isfinite(s.ensemble).any():
                ax.plot(s.times, s.ensemble, "o", color=colour, ms=4, mfc="white", label=f"{label} (ensemble)")
        ct, cv = ceiling_curve(list(models.values()))
        if ct.size:
            ax.plot(ct, cv, "--", marker="_", ms=10, color="0.4", lw=1, label="noise ceiling")
        tau = (tau_alpha or {}).get(temp)
        if tau is not None and np.isfinite(tau):
            ax.axvline(tau, color="0.6", ls=":", lw=1)
            ax.annotate("τα", (tau, 0.02), xycoords=("data", "axes fraction"), fontsize=7, color="0.4",
                        ha="right", rotation=90)
        ax.set_xscale("log")
        held = any(np.isclose(temp, t) for t in held_out)
        ax.set_title(f"T = {temp:g}" + (" (held out of training)" if held else ""), fontsize=9)
        ax.set_xlabel("t (τ)")
        ax.grid(alpha=0.3, lw=0.5)
    axes[0][0].set_ylabel(f"Pearson ρ of {TARGET_NAME.get(target, target)}")
    legend: dict[str, Any] = {}  # one entry per label over all panels (a model may miss a temperature)
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels):
            legend.setdefault(label, handle)
    axes[0][-1].legend(list(legend.values()), list(legend), frameon=False, fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return save_figure(fig, base)


def _models_label(models: Iterable[str]) -> str:
    return ", ".join(MODEL_STYLE.get(m, (m,))[0] for m in models)


def figure_rho(run_dir: str | Path, target: str, out_dir: str | Path | None = None) -> FigureOutput:
    """Figs. 3 (target "S", ``rho-nodes``) and 1c (target "E", ``rho-edges``) from ``eval/metrics.json``
    and, when it exists, ``eval/baselines.json``."""
    run_dir = existing_run_dir(run_dir)
    name = "rho-nodes" if target == "S" else "rho-edges"
    tasks = list(load_metrics_json(RunLayout(run_dir).metrics, f"hpc-botan evaluate {run_dir}"))
    baselines = RunLayout(run_dir).baselines
    n_model_tasks = len(tasks)
    if baselines.is_file():
        tasks += load_metrics_json(baselines, "the baselines")
    panels = rho_series(tasks, target)
    if not panels:
        what = "S_i" if target == "S" else "E_ij (only BOTAN and edge baselines predict it)"
        raise UserError(f"{name}: {run_dir / 'eval'} has no scores of {what}")
    cfg = load_run_config(run_dir)
    taus = {t: run_tau_alpha(cfg, t) for t in panels}
    held_out = {float(t["temperature"]) for t in tasks if t.get("held_out")}
    files = plot_rho_vs_time(panels, target, figures_dir(run_dir, out_dir) / name, taus, held_out)
    models = sorted({m for p in panels.values() for m in p})
    ref = "Fig. 3" if target == "S" else "Fig. 1c"
    caption = (f"Pearson ρ between predicted and actual {TARGET_NAME[target]} "
               f"({'type-A particles' if target == 'S' else 'A–A pairs with r_ij(0) < 1.35'}) against time for "
               f"{_models_label(models)}: lines are the median over replicas, bands best to worst, circles the "
               f"ensemble mean, dashed the noise ceiling ({'with' if len(tasks) > n_model_tasks else 'no'} "
               f"baselines; cf. {ref}).")
    return FigureOutput(files, caption)


# --------------------------------------------------------------------------- ρ against p (Fig. S5)

@dataclass
class RhoAtWeight:
    """ρ of BOTAN at one loss weight p (train.node_weight) for one (T, time index): target → scores."""

    node_weight: float
    run_dir: Path
    scores: dict[str, dict[str, float]]


def rho_against_weight(runs: Sequence[tuple[Path, float, list[dict[str, Any]]]], temperature: float,
                       time_index: int) -> list[RhoAtWeight]:
    """The BOTAN fine-tune scores at (``temperature``, ``time_index``) of each run, sorted by p.

    Args:
        runs: (run directory, its train.node_weight p, its eval tasks) per run.

    Raises UserError if a run lacks that task or fewer than two different p remain.
    """
    points = []
    for run_dir, weight, tasks in runs:
        match = [t for t in tasks if t.get("model") == "botan" and "/finetune/" in str(t.get("task", "/finetune/"))
                 and np.isclose(float(t["temperature"]), temperature) and int(t["time_index"]) == time_index]
        if not match:
            raise UserError(f"rho-vs-p: {run_dir / 'eval' / 'metrics.json'} has no BOTAN score at T = {temperature:g}, "
                            f"time index {time_index}")
        scores = {target: {k: float(v[k]) if v.get(k) is not None else np.nan for k in SCORE_KEYS}
                  for target, v in match[0]["scores"].items()}
        points.append(RhoAtWeight(weight, run_dir, scores))
    weights = sorted({p.node_weight for p in points})
    if len(weights) < 2:
        raise UserError(f"rho-vs-p: every run directory has train.node_weight = {weights[0]:g}; ρ against p needs "
                        "runs trained with at least two different p")
    return sorted(points, key=lambda p: p.node_weight)


def plot_rho_vs_weight(points: Sequence[RhoAtWeight], base: str | Path, title: str) -> list[Path]:
    """ρ of S_i and E_ij against p: median over replicas with best–worst error bars, ensemble as circles."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.4, 3.3), dpi=150)
    for n, target in enumerate(("S", "E")):
        rows = [(p.node_weight, p.scores[target]) for p in points if target in p.scores]
        if not rows:
            continue
        colour = ("C3", "C0")[n]
        p = np.array([r[0] for r in rows])
        med = np.array([r[1]["median"] for r in rows])
        lo = med - np.array([r[1]["worst"] for r in rows])
        hi = np.array([r[1]["best"] for r in rows]) - med
        ax.errorbar(p, med, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="s-", color=colour, ms=4, capsize=3,
                    label=f"{TARGET_NAME[target]} (median, best–worst)")
        ax.plot(p, [r[1]["ensemble"] for r in rows], "o", color=colour, mfc="white", ms=5,
                label=f"{TARGET_NAME[target]} (ensemble)")
    ax.set_xlabel("p (weight of the S_i loss)")
    ax.set_ylabel("Pearson ρ")
    ax.set_xlim(-0.05, 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return save_figure(fig, base)


def figure_rho_vs_weight(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                         temperature: float | None = None, time_index: int | None = None) -> FigureOutput:
    """Fig. S5 from several run directories that differ in train.node_weight.

    Defaults: the lowest temperature with BOTAN scores in the first run, and at it the time index
    closest to τα from below (see :func:`hpc_botan.plots.common.default_time_index`).
    """
    if len(run_dirs) < 2:
        raise UserError("rho-vs-p: needs at least two run directories trained with different train.node_weight")
    runs = []
    for rd in run_dirs:
        rd = existing_run_dir(rd)
        cfg = load_run_config(rd)
        runs.append((rd, float(cfg.train.node_weight), load_metrics_json(RunLayout(rd).metrics,
                                                                       f"hpc-botan evaluate {rd}")))
    first_botan = [t for t in runs[0][2] if t.get("model") == "botan"]
    if not first_botan:
        raise UserError(f"rho-vs-p: {runs[0][0] / 'eval' / 'metrics.json'} has no BOTAN scores")
    if temperature is None:
        temperature = min(float(t["temperature"]) for t in first_botan)
    if time_index is None:
        at_t = sorted({(int(t["time_index"]), float(t["time"])) for t in first_botan
                       if np.isclose(float(t["temperature"]), temperature)})
        if not at_t:
            raise UserError(f"rho-vs-p: no BOTAN scores at T = {temperature:g} in {runs[0][0]}")
        k = default_time_index([t for _, t in at_t], run_tau_alpha(load_run_config(runs[0][0]), temperature))
        time_index = at_t[k][0]
    points = rho_against_weight(runs, temperature, time_index)
    time = next(float(t["time"]) for t in runs[0][2] if t.get("model") == "botan"
                and np.isclose(float(t["temperature"]), temperature) and int(t["time_index"]) == time_index)
    files = plot_rho_vs_weight(points, figures_dir(runs[0][0], out_dir) / "rho-vs-p",
                               f"BOTAN, T = {temperature:g}, t = {time:g}")
    caption = (f"Pearson ρ of BOTAN's S_i and E_ij predictions against the loss weight p at T = {temperature:g}, "
               f"t = {time:g}, from {len(points)} runs with p = {', '.join(f'{p.node_weight:g}' for p in points)} "
               "(median over replicas with best–worst bars, circles the ensemble; cf. Fig. S5).")
    return FigureOutput(files, caption)
