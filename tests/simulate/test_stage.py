import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import LammpsError
from hpc_botan.io import h5md
from hpc_botan.io.rundir import load_run_config
from hpc_botan.physics import ka
from hpc_botan.plan.configurations import configuration_tasks, trajectory_path
from hpc_botan.simulate.stage import derive_seeds, partitions_for, prepare_run, run_configuration
from tests.conftest import TINY


def test_tasks_and_seeds_are_stable():
    cfg = load_config("paper")
    tasks = configuration_tasks(cfg)
    assert len(tasks) == 3 * 500
    assert tasks[500].name == "T0.500/conf-00000"
    prep, runs = derive_seeds(2024, 1, 0, 32)
    assert len(set(runs + [prep])) == 33 and all(0 < s <= 2**30 for s in runs)
    # adding runs or configurations never changes existing seeds
    assert derive_seeds(2024, 1, 0, 40)[0] == prep
    assert derive_seeds(2024, 1, 1, 32)[0] != prep


def test_run_configuration_is_picklable():
    assert pickle.loads(pickle.dumps(run_configuration)) is run_configuration


def test_ensemble_layout_choice():
    assert partitions_for(load_config("quick", ["lammps.mpi_ranks=4"]), 8) == 4
    assert partitions_for(load_config("quick", ["lammps.mpi_ranks=4"]), 2) == 1
    assert partitions_for(load_config("quick", ["lammps.mpi_ranks=4", "lammps.ensemble_mode=sequential"]), 8) == 1
    assert partitions_for(load_config("quick"), 8) == 1


@pytest.mark.lammps
def test_one_configuration_end_to_end(need_lammps, tmp_path):
    run_dir = prepare_run("quick", tmp_path / "run", TINY)
    path = run_configuration(run_dir, 1)
    cfg = load_run_config(run_dir)
    task = configuration_tasks(cfg)[1]
    assert path == str(trajectory_path(run_dir, task))
    traj = h5md.read_configuration(path)
    assert traj.positions.shape == (3, 4, 200, 3)
    assert list(traj.steps) == [0, 10, 50, 200]
    np.testing.assert_allclose(traj.times, [0, 0.01, 0.05, 0.2])
    assert np.bincount(traj.species).tolist() == list(ka.species_counts(200))
    box = ka.box_length(200, 1.2)
    np.testing.assert_allclose(traj.box, [box] * 3)
    # frame 0 is the prepared structure, the same in every run, inside the box
    assert (traj.positions[:, 0] == traj.positions[0, 0]).all()
    assert traj.positions[0, 0].min() >= 0 and traj.positions[0, 0].max() < box
    disp = traj.positions[:, 1:] - traj.positions[:, :1]
    # zero total momentum (equal masses): the centre of mass does not move
    assert np.abs(disp.mean(axis=2)).max() < 1e-9
    # runs differ (fresh velocities); early displacements are small (ballistic, v ~ 1.4)
    assert not np.allclose(disp[0], disp[1])
    assert np.linalg.norm(disp[:, 0], axis=-1).max() < 0.1
    prep_seed, run_seeds = derive_seeds(cfg.simulation.seed, 0, 1, 3)
    assert traj.attrs["prepare_seed"] == prep_seed and list(traj.run_seeds) == run_seeds
    assert "simulation:" in traj.attrs["config_yaml"] and traj.attrs["lammps_version"] > 20200000
    assert (tmp_path / "run/simulate/logs/T0.640/conf-00001/run-002.log").is_file()
    assert not (tmp_path / "run/simulate/work/T0.640/conf-00001").exists()

    mtime = os.stat(path).st_mtime_ns
    assert run_configuration(run_dir, 1) == path  # finished: skipped
    assert os.stat(path).st_mtime_ns == mtime

    # the potential form is recorded once per trajectory, and a run directory never mixes forms
    assert traj.attrs["potential_form"] == "analytic" and h5md.read_parameters(path)["potential_form"] == "analytic"
    import h5py

    with h5py.File(path, "r+") as f:  # as if configuration 1 had been simulated on a GPU node with the table
        f["parameters"].attrs["potential_form"] = "tabulated"
    with pytest.raises(LammpsError, match="made with the tabulated potential, but this node would use the analytic"):
        run_configuration(run_dir, 0)
    assert not trajectory_path(run_dir, configuration_tasks(cfg)[0]).exists()


@pytest.mark.lammps
def test_resume_inside_a_configuration_reuses_finished_runs(need_lammps, tmp_path, monkeypatch):
    from hpc_botan.simulate import stage

    monkeypatch.setattr(stage.shutil, "rmtree", lambda path: None)  # keep the work directory
    reference = h5md.read_configuration(run_configuration(prepare_run("quick", tmp_path / "a", TINY), 0))
    done_work = tmp_path / "a/simulate/work/T0.640/conf-00000"

    # the state a job killed after its first run leaves behind: prepared data and run 0
    run_dir = prepare_run("quick", tmp_path / "b", TINY)
    work = tmp_path / "b/simulate/work/T0.640/conf-00000"
    work.mkdir(parents=True)
    (work / "prepared.data").write_bytes((done_work / "prepared.data").read_bytes())
    marker = np.full((3, 200, 3), 123.0)  # run 0 must be taken from here, not recomputed
    np.save(work / "run-000.npy", marker)

    resumed = h5md.read_configuration(run_configuration(run_dir, 0))
    np.testing.assert_array_equal(resumed.positions[0, 1:], marker)
    np.testing.assert_array_equal(resumed.positions[1:], reference.positions[1:])
    np.testing.assert_array_equal(resumed.positions[0, 0], reference.positions[0, 0])


