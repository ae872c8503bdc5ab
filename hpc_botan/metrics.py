"""Pearson correlation as the paper reports it (pure numpy, no I/O).

Per configuration, ρ between prediction and target over the evaluated items (type-A particles
for S_i; A–A pairs with |r_ij(0)| < 1.35 for E_ij), then averaged over configurations; the
pooled ρ over all items of all configurations is reported beside it.
"""
from __future__ import annotations

from typing import Sequence

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
