import numpy as np
import pytest

from hpc_botan.metrics import correlation_summary, pearson, score_target


def test_pearson_by_hand():
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # x = (1, 2, 3, 4), y = (1, 3, 2, 4): cov = 4, var = 5 each -> 0.8
    assert pearson(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])) == pytest.approx(0.8)
    assert np.isnan(pearson(np.ones(3), np.arange(3.0)))


def test_mean_over_configurations_and_pooled():
    pred = [np.array([[1.0], [2.0], [3.0], [99.0]]), np.array([[1.0], [2.0], [3.0], [4.0]])]
    tgt = [np.array([[1.0], [2.0], [3.0], [0.0]]), np.array([[1.0], [3.0], [2.0], [4.0]])]
    masks = [np.array([True, True, True, False]), np.ones(4, bool)]
    s = correlation_summary(pred, tgt, masks)
    assert s["per_configuration"][:, 0] == pytest.approx([1.0, 0.8])
    assert s["mean"][0] == pytest.approx(0.9)
    pooled = pearson(np.array([1.0, 2, 3, 1, 2, 3, 4]), np.array([1.0, 2, 3, 1, 3, 2, 4]))
    assert s["pooled"][0] == pytest.approx(pooled)


def test_replicas_ensemble_and_ceiling():
    target = [np.array([1.0, 2.0, 3.0, 4.0])]
    mask = [np.ones(4, bool)]
    a = [np.array([1.0, 3.0, 2.0, 4.0])]     # ρ = 0.8
    b = [np.array([1.0, 2.0, 3.0, 4.0])]     # ρ = 1
    c = [np.array([4.0, 3.0, 2.0, 1.0])]     # ρ = -1
    s = score_target([a, b, c], target, mask, [0.81]).as_dict()
    assert (s["median"], s["best"], s["worst"]) == pytest.approx((0.8, 1.0, -1.0))
    mean = (a[0] + b[0] + c[0]) / 3
    assert s["ensemble"] == pytest.approx(float(pearson(mean, target[0])))
    assert s["ceiling"] == pytest.approx(0.9)
    assert np.isnan(score_target([a], target, mask, [np.nan]).ceiling)
