import numpy as np
import pytest

from hpc_botan.physics.targets import relaxation_time, self_intermediate_scattering


def test_fs_is_one_without_motion():
    assert self_intermediate_scattering(np.zeros((2, 3, 5, 3))) == pytest.approx([1.0, 1.0, 1.0])


def test_fs_hand_computed():
    k = 2 * np.pi
    d = np.zeros((2, 1, 2, 3))
    d[0, 0, 0] = [0.25, 0, 0]  # run 0, particle 0 moved 0.25: sin(pi/2)/(pi/2) = 2/pi
    d[1, 0, 1] = [0, 0.0, 0.5]  # run 1, particle 1 moved 0.5: sin(pi)/pi = 0
    # mean over (2 runs x 2 particles) of [2/pi, 1, 1, 0]
    assert self_intermediate_scattering(d, k)[0] == pytest.approx((2 / np.pi + 2) / 4)
    # the mask keeps particle 0 only: mean of [2/pi, 1]
    assert self_intermediate_scattering(d, k, mask=np.array([True, False]))[0] == pytest.approx((2 / np.pi + 1) / 2)


def test_fs_is_the_direction_average_of_the_plane_wave():
    rng = np.random.default_rng(0)
    d = rng.normal(scale=0.3, size=(1, 1, 400, 3))
    q = rng.normal(size=(20000, 3))
    q *= 2 * np.pi / np.linalg.norm(q, axis=1, keepdims=True)
    brute = np.cos(d[0, 0] @ q.T).mean()
    assert self_intermediate_scattering(d)[0] == pytest.approx(brute, abs=0.01)


def test_relaxation_time_interpolates_in_log_time():
    times = np.array([1.0, 10.0, 100.0])
    fs = np.array([0.9, 0.5, 0.1])
    level = 0.3  # halfway between 0.5 and 0.1: halfway in log t between 10 and 100
    assert relaxation_time(times, fs, level) == pytest.approx(np.sqrt(10 * 100))
    assert relaxation_time(times, np.exp(-times / 10.0)) == pytest.approx(10.0, rel=0.05)


def test_relaxation_time_outside_the_window_is_nan():
    assert np.isnan(relaxation_time(np.array([1.0, 2.0]), np.array([0.9, 0.8])))
    assert np.isnan(relaxation_time(np.array([1.0, 2.0]), np.array([0.1, 0.05])))
