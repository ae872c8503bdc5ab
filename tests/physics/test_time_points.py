import math

import pytest

from hpc_botan.physics.time_points import (
    PUBLISHED_TAU_ALPHA,
    PUBLISHED_TIMES,
    calibrated_time_points,
    nearest_published_temperature,
    pilot_frames,
    published_fractions,
)


def test_the_seventh_published_time_is_tau_alpha():
    for temp, times in PUBLISHED_TIMES.items():
        assert len(times) == 10 and times[6] == PUBLISHED_TAU_ALPHA[temp]
        assert all(a < b for a, b in zip(times, times[1:]))


def test_fractions_of_the_nearest_published_temperature():
    assert nearest_published_temperature(0.64) == 0.64
    assert nearest_published_temperature(0.47) == 0.44  # a tie goes to the lower one
    assert nearest_published_temperature(0.52) == 0.50
    assert nearest_published_temperature(2.0) == 0.64
    assert nearest_published_temperature(0.3) == 0.44
    f = published_fractions(0.62)
    assert f[6] == 1.0
    assert f[0] == pytest.approx(0.032 / 16.5) and f[-1] == pytest.approx(520 / 16.5)
    assert published_fractions(0.45)[3] == pytest.approx(130 / 4120)


def test_calibrated_time_points_scale_the_published_ones():
    # at a published temperature with its own tau_alpha: the published times themselves
    assert calibrated_time_points(217.0, 0.50, 10) == pytest.approx(PUBLISHED_TIMES[0.50])
    # T = 0.64 measured at tau_alpha = 33 (twice 16.5): every time doubles; the first 3 only
    assert calibrated_time_points(33.0, 0.64, 3) == pytest.approx([0.064, 0.2, 0.33])
    assert calibrated_time_points(2.0, 0.64, 7)[-1] == 2.0
    # on whole MD steps: 0.032 x 0.3 / 16.5 = 0.000582 -> step 1 of 0.001; 0.1 x 0.3 / 16.5 = 0.00182 -> 2
    assert calibrated_time_points(0.3, 0.64, 3, timestep=0.001) == pytest.approx([0.001, 0.002, 0.003])
    with pytest.raises(ValueError):
        calibrated_time_points(1.0, 0.64, 11)
    with pytest.raises(ValueError):
        calibrated_time_points(0.0, 0.64, 3)


def test_pilot_frames_are_log_spaced_whole_steps():
    # end 1 x 1 tau at dt 0.01 = step 100; 2 per decade: geomspace(1, 100, 5) = 1, 3.16, 10, 31.6, 100
    assert pilot_frames(1.0, 1.0, 0.01, per_decade=2) == pytest.approx([0.01, 0.03, 0.1, 0.32, 1.0])
    # end 3 x 0.5 = 1.5 tau at dt 0.001 = step 1500; 10 per decade -> 33 points, duplicates of
    # the first decade dropped
    frames = pilot_frames(0.5, 3.0, 0.001)
    steps = [round(t / 0.001) for t in frames]
    assert steps[0] == 1 and steps[-1] == 1500 and frames[-1] == pytest.approx(1.5)
    assert all(a < b for a, b in zip(steps, steps[1:]))
    assert all(math.isclose(t, s * 0.001) for t, s in zip(frames, steps))
    # 33 points over log10(1500) = 3.18 decades, ratio 1.256: 1, 1.26, 1.58, 1.98, 2.49, 3.13, 3.93,
    # 4.94, 6.2, 7.8, 9.8 round to these
    assert steps[:8] == [1, 2, 3, 4, 5, 6, 8, 10]
    assert 25 <= len(steps) <= 33
    # an end shorter than one step still records one step
    assert pilot_frames(1e-4, 1.0, 0.001) == [0.001]
