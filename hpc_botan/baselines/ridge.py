"""Ridge regression in closed form, on standardised features, from sufficient statistics (pure numpy).

A data set of M samples, F features and T targets (the time points of one temperature share their
inputs) enters only through its sums (:class:`RidgeStatistics`): n, Σx (F,), Σxxᵀ (F, F), Σy (T,),
Σy² (T,), Σxyᵀ (F, T).  So configurations are accumulated one at a time, the pair descriptors of
hundreds of configurations never have to be held in memory at once, and the fit for every time point
costs one F × F solve.

The model, for each target column t, with μ and s the mean and standard deviation of each feature over
the fitted samples (features with s = 0 are left unscaled; they carry no information and the penalty
keeps their weight at 0):

    ŷ = b + Σ_f w_f (x_f − μ_f) / s_f,   minimising  (1/M) Σ (y − ŷ)² + λ Σ_f w_f²

(the intercept is not penalised).  Standardising makes one λ mean the same for every feature whatever
its units; dividing the squared error by M makes λ independent of the number of samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Penalties tried by :func:`select_penalty` (per sample, on standardised features).
PENALTIES = tuple(float(x) for x in np.logspace(-6, 2, 17))


@dataclass
class RidgeStatistics:
    """Sufficient statistics of samples (x, y), x (F,), y (T,); add data with :meth:`add`."""

    n_features: int
    n_targets: int
    n: int = 0
    sum_x: np.ndarray = field(default=None)     # (F,)
    sum_xx: np.ndarray = field(default=None)    # (F, F)
    sum_y: np.ndarray = field(default=None)     # (T,)
    sum_yy: np.ndarray = field(default=None)    # (T,)
    sum_xy: np.ndarray = field(default=None)    # (F, T)

    def __post_init__(self):
        f, t = self.n_features, self.n_targets
        self.sum_x = np.zeros(f) if self.sum_x is None else self.sum_x
        self.sum_xx = np.zeros((f, f)) if self.sum_xx is None else self.sum_xx
        self.sum_y = np.zeros(t) if self.sum_y is None else self.sum_y
        self.sum_yy = np.zeros(t) if self.sum_yy is None else self.sum_yy
        self.sum_xy = np.zeros((f, t)) if self.sum_xy is None else self.sum_xy

    def add(self, x: np.ndarray, y: np.ndarray) -> "RidgeStatistics":
        """Add M samples: x (M, F), y (M, T) (or (M,) when T = 1).  Returns self."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
        if x.ndim != 2 or x.shape[1] != self.n_features or y.shape[1] != self.n_targets:
            raise ValueError(f"expected x (M, {self.n_features}) and y (M, {self.n_targets}), "
                             f"got {x.shape} and {y.shape}")
        self.n += len(x)
        self.sum_x += x.sum(axis=0)
        self.sum_xx += x.T @ x
        self.sum_y += y.sum(axis=0)
        self.sum_yy += (y * y).sum(axis=0)
        self.sum_xy += x.T @ y
        return self

    def __add__(self, other: "RidgeStatistics") -> "RidgeStatistics":
        return RidgeStatistics(self.n_features, self.n_targets, self.n + other.n, self.sum_x + other.sum_x,
                               self.sum_xx + other.sum_xx, self.sum_y + other.sum_y, self.sum_yy + other.sum_yy,
                               self.sum_xy + other.sum_xy)

    def column(self, t: int) -> "RidgeStatistics":
        """The statistics of target column t alone (T = 1)."""
        return RidgeStatistics(self.n_features, 1, self.n, self.sum_x, self.sum_xx, self.sum_y[t:t + 1],
                               self.sum_yy[t:t + 1], self.sum_xy[:, t:t + 1])


@dataclass(frozen=True)
class RidgeModel:
    """A fitted linear model in the original feature units: ŷ = x @ weights + intercept."""

    weights: np.ndarray     # (F, T)
    intercept: np.ndarray   # (T,)
    penalty: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """ŷ (M, T) for x (M, F)."""
        return np.asarray(x, dtype=np.float64) @ self.weights + self.intercept


def sum_statistics(parts) -> RidgeStatistics:
    """The statistics of the union of several data sets (an iterable of :class:`RidgeStatistics`)."""
    parts = list(parts)
    if not parts:
        raise ValueError("no statistics to sum")
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


@dataclass(frozen=True)
class _Standardised:
    """The fit set's moments in standardised feature units."""

    mean_x: np.ndarray     # (F,)
    mean_y: np.ndarray     # (T,)
    scale: np.ndarray      # (F,) standard deviations (1 for constant features)
    constant: np.ndarray   # (F,) bool
    corr_xx: np.ndarray    # (F, F) covariance of the standardised features (0 rows/columns where constant)
    corr_xy: np.ndarray    # (F, T)


