"""``hpc-botan run``: the stages chained locally, resuming after a killed stage, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from hpc_botan.io import h5md
from tests.calibrate.test_command import TINY_PILOT
from tests.conftest import TINY, run_cli

pytestmark = [pytest.mark.lammps, pytest.mark.mpi, pytest.mark.slow]

#: TINY simulation (2 configurations: 1 train, 1 test; 3 time points) and a training of seconds, in the
#: preset's train.mode (multi_time: one network per temperature for the 3 time points) and with the preset's
#: network: the published weights as the start (installed, not pretrained) and descriptor heads.
TINY_PIPELINE = TINY + ["train.epochs=2", "train.pretrain.epochs=2",
                        "train.ntgnn.epochs=2", "train.ntgnn.batch_graphs=1", "train.n_replicas=2",
                        "train.pretrain.time_index=0", "train.augmentation=none", "train.time_indices=null"]


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, need_lammps, need_mpirun):
    run = tmp_path_factory.mktemp("pipeline") / "run"
    res = run_cli("run", "quick", "--out", str(run), *sets(TINY_PIPELINE), "--no-progress", timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return run, res


def test_run_chains_every_stage_and_ends_with_the_report(finished_run):
    run, res = finished_run
    report = run / "report" / "report.html"
    assert res.stdout.strip().splitlines()[-1] == f"run: report {report}"
    assert len(list((run / "simulate" / "T0.640").glob("conf-*.h5"))) == 2
    assert (run / "targets" / "index.h5").is_file()
    assert len(list((run / "targets").glob("shard-*.h5"))) == 2  # launch.targets_ranks = 2 MPI ranks
    assert len(list((run / "train").glob("*/**/replica-*/final.pt"))) == 2 * (1 + 1 + 1)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    # one row per (model, T, t): the multi-time networks are evaluated at each of their time points
    assert sorted((t["task"], t["time_index"]) for t in metrics["tasks"]) == sorted(
        [("botan/finetune/T0.640/multi", k) for k in range(3)] + [("ntgnn/T0.640/multi", k) for k in range(3)])
    baselines = json.loads((run / "eval" / "baselines.json").read_text())
    assert {t["model"] for t in baselines["tasks"]} >= {"ridge", "density", "distance"}
    timings = {p.name.split(".")[0] for p in (run / "pipeline" / "timings").glob("*.json")}
    assert timings == {"simulate", "targets", "train", "evaluate", "baselines", "figures", "report"}
    html = report.read_text()
    assert "data:image/png;base64," in html
    assert html.count("<figure>") >= 5
    assert "ridge" in html and "ntgnn" in html


def test_rerunning_a_finished_run_skips_the_finished_stages(finished_run):
    run, _ = finished_run
    res = run_cli("run", "quick", "--out", str(run), *sets(TINY_PIPELINE), "--no-progress", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for stage in ("simulate", "targets", "train"):
        assert f"run: {stage} finished earlier, skipped" in res.stderr


def test_a_run_killed_during_training_resumes(tmp_path, need_lammps, need_mpirun):
    run = tmp_path / "run"
    # long enough that the kill lands inside the training stage
    args = ["run", "quick", "--out", str(run), *sets(TINY_PIPELINE), "--set", "train.epochs=40",
            "--set", "train.checkpoint_every_steps=1", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "hpc_botan", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first = run / "train" / "botan" / "finetune" / "T0.640" / "multi" / "replica-00" / "checkpoint.pt"
    deadline = time.time() + 600
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists(), "training did not start"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "report").exists()
    assert not (run / "pipeline" / "timings" / "train.json").exists()  # the killed stage is not marked done
    res = run_cli(*args, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "run: simulate finished earlier, skipped" in res.stderr
    assert "run: targets finished earlier, skipped" in res.stderr
    assert "botan/finetune/T0.640/multi replica 0: resuming at epoch" in res.stderr
    assert (run / "report" / "report.html").is_file()
    assert (run / "pipeline" / "timings" / "train.json").is_file()


def test_run_calibrates_the_time_points_with_the_chosen_potential(tmp_path, need_lammps, need_mpirun):
    """``hpc-botan run`` with ``time_points: calibrated`` and a non-default potential: the pilot runs first,
    with that potential, and every stage works on the measured time points (T = 2.0: tau_alpha ~ 0.6 tau)."""
    run = tmp_path / "run"
    training = [o for o in TINY_PIPELINE if o.split("=")[0].split(".")[0] in ("model", "train")]
    overrides = TINY_PILOT + training + ["simulation.n_runs=3", "simulation.potential=truncated_shifted",
                                         "simulation.calibration.n_time_points=4"]
    res = run_cli("run", "quick", "--out", str(run), *sets(overrides), "--no-progress", timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    assert (run / "report" / "report.html").is_file()
    record = json.loads((run / "pilot" / "calibration.json").read_text())
    tau = record["temperatures"]["2.0"]["tau_alpha"]
    stored = yaml.safe_load((run / "config.yaml").read_text())["simulation"]
    assert stored["potential"] == "truncated_shifted" and stored["tau_alpha"] == {2.0: tau}
    assert yaml.safe_load((run / "pilot" / "config.yaml").read_text())["simulation"]["potential"] == \
        "truncated_shifted"
    logs = [*(run / "pilot" / "simulate" / "logs").rglob("run-000.log"), *(run / "simulate" / "logs").rglob("run-000.log")]
    assert len(logs) == 2 + 2  # the first run of each pilot and production configuration
    for log in logs:
        text = log.read_text()
        assert "pair_style lj/cut 2.5" in text and "lj/smooth/linear" not in text, log
    times = stored["time_points"][2.0]
    assert len(times) == 4 and times[-1] == pytest.approx(tau * 0.52 / 16.5, abs=5e-4)  # the 4th published fraction
    for path in sorted((run / "simulate" / "T2.000").glob("conf-*.h5")):
        np.testing.assert_allclose(h5md.read_configuration(path).times[1:], times, rtol=1e-9)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert sorted(t["time_index"] for t in metrics["tasks"] if t["task"].startswith("botan/")) == [0, 1, 2, 3]


def test_unknown_preset_is_one_line(tmp_path):
    res = run_cli("run", "no_such_preset", "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "hpc-botan: error: no_such_preset: no such config file and no such preset (presets: paper, quick)"]
    assert not (tmp_path / "run").exists()


def test_no_wait_needs_slurm(tmp_path):
    res = run_cli("run", "quick", "--out", str(tmp_path / "run"), "--no-wait")
    assert res.returncode == 2 and "--no-wait: only with --executor slurm" in res.stderr


@pytest.mark.parametrize("setting, message", [
    ("train.time_indices=[99]", "train.time_indices: 99 is out of range; T = 0.64 has 7 time points"),
    ("train.pretrain.time_index=9", "train.pretrain.time_index: 9 is out of range"),
    ("train.data_parallel=4", "not a multiple of train.data_parallel = 4"),
    ("train.holdout_temperatures=[0.3]", "train.holdout_temperatures: needs train.temperatures = joint"),
    ("train.batch_graphs=9", "simulation.n_train = 6 leaves 4 configuration(s) per temperature"),
])
def test_settings_that_would_fail_hours_in_are_refused_before_anything_runs(setting, message, tmp_path):
    res = run_cli("run", "quick", "--out", str(tmp_path / "X"), "--set", setting)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "X").exists()
