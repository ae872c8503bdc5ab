"""Pearson correlation as the paper reports it (pure numpy, no I/O).

Per configuration, ρ between prediction and target over the evaluated items (type-A particles
for S_i; A–A pairs with |r_ij(0)| < 1.35 for E_ij), then averaged over configurations; the
pooled ρ over all items of all configurations is reported beside it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def pearson(prediction: np.ndarray, target: np.ndarray, axis: int = 0) -> np.ndarray:
    """Pearson correlation along ``axis`` (shapes (M, …) → (…)); NaN where either side is constant."""
    p = np.asarray(prediction, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    p = p - p.mean(axis=axis, keepdims=True)
    t = t - t.mean(axis=axis, keepdims=True)
    denom = np.sqrt((p * p).sum(axis=axis) * (t * t).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (p * t).sum(axis=axis) / np.where(denom > 0, denom, 1.0), np.nan)


def correlation_summary(predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                        masks: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """ρ per configuration, their mean and standard deviation, and the pooled ρ.

    Args:
        predictions, targets: one (M_c, T) array per configuration (M_c items, T time points).
        masks: one (M_c,) bool array per configuration: the items that are evaluated.

    Returns:
        ``per_configuration`` (C, T), ``mean`` (T,), ``std`` (T,), ``pooled`` (T,).
    """
    per = np.stack([pearson(np.asarray(p)[m], np.asarray(t)[m]) for p, t, m in zip(predictions, targets, masks)])
    pooled = pearson(np.concatenate([np.asarray(p)[m] for p, m in zip(predictions, masks)]),
                     np.concatenate([np.asarray(t)[m] for t, m in zip(targets, masks)]))
    return {"per_configuration": per, "mean": np.nanmean(per, axis=0), "std": np.nanstd(per, axis=0),
            "pooled": pooled}


CSV_COLUMNS = ["model", "task", "temperature", "time_index", "time", "target", "n_configurations", "n_replicas",
               "median", "best", "worst", "ensemble", "ensemble_pooled", "ceiling"]


@dataclass(frozen=True)
class TargetScore:
    """ρ of one target (S or E) of one task: per replica (R,), ensemble, and the noise ceiling."""

    replicas: np.ndarray          # (R,) mean over configurations of the per-configuration ρ
    replicas_pooled: np.ndarray   # (R,) pooled over all evaluated items
    ensemble: float               # ρ of the mean prediction of the replicas (mean over configurations)
    ensemble_pooled: float
    per_configuration: np.ndarray  # (C,) ρ of the ensemble per configuration
    ceiling: float                # mean over configurations of √reliability (NaN when unknown)

    def as_dict(self) -> dict[str, Any]:
        r = self.replicas
        return {"median": float(np.median(r)), "best": float(np.max(r)), "worst": float(np.min(r)),
                "replicas": r.tolist(), "replicas_pooled": self.replicas_pooled.tolist(),
                "ensemble": self.ensemble, "ensemble_pooled": self.ensemble_pooled,
                "per_configuration": self.per_configuration.tolist(), "ceiling": self.ceiling}


def score_target(predictions: Sequence[Sequence[np.ndarray]], targets: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray], reliabilities: Sequence[float]) -> TargetScore:
    """ρ of R replicas' predictions of one target on C configurations.

    Args:
        predictions: R lists of C arrays (M_c,) (replica r's prediction for configuration c).
        targets, masks: C arrays (M_c,) of targets and bool evaluation masks.
        reliabilities: C split-half reliabilities (NaN when unknown).
    """
    col = [[np.asarray(p).reshape(-1, 1) for p in rep] for rep in predictions]
    tgt = [np.asarray(t).reshape(-1, 1) for t in targets]
    per_replica = [correlation_summary(rep, tgt, masks) for rep in col]
    mean_pred = [np.mean([rep[c] for rep in col], axis=0) for c in range(len(tgt))]
    ensemble = correlation_summary(mean_pred, tgt, masks)
    rel = np.asarray(reliabilities, dtype=np.float64)
    ceiling = float(np.nanmean(np.sqrt(np.clip(rel, 0.0, None)))) if np.isfinite(rel).any() else float("nan")
    return TargetScore(replicas=np.array([s["mean"][0] for s in per_replica]),
                       replicas_pooled=np.array([s["pooled"][0] for s in per_replica]),
                       ensemble=float(ensemble["mean"][0]), ensemble_pooled=float(ensemble["pooled"][0]),
                       per_configuration=ensemble["per_configuration"][:, 0], ceiling=ceiling)


def rho_csv(results: list[dict[str, Any]]) -> str:
    """``results`` (task dicts as in ``metrics.json``) as CSV text, one row per task and target (CSV_COLUMNS)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    w.writeheader()
    for r in results:
        for target, s in r["scores"].items():
            w.writerow({"model": r["model"], "task": r["task"], "temperature": r["temperature"],
                        "time_index": r["time_index"], "time": r["time"], "target": target,
                        "n_configurations": r["n_configurations"], "n_replicas": len(r["replica_files"]),
                        **{k: round(s[k], 6) for k in ("median", "best", "worst", "ensemble", "ensemble_pooled",
                                                         "ceiling")}})
    return buf.getvalue()
