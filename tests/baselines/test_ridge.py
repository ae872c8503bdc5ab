"""Ridge regression against numpy lstsq, a direct standardised solve, and penalty selection."""
import numpy as np
import pytest

from hpc_botan.baselines.ridge import (
    RidgeStatistics,
    fit_ridge,
    mean_squared_error,
    ridge_path,
    select_penalty,
    sum_statistics,
)


def stats_of(x, y):
    y = np.asarray(y).reshape(len(x), -1)
    return RidgeStatistics(x.shape[1], y.shape[1]).add(x, y)


def test_noise_free_linear_function_is_recovered():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, -2.0, 1.0]
    w = np.array([0.5, -0.2, 7.0, 1.5])
    y = 3.0 + x @ w
    model = fit_ridge(stats_of(x, y), 0.0)
    np.testing.assert_allclose(model.weights[:, 0], w, rtol=1e-9)
    np.testing.assert_allclose(model.intercept, [3.0], rtol=1e-9)
    np.testing.assert_allclose(model.predict(x)[:, 0], y, rtol=1e-9)


def test_least_squares_matches_numpy_lstsq_on_noisy_data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6))
    y = rng.normal(size=(300, 2)) + x[:, :2]
    design = np.hstack([x, np.ones((300, 1))])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    model = fit_ridge(stats_of(x, y), 0.0)
    np.testing.assert_allclose(model.weights, coef[:6], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.intercept, coef[6], rtol=1e-9, atol=1e-12)


def test_ridge_matches_a_direct_standardised_solve_and_the_path():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 5)) * [1.0, 2.0, 3.0, 0.5, 8.0] + 4.0
    y = rng.normal(size=200) + x[:, 0] - 0.1 * x[:, 4]
    lam = 0.3
    mu, sd = x.mean(0), x.std(0)
    z = (x - mu) / sd
    w_std = np.linalg.solve(z.T @ z / 200 + lam * np.eye(5), z.T @ (y - y.mean()) / 200)
    model = fit_ridge(stats_of(x, y), lam)
    np.testing.assert_allclose(model.weights[:, 0], w_std / sd, rtol=1e-9)
    np.testing.assert_allclose(model.intercept[0], y.mean() - mu @ (w_std / sd), rtol=1e-9)
    for lam_k, m in zip([1e-4, lam, 10.0], ridge_path(stats_of(x, y), [1e-4, lam, 10.0])):
        np.testing.assert_allclose(m.weights, fit_ridge(stats_of(x, y), lam_k).weights, rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="> 0"):
        ridge_path(stats_of(x, y), [0.0])


def test_statistics_add_up_and_give_the_mean_squared_error():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 3))
    y = rng.normal(size=(90, 2))
    parts = [stats_of(x[:30], y[:30]), stats_of(x[30:], y[30:])]
    whole, summed = stats_of(x, y), sum_statistics(parts)
    for name in ("sum_x", "sum_xx", "sum_y", "sum_yy", "sum_xy"):
        np.testing.assert_allclose(getattr(summed, name), getattr(whole, name))
    assert summed.n == 90
    model = fit_ridge(stats_of(x[:60], y[:60]), 0.1)
    direct = ((y[60:] - model.predict(x[60:])) ** 2).mean(axis=0)
    np.testing.assert_allclose(mean_squared_error(model, stats_of(x[60:], y[60:])), direct, rtol=1e-9)
    np.testing.assert_allclose(whole.column(1).sum_xy[:, 0], x.T @ y[:, 1])
    with pytest.raises(ValueError, match="expected x"):
        RidgeStatistics(3, 2).add(x, y[:, :1])


def test_a_constant_feature_gets_no_weight():
    rng = np.random.default_rng(4)
    x = np.hstack([rng.normal(size=(100, 2)), np.full((100, 1), 7.0)])
    y = 1.0 + 2.0 * x[:, 0]
    model = fit_ridge(stats_of(x, y), 0.0)
    np.testing.assert_allclose(model.weights[:, 0], [2.0, 0.0, 0.0], atol=1e-9)
    assert ridge_path(stats_of(x, y), [0.5])[0].weights[2, 0] == 0.0


def test_penalty_selection_follows_the_validation_error():
    rng = np.random.default_rng(5)
    n, f = 60, 40
    x_fit, x_val = rng.normal(size=(n, f)), rng.normal(size=(2000, f))
    w = np.zeros(f)
    w[0] = 1.0
    # column 0: exact linear signal (the smallest penalty fits best); column 1: pure noise, nothing to learn
    # from 40 features and 60 samples (the largest penalty, the mean alone, predicts best)
    y_fit = np.stack([x_fit @ w, rng.normal(size=n)], axis=1)
    y_val = np.stack([x_val @ w, rng.normal(size=2000)], axis=1)
    penalties = (1e-6, 1e-3, 1.0, 100.0)
    model, chosen = select_penalty(stats_of(x_fit, y_fit), stats_of(x_val, y_val), penalties)
    assert chosen.tolist() == [1e-6, 100.0]
    assert np.isnan(model.penalty)
    np.testing.assert_allclose(model.weights[:, 0], fit_ridge(stats_of(x_fit, y_fit), 1e-6).weights[:, 0])
    np.testing.assert_allclose(model.weights[:, 1], fit_ridge(stats_of(x_fit, y_fit), 100.0).weights[:, 1])
    errors = [mean_squared_error(fit_ridge(stats_of(x_fit, y_fit), lam), stats_of(x_val, y_val))[1]
              for lam in penalties]
    assert np.argmin(errors) == 3


def test_one_variable_least_squares_is_the_density_baseline_fit():
    # the density baseline is fit_ridge at λ = 0 on one feature: the least-squares line
    rng = np.random.default_rng(6)
    density = rng.uniform(0.9, 1.3, size=400)
    s = 2.0 - 1.2 * density + rng.normal(scale=0.05, size=400)
    model = fit_ridge(stats_of(density[:, None], s), 0.0)
    slope, intercept = np.polyfit(density, s, 1)
    assert model.weights[0, 0] == pytest.approx(slope, rel=1e-9)
    assert model.intercept[0] == pytest.approx(intercept, rel=1e-9)
