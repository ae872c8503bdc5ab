"""The accuracy summary of a run: BOTAN against its baselines, one row per (T, t).

Pure functions over the task dicts of ``eval/metrics.json`` and ``eval/baselines.json`` (same schema):
each has ``model``, ``temperature``, ``time`` (τ) and ``scores[target]`` with the ensemble ρ (mean over
the evaluated configurations), the ρ per configuration and the noise ceiling.  The report renders
what these return; nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from hpc_botan.learned_targets import LEARNED_TARGETS

#: The columns of each target's table: (model key in the task dicts, label), networks first.
MODELS = {
    "S": (("botan", "BOTAN"), ("ntgnn", "NT-GNN"), ("ridge", "ridge"), ("density", "local density")),
    "E": (("botan", "BOTAN"), ("ridge", "ridge"), ("distance", "r_ij(0)")),
}
#: The models a network has to beat to be worth its cost.
BASELINES = ("ridge", "density", "distance")
#: How the report writes each learned target (hpc_botan.learned_targets).
TARGET_NAMES = {label: t.symbol for label, t in LEARNED_TARGETS.items()}


def models_of(target: str) -> tuple[tuple[str, str], ...]:
    """The columns of a learned target's table: a node target is compared with what S_i is, an edge
    target with what E_ij is."""
    return MODELS["S" if LEARNED_TARGETS[target].level == "node" else "E"]


def scored_targets(tasks: Sequence[dict[str, Any]]) -> list[str]:
    """The learned targets that some task scored, in the registry's order."""
    return [label for label in LEARNED_TARGETS if any(label in t.get("scores", {}) for t in tasks)]


@dataclass
class Cell:
    """One model's ρ at one (T, t): ensemble ρ (mean over configurations) and its standard error."""

    rho: float
    stderr: float
    n_configurations: int


@dataclass
class ComparisonRow:
    temperature: float
    time: float
    cells: dict[str, Cell] = field(default_factory=dict)
    ceiling: float = math.nan

    def best(self) -> str | None:
        """The model with the highest ρ (None if no model has one)."""
        finite = {m: c.rho for m, c in self.cells.items() if math.isfinite(c.rho)}
        return max(finite, key=finite.get) if finite else None

    def botan_beats_baselines(self) -> bool | None:
        """Whether BOTAN's ρ is at least every baseline's here (None without BOTAN or without a baseline)."""
        if "botan" not in self.cells or not math.isfinite(self.cells["botan"].rho):
            return None
        rivals = [c.rho for m, c in self.cells.items() if m in BASELINES and math.isfinite(c.rho)]
        if not rivals:
            return None
        return self.cells["botan"].rho >= max(rivals)


def _cell(scores: dict[str, Any]) -> Cell:
    per = [x for x in scores.get("per_configuration", []) if x is not None and math.isfinite(x)]
    n = len(per)
    if n > 1:
        mean = sum(per) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in per) / (n - 1))
        stderr = sd / math.sqrt(n)
    else:
        stderr = math.nan
    return Cell(float(scores["ensemble"]), stderr, n)


def comparison_rows(tasks: Sequence[dict[str, Any]], target: str) -> list[ComparisonRow]:
    """One row per (T, t) that any model scored ``target`` ("S" or "E") at, sorted by T then t."""
    rows: dict[tuple[float, float], ComparisonRow] = {}
    known = {m for m, _ in models_of(target)}
    for task in tasks:
        scores = task.get("scores", {}).get(target)
        if scores is None or task.get("model") not in known:
            continue
        key = (round(float(task["temperature"]), 6), float(task["time"]))
        row = rows.setdefault(key, ComparisonRow(key[0], key[1]))
        row.cells[task["model"]] = _cell(scores)
        ceiling = scores.get("ceiling")
        if ceiling is not None and math.isfinite(float(ceiling)) and not math.isfinite(row.ceiling):
            row.ceiling = float(ceiling)
    return [rows[k] for k in sorted(rows)]


def _times(rows: Sequence[ComparisonRow]) -> str:
    by_t: dict[float, list[str]] = {}
    for r in rows:
        by_t.setdefault(r.temperature, []).append(f"{r.time:g}")
    return "; ".join(f"T = {t:g}: t = {', '.join(v)}" for t, v in by_t.items())


def verdict(tasks: Sequence[dict[str, Any]]) -> str:
    """The report's first sentence: did BOTAN beat every baseline on this run, and where."""
    parts = []
    for target in scored_targets(tasks):
        rows = [r for r in comparison_rows(tasks, target) if r.botan_beats_baselines() is not None]
        if not rows:
            continue
        won = [r for r in rows if r.botan_beats_baselines()]
        lost = [r for r in rows if not r.botan_beats_baselines()]
        name = TARGET_NAMES[target]
        if not lost:
            parts.append(f"for {name} BOTAN beat every baseline at every evaluated time point")
        elif not won:
            winners = sorted({r.best() for r in lost if r.best() != "botan"} - {None})
            parts.append(f"for {name} BOTAN beat no baseline at any time point ({', '.join(winners)} ahead)")
        else:
            winners = sorted({m for r in lost for m, c in r.cells.items()
                              if m in BASELINES and c.rho > r.cells["botan"].rho})
            parts.append(f"for {name} BOTAN beat every baseline at {_times(won)}, but not at {_times(lost)} "
                         f"({', '.join(winners)} ahead)")
    if not parts:
        return "No BOTAN model and baseline were scored at the same time point on this run."
    text = "On this run, " + "; ".join(parts) + "."
    return text[0].upper() + text[1:]
