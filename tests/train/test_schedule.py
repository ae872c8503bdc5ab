import math

import pytest

from hpc_botan.train.schedule import learning_rate_at


def test_constant_is_the_base():
    assert [learning_rate_at(s, 10, 1e-3) for s in (0, 5, 9)] == [1e-3] * 3


def test_warmup_then_cosine_by_hand():
    lr = [learning_rate_at(s, 12, 1.0, schedule="cosine", warmup_steps=2, min_fraction=0.1) for s in range(12)]
    assert lr[0] == pytest.approx(0.5) and lr[1] == pytest.approx(1.0)
    assert lr[2] == pytest.approx(1.0)                 # the cosine starts at the base
    assert lr[-1] == pytest.approx(0.1)                # and ends at min_fraction · base
    middle = 2 + (12 - 2 - 1) / 2                      # half-way through the cosine: the mean of both ends
    assert learning_rate_at(int(middle), 12, 1.0, schedule="cosine", warmup_steps=2, min_fraction=0.1) == \
        pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (int(middle) - 2) / 9)))
    assert all(a >= b for a, b in zip(lr[1:], lr[2:]))  # never rises after the warm-up


def test_unknown_schedule():
    with pytest.raises(ValueError):
        learning_rate_at(0, 10, 1.0, schedule="step")
