"""Real Slurm: a job array through submitit and through the plain sbatch script.

Needs a reachable Slurm cluster (in CI: the single-node cluster that .ci/start_slurm.sh
starts).  Skips with the reason elsewhere; fails instead of skipping under .ci/run.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpc_botan.io import h5md
from tests.conftest import REPO, TINY, run_cli

pytestmark = [pytest.mark.slurm, pytest.mark.lammps, pytest.mark.slow]

SETS = [a for o in TINY for a in ("--set", o)]


def _check_trajectories(run: Path, n: int) -> None:
    files = sorted((run / "simulate" / "T0.640").glob("conf-*.h5"))
    assert [f.name for f in files] == [f"conf-{k:05d}.h5" for k in range(n)]
    for f in files:
        traj = h5md.read_configuration(f)
        assert traj.positions.shape == (3, 4, 200, 3)


def test_simulate_through_submitit_on_slurm(need_slurm, need_lammps, tmp_path):
    run = tmp_path / "run"
    res = run_cli("simulate", "quick", "--out", str(run), "--executor", "slurm", *SETS,
                  "--set", "launch.slurm.time_min=10", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "submitted Slurm job array" in res.stderr
    _check_trajectories(run, 2)
    # the jobs really ran under Slurm
    logs = "".join(p.read_text() for p in (run / "simulate" / "submitit").rglob("*_log.err"))
    assert "LAMMPS accelerator" in logs
    again = run_cli("simulate", "quick", "--out", str(run), "--executor", "slurm", *SETS,
                    "--set", "launch.slurm.time_min=10")
    assert again.returncode == 0 and "2 finished, 0 to do" in again.stderr
    assert "submitted Slurm job array" not in again.stderr


def test_plain_sbatch_job_array(need_slurm, need_lammps, tmp_path):
    run = tmp_path / "run"
    count = run_cli("simulate", "quick", "--out", str(run), *SETS, "--count")
    assert count.returncode == 0, count.stderr
    n = int(count.stdout.strip())
    assert n == 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["sbatch", "--wait", f"--array=0-{n - 1}", "--time=10", str(REPO / "slurm" / "simulate_array.sbatch"),
         str(run)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    outputs = "\n".join(p.read_text() for p in tmp_path.glob("hpc-botan-simulate-*.out"))
    assert res.returncode == 0, res.stderr + outputs
    _check_trajectories(run, 2)


def test_a_refused_submission_is_one_line(need_slurm, tmp_path):
    res = run_cli("simulate", "quick", "--out", str(tmp_path / "run"), "--executor", "slurm", *SETS,
                  "--set", "launch.slurm.partition=no_such_partition")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("hpc-botan: error: sbatch refused the job array")
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "run").rglob("*.h5"))


def test_plain_sbatch_chunk_with_an_offset(need_slurm, need_lammps, tmp_path):
    """The second chunk of a split array: index 0 with offset 1 is configuration 1."""
    run = tmp_path / "run"
    assert run_cli("simulate", "quick", "--out", str(run), *SETS, "--count").returncode == 0
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["sbatch", "--wait", "--array=0-0", "--time=10", str(REPO / "slurm" / "simulate_array.sbatch"),
                          str(run), "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert [p.name for p in (run / "simulate" / "T0.640").glob("conf-*.h5")] == ["conf-00001.h5"]


def test_plain_sbatch_task_requeues_itself_near_its_time_limit(need_slurm, need_lammps, tmp_path):
    """Slurm's warning to the batch shell (here sent by hand: scancel --batch --signal=USR2) stops the
    run in progress; the task requeues itself and its second attempt continues from the restarts, to
    the trajectories of an uninterrupted run."""
    from tests.simulate.test_stage import LONG_RUNS

    sets = [a for o in LONG_RUNS for a in ("--set", o)]
    clean, run = tmp_path / "clean", tmp_path / "run"
    assert run_cli("simulate", "quick", "--out", str(clean), *sets, "--task", "0").returncode == 0
    assert run_cli("simulate", "quick", "--out", str(run), *sets, "--count").returncode == 0
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    job = subprocess.run(["sbatch", "--parsable", "--array=0-0", "--time=10",
                          str(REPO / "slurm" / "simulate_array.sbatch"), str(run)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip().split(";")[0]
    work = run / "simulate/work/T0.640/conf-00000"
    deadline = time.time() + 300
    while not (work / "run-001.restart.previous").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (work / "run-001.restart.previous").exists()
    subprocess.run(["scancel", "--batch", "--signal=USR2", f"{job_id}_0"], check=True)
    out = run / "simulate/T0.640/conf-00000.h5"
    held_since = None
    while not out.exists() and time.time() < deadline:
        # Slurm holds a requeued job two minutes; nothing else waits on this cluster: 10 s are enough for
        # the previous attempt to be torn down (tests/pipeline/test_rehearsal.py)
        pending = subprocess.run(["squeue", "-h", "-r", "-t", "PD", "-o", "%i %r", "-j", job_id], capture_output=True,
                                 text=True).stdout.split()
        held_since = (held_since or time.time()) if "BeginTime" in pending else None
        if held_since and time.time() - held_since > 10:
            subprocess.run(["scontrol", "update", f"jobid={job_id}_0", "StartTime=now"], capture_output=True)
        time.sleep(1)
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip():
        time.sleep(1)
    log = "\n".join(p.read_text() for p in tmp_path.glob("hpc-botan-simulate-*.out"))
    assert "stopped before the time limit; requeued" in log and "run-001: continuing from its restart" in log, log
    a = h5md.read_configuration(clean / "simulate/T0.640/conf-00000.h5")
    np.testing.assert_array_equal(a.positions, h5md.read_configuration(out).positions)
