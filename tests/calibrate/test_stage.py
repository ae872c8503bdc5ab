import pytest

from hpc_botan.calibrate.stage import (
    pilot_config,
    pilot_seed,
    provisional_config,
    resolved_config,
    too_short_message,
)
from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import open_run_dir
from hpc_botan.physics.time_points import pilot_frames, published_fractions

MIXED = ["simulation.temperatures=[0.44, 0.64]", "simulation.time_points={0.44: calibrated, 0.64: [0.5, 1.0]}",
         "simulation.tau_alpha={0.44: 4000, 0.64: 16.5}"]


def test_pilot_config_is_a_small_run_of_the_calibrated_temperatures():
    cfg = load_config("quick", MIXED + ["simulation.calibration={n_configurations: 3, n_runs: 2}"])
    pilot = pilot_config(cfg)
    s = pilot.simulation
    assert s.temperatures == [0.44]  # 0.64 has its own time points: no pilot needed there
    assert (s.n_configurations, s.n_train, s.n_runs) == (3, 3, 2)
    assert s.time_points == {0.44: pilot_frames(4000.0, 3.0, 0.001, 10)}
    assert s.time_points[0.44][-1] == pytest.approx(12000.0)
    assert s.tau_alpha == {0.44: 4000.0}
    assert s.seed == pilot_seed(cfg.simulation.seed) != cfg.simulation.seed
    # the same physics and LAMMPS settings
    assert (s.n_particles, s.density, s.potential, s.timestep) == (500, 1.2, "shifted_force", 0.001)
    assert pilot.lammps == cfg.lammps and s.calibrated_temperatures() == []


def test_pilot_seed_is_derived_and_valid():
    seeds = {pilot_seed(k) for k in (1, 2, 2024, 2**31 - 17)}
    assert len(seeds) == 4 and all(0 < x < 2**31 - 16 for x in seeds)
    assert pilot_seed(2024) == pilot_seed(2024)


def test_resolved_config_takes_the_measured_tau_alpha():
    cfg = load_config("quick", MIXED + ["simulation.calibration.n_time_points=7"])
    resolved = resolved_config(cfg, {0.44: 2000.0})
    s = resolved.simulation
    # 2000/4120 of the published times, each rounded to a whole step of 0.001 (what LAMMPS records)
    assert s.time_points[0.44] == pytest.approx([0.063, 0.631, 6.311, 63.107, 200.0, 631.068, 2000.0], abs=1e-12)
    assert s.time_points[0.44] == [round(2000.0 * f / 0.001) * 0.001 for f in published_fractions(0.44)[:7]]
    assert s.time_points[0.64] == [0.5, 1.0] and s.tau_alpha == {0.44: 2000.0, 0.64: 16.5}
    # times that the timestep cannot tell apart: one line saying what to change
    with pytest.raises(UserError, match=r"time_points\[0.44\]: times must be > 0, got \[0.0, .*measured tau_alpha "
                                        r"0.01 at T = 0.44 .*lower simulation.timestep"):
        resolved_config(cfg, {0.44: 0.01})


def test_provisional_config_plans_with_the_estimate():
    cfg = load_config("quick", ["simulation.time_points=calibrated", "simulation.calibration.n_time_points=4"])
    assert provisional_config(cfg).simulation.time_points == {0.64: pytest.approx([0.032, 0.1, 0.165, 0.52])}
    plain = load_config("quick")
    assert provisional_config(plain) is plain


def test_too_short_advice_extrapolates_to_one_over_e():
    cfg = load_config("quick", ["simulation.time_points=calibrated"])
    # F_s = 0.6 at t = 49.5 (3 x 16.5): tau = 49.5 / 0.5108^(1/0.7) = 49.5 / 0.383 = 129.3; 2 x 129.3 / 16.5 = 15.7
    message = too_short_message(0.64, 49.5, 0.6, cfg)
    assert "T = 0.64 ran to t = 49.5 (3 x the estimated tau_alpha 16.5) and F_s is still 0.600" in message
    assert "--set simulation.calibration.max_time_tau_alpha=16 " in message and "\n" not in message
    # no decay at all: ten times longer
    assert "max_time_tau_alpha=30 " in too_short_message(0.64, 49.5, 1.0, cfg)


def test_run_directories_hold_only_resolved_time_points(tmp_path):
    with pytest.raises(UserError, match="'calibrated' at T = 0.64 is measured by a pilot run first"):
        open_run_dir(tmp_path / "run", load_config("quick", ["simulation.time_points=calibrated"]))
    # a directory holding only the pilot is still new
    (tmp_path / "run" / "pilot").mkdir(parents=True)
    open_run_dir(tmp_path / "run", load_config("quick"))