def _standardise(stats: RidgeStatistics) -> _Standardised:
    if stats.n == 0:
        raise ValueError("no samples to fit")
    n = stats.n
    mean_x = stats.sum_x / n
    mean_y = stats.sum_y / n
    cov_xx = stats.sum_xx / n - np.outer(mean_x, mean_x)
    cov_xy = stats.sum_xy / n - np.outer(mean_x, mean_y)
    var = np.clip(np.diag(cov_xx), 0.0, None)
    # round-off leaves ~1e-16 relative variance in a constant feature: treat it as constant
    constant = var <= 1e-12 * np.maximum(mean_x * mean_x, 1.0)
    scale = np.where(constant, 1.0, np.sqrt(var))
    corr_xx = cov_xx / np.outer(scale, scale)
    corr_xy = cov_xy / scale[:, None]
    corr_xx[constant, :] = 0.0
    corr_xx[:, constant] = 0.0
    corr_xy[constant, :] = 0.0
    return _Standardised(mean_x, mean_y, scale, constant, corr_xx, corr_xy)


def _model(z: _Standardised, w_std: np.ndarray, penalty: float) -> RidgeModel:
    weights = w_std / z.scale[:, None]
    return RidgeModel(weights=weights, intercept=z.mean_y - z.mean_x @ weights, penalty=float(penalty))


def fit_ridge(stats: RidgeStatistics, penalty: float) -> RidgeModel:
    """The ridge solution (module docstring) for every target column, at penalty λ ≥ 0.

    λ = 0 is ordinary least squares (then the standardised Gram matrix must be invertible).
    """
    z = _standardise(stats)
    a = z.corr_xx + penalty * np.eye(stats.n_features)
    a[z.constant, z.constant] = 1.0  # their weight is 0 either way; keeps the system regular
    return _model(z, np.linalg.solve(a, z.corr_xy), penalty)


def ridge_path(stats: RidgeStatistics, penalties) -> list[RidgeModel]:
    """:func:`fit_ridge` at every penalty λ > 0, from one eigendecomposition of the Gram matrix.

    With C = V diag(e) Vᵀ, the solution is V diag(1 / (e + λ)) Vᵀ c for every λ: one O(F³)
    decomposition instead of one solve per penalty.
    """
    if any(lam <= 0 for lam in penalties):
        raise ValueError(f"ridge_path: penalties must be > 0, got {list(penalties)}")
    z = _standardise(stats)
    eigenvalues, vectors = np.linalg.eigh(z.corr_xx)
    eigenvalues = np.clip(eigenvalues, 0.0, None)   # a Gram matrix is ≥ 0; round-off is not
    projected = vectors.T @ z.corr_xy                  # (F, T)
    return [_model(z, vectors @ (projected / (eigenvalues + lam)[:, None]), lam) for lam in penalties]


def mean_squared_error(model: RidgeModel, stats: RidgeStatistics) -> np.ndarray:
    """(1/M) Σ (y − ŷ)² of ``model`` on the samples summarised by ``stats``, per target column (T,)."""
    if stats.n == 0:
        raise ValueError("no samples to score")
    w, b = model.weights, model.intercept
    # Σ (y − xw − b)² = Σy² + wᵀΣxxᵀw + M b² − 2 wᵀΣxy − 2 b Σy + 2 b wᵀΣx, per column
    quad = np.einsum("ft,fg,gt->t", w, stats.sum_xx, w)
    sse = (stats.sum_yy + quad + stats.n * b * b - 2.0 * np.einsum("ft,ft->t", w, stats.sum_xy)
           - 2.0 * b * stats.sum_y + 2.0 * b * (stats.sum_x @ w))
    return np.clip(sse, 0.0, None) / stats.n


def select_penalty(train: RidgeStatistics, validation: RidgeStatistics,
                   penalties: tuple[float, ...] = PENALTIES) -> tuple[RidgeModel, np.ndarray]:
    """Fit on ``train`` at every penalty; keep, per target column, the one with the lowest validation MSE.

    Mean squared error is what selects the networks' models (their validation loss), so the baselines
    are chosen by the same rule.  Ties go to the larger penalty (the simpler model).

    Returns:
        (the model fitted on ``train`` with each column's chosen penalty — ``penalty`` is NaN when the
        columns chose differently, see the second value —, the chosen penalty per column (T,)).
    """
    if not penalties:
        raise ValueError("no penalties to try")
    order = sorted(penalties, reverse=True)
    models = ridge_path(train, order)
    errors = np.stack([mean_squared_error(m, validation) for m in models])     # (P, T)
    best = np.argmin(errors, axis=0)                                          # first = largest λ on ties
    weights = np.stack([models[p].weights[:, t] for t, p in enumerate(best)], axis=1)
    intercept = np.array([models[p].intercept[t] for t, p in enumerate(best)])
    chosen = np.array([order[p] for p in best])
    penalty = float(chosen[0]) if np.all(chosen == chosen[0]) else float("nan")
    return RidgeModel(weights=weights, intercept=intercept, penalty=penalty), chosen
