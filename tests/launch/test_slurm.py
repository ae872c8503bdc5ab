"""Real Slurm: a job array through submitit and through the plain sbatch script.

Needs a reachable Slurm cluster (in CI: the single-node cluster that .ci/start_slurm.sh
starts).  Skips with the reason elsewhere; fails instead of skipping under .ci/run.
"""
import os
import subprocess
import sys
from pathlib import Path

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
