"""``hpc-botan calibrate`` end to end: a tiny real pilot at T = 2.0, where tau_alpha is about half a tau."""
import json
import os

import numpy as np
import pytest
import yaml

from hpc_botan.io import h5md
from hpc_botan.physics.time_points import published_fractions
from tests.conftest import run_cli

#: 200 particles, a short melt and quench, T = 2.0 (tau_alpha ~ 0.6), 2 configurations x 2 runs: seconds.
TINY_PILOT = [
    "simulation.n_particles=200",
    "simulation.n_configurations=2",
    "simulation.n_train=1",
    "simulation.melt_time=0.2",
    "simulation.quench_time=0.2",
    "simulation.equilibration_tau_alpha=1",
    "simulation.temperatures=[2.0]",
    "simulation.tau_alpha={2.0: 0.5}",
    "simulation.time_points=calibrated",
    "simulation.calibration={n_configurations: 2, n_runs: 2, n_time_points: 8}",
    "lammps.thermo_every=100",
]


def _sets(*extra):
    return [a for o in (*TINY_PILOT, *extra) for a in ("--set", o)]


def _mtimes(root):
    return {p: os.stat(p).st_mtime_ns for p in sorted(root.rglob("*.h5"))}


@pytest.mark.lammps
def test_calibrate_measures_tau_alpha_and_resumes(need_lammps, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("calibrate", "quick", "--out", str(run), "--executor", "debug", *_sets())
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((run / "pilot" / "calibration.json").read_text())
    entry = record["temperatures"]["2.0"]
    tau = entry["tau_alpha"]
    assert 0.2 < tau < 1.5  # the 1/e crossing of F_s at T = 2.0
    assert len(entry["tau_per_configuration"]) == 2 and entry["tau_estimate"] == 0.5
    assert min(entry["tau_per_configuration"]) <= entry["tau_mean_of_configurations"] <= \
        max(entry["tau_per_configuration"])
    stored = yaml.safe_load((run / "config.yaml").read_text())["simulation"]
    # tau x the published fractions, each on a whole MD step (dt = 0.001: what the trajectories carry)
    assert stored["time_points"][2.0] == [round(tau * f / 0.001) * 0.001 for f in published_fractions(2.0)[:8]]
    assert stored["time_points"][2.0] == pytest.approx([tau * f for f in published_fractions(2.0)[:8]], abs=5e-4)
    assert stored["tau_alpha"] == {2.0: tau}
    assert f"tau_alpha = {tau:.4g} (estimate 0.5)" in proc.stdout
    pilot = yaml.safe_load((run / "pilot" / "config.yaml").read_text())["simulation"]
    assert (pilot["n_configurations"], pilot["n_runs"]) == (2, 2) and pilot["seed"] != stored["seed"]
    assert pilot["time_points"][2.0][-1] == pytest.approx(1.5)  # 3 x the estimate
    assert record["pilot"] == {"config": "config.yaml", "seed": pilot["seed"], "n_configurations": 2, "n_runs": 2}

    # the same command again: nothing simulated, nothing measured again, the run directory accepts it
    before = {**_mtimes(run), run / "pilot" / "calibration.json": os.stat(run / "pilot/calibration.json").st_mtime_ns}
    again = run_cli("calibrate", "quick", "--out", str(run), "--executor", "debug", *_sets())
    assert again.returncode == 0, again.stderr[-2000:]
    assert {**_mtimes(run), run / "pilot" / "calibration.json":
            os.stat(run / "pilot/calibration.json").st_mtime_ns} == before
    assert yaml.safe_load((run / "config.yaml").read_text())["simulation"] == stored
    # simulate takes the calibrated CONFIG too, with the calibrated lists
    count = run_cli("simulate", "quick", "--out", str(run), "--count", *_sets())
    assert count.returncode == 0 and count.stdout.strip() == "2", count.stderr[-2000:]
    # a production configuration records exactly the calibrated times (the targets stage checks them)
    one = run_cli("simulate", "quick", "--out", str(run), "--task", "0", *_sets())
    assert one.returncode == 0, one.stderr[-2000:]
    traj = h5md.read_configuration(one.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(traj.times[1:], stored["time_points"][2.0], rtol=1e-9)
    # other calibration settings are another experiment
    other = run_cli("calibrate", "quick", "--out", str(run), *_sets("simulation.calibration.n_time_points=7"))
    assert other.returncode == 2
    assert "differs at simulation.calibration.n_time_points (7 here, 8 in the run directory)" in other.stderr


@pytest.mark.lammps
def test_a_pilot_too_short_says_how_long_to_run(need_lammps, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("calibrate", "quick", "--out", str(run), "--executor", "debug",
                   *_sets("simulation.calibration.max_time_tau_alpha=0.1"))
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("hpc-botan: error: simulation.time_points: the pilot at T = 2 ran to t = 0.05 (0.1 x the "
                           "estimated tau_alpha 0.5) and F_s is still 0.")
    assert "--set simulation.calibration.max_time_tau_alpha=" in line and "Traceback" not in proc.stderr
    assert not (run / "config.yaml").exists()
    # following the advice in the same directory: the short pilot is replaced
    advice = float(line.split("max_time_tau_alpha=")[1].split()[0])
    assert advice * 0.5 > 0.6  # long enough for tau_alpha ~ 0.6
    ok = run_cli("calibrate", "quick", "--out", str(run), "--executor", "debug",
                 *_sets(f"simulation.calibration.max_time_tau_alpha={advice}"))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (run / "config.yaml").is_file()
    # the short pilot is set aside whole, not deleted
    old = yaml.safe_load((run / "pilot.superseded-1" / "config.yaml").read_text())
    assert max(max(v) for v in old["simulation"]["time_points"].values()) == pytest.approx(0.05)
    assert sorted(p.name for p in (run / "pilot.superseded-1" / "simulate").iterdir()) == \
        sorted(p.name for p in (run / "pilot" / "simulate").iterdir())


def test_commands_refuse_uncalibrated_time_points(tmp_path):
    sim = run_cli("simulate", "quick", "--out", str(tmp_path / "a"), "--set", "simulation.time_points=calibrated")
    assert sim.returncode == 2
    assert "the pilot run that calibrates simulation.time_points is not finished; run 'hpc-botan calibrate CONFIG " \
           "--out RUN_DIR' first" in sim.stderr and "Traceback" not in sim.stderr
    slurm = run_cli("run", "quick", "--out", str(tmp_path / "b"), "--executor", "slurm", "--set",
                    "simulation.time_points=calibrated")
    assert slurm.returncode == 2 and "run 'hpc-botan calibrate CONFIG --out RUN_DIR' first" in slurm.stderr
    assert not (tmp_path / "b" / "config.yaml").exists()
    # the run is planned with as many time points as the pilot will give, before the pilot runs
    plan = run_cli("run", "quick", "--out", str(tmp_path / "d"), "--set", "simulation.time_points=calibrated",
                   "--set", "train.time_indices=[99]")
    assert plan.returncode == 2 and "T = 0.64 has 10 time points" in plan.stderr and not (tmp_path / "d").exists()
    nothing = run_cli("calibrate", "quick", "--out", str(tmp_path / "c"))
    assert nothing.returncode == 2 and "no temperature is 'calibrated'" in nothing.stderr


def test_calibrate_help_explains_itself():
    proc = run_cli("calibrate", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for phrase in ("pilot", "RUN_DIR/pilot/calibration.json", "max_time_tau_alpha", "n_time_points",
                   "published fractions", "1/e", "--executor"):
        assert phrase in text
    assert "calibrate" in run_cli("--help").stdout