@pytest.mark.lammps
def test_killed_simulate_resumes_to_the_same_result(need_lammps, tmp_path):
    """Kill 'hpc-botan simulate' midway, re-run it: only missing configurations are redone and
    the files equal those of an uninterrupted run with the same seeds."""
    tiny = [o for o in TINY if not o.startswith("simulation.n_configurations")]
    tiny += ["simulation.n_configurations=4", "simulation.n_train=2"]
    sets = [a for o in tiny for a in ("--set", o)]
    cmd = [sys.executable, "-m", "hpc_botan", "-q", "simulate", "quick", "--executor", "debug", *sets]

    clean = subprocess.run(cmd + ["--out", str(tmp_path / "clean")], capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    first = out / "simulate/T0.640/conf-00000.h5"
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in (out / "simulate/T0.640").glob("*.h5"))
    assert "conf-00000.h5" in done_before and len(done_before) < 4, done_before
    mtimes = {n: os.stat(out / "simulate/T0.640" / n).st_mtime_ns for n in done_before}

    again = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    for name, mtime in mtimes.items():  # finished files were not redone
        assert os.stat(out / "simulate/T0.640" / name).st_mtime_ns == mtime
    for k in range(4):
        a = h5md.read_configuration(tmp_path / f"clean/simulate/T0.640/conf-{k:05d}.h5")
        b = h5md.read_configuration(out / f"simulate/T0.640/conf-{k:05d}.h5")
        np.testing.assert_array_equal(a.positions, b.positions)
    assert not list(out.rglob("*.tmp"))


@pytest.mark.lammps
def test_the_potential_form_is_a_setting(need_lammps, tmp_path):
    """simulation.potential reaches LAMMPS: the original KA form runs lj/cut with the energy shift."""
    run_dir = prepare_run("quick", tmp_path / "run", TINY + ["simulation.potential=truncated_shifted"])
    run_configuration(run_dir, 0)
    log = (tmp_path / "run/simulate/logs/T0.640/conf-00000/run-000.log").read_text()
    assert "pair_style lj/cut 2.5" in log and "pair_modify shift yes" in log and "lj/smooth/linear" not in log


#: runs of 2 x 10^4 steps with a restart every 2000: long enough to stop one in its middle
LONG_RUNS = [o for o in TINY if not o.startswith("simulation.time_points")] + [
    "simulation.time_points={0.64: [0.5, 5, 20]}", "simulation.restart_every_steps=2000"]


def _simulate_task_command(out):
    sets = [a for o in LONG_RUNS for a in ("--set", o)]
    return [sys.executable, "-m", "hpc_botan", "simulate", "quick", "--task", "0", "--out", str(out), *sets]


def _wait_for(path, proc, timeout=300):
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert path.exists(), f"{path} never appeared (exit code {proc.poll()})"


@pytest.mark.lammps
@pytest.mark.parametrize("how", ["SIGKILL", "SIGUSR2"])
def test_simulate_task_stopped_in_mid_run_continues_from_its_restart(need_lammps, tmp_path, how):
    """A task killed (SIGKILL: a node failure, the time limit's kill) or signalled (SIGUSR2: Slurm's
    warning before the time limit) inside its second LAMMPS run continues from that run's last restart,
    and its trajectories equal an uninterrupted task's bit for bit."""
    clean = subprocess.run(_simulate_task_command(tmp_path / "clean"), capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr

    out = tmp_path / "stopped"
    work = out / "simulate/work/T0.640/conf-00000"
    proc = subprocess.Popen(_simulate_task_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _wait_for(work / "run-001.restart.previous", proc)   # run 1 is at step 4000 or later of its 20000
    if how == "SIGKILL":
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    else:
        os.kill(proc.pid, signal.SIGUSR2)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err   # the CLI's code for an error that is not a bug
        last = err.strip().splitlines()[-1]
        assert "stopped on request" in last and "Traceback" not in err, err
    assert (work / "run-000.npy").is_file() and not (work / "run-001.npy").exists()
    assert not (out / "simulate/T0.640/conf-00000.h5").exists()

    again = subprocess.run(_simulate_task_command(out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "run-001: continuing from its restart" in again.stderr
    a = h5md.read_configuration(tmp_path / "clean/simulate/T0.640/conf-00000.h5")
    b = h5md.read_configuration(out / "simulate/T0.640/conf-00000.h5")
    np.testing.assert_array_equal(a.positions, b.positions)
    assert not work.exists()   # restarts and stop file went with the work folder
