"""``hpc-botan doctor``: what this machine offers each stage, exit 1 when a configured stage cannot run."""
import os

import pytest

from tests.conftest import run_cli


@pytest.mark.lammps
def test_this_machine_can_run_the_quick_preset(need_lammps, need_mpirun):
    res = run_cli("doctor", "quick")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "LAMMPS: version" in out and "present: lj/smooth/linear" in out
    assert "simulate stage: accelerator" in out and "mpi4py: MPICH" in out
    assert "train stage: device cpu, backend gloo" in out or "backend nccl" in out
    assert out.strip().endswith("every configured stage can run here")


def test_a_missing_lammps_fails_a_simulated_run_but_not_an_imported_one(tmp_path):
    broken = tmp_path / "site" / "lammps"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no LAMMPS on this node')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    res = run_cli("doctor", "quick", env=env)
    assert res.returncode == 1
    assert "[MISSING] LAMMPS: the LAMMPS Python module could not be imported (no LAMMPS on this node)" in res.stdout
    assert "doctor: 1 thing(s) a configured stage needs are missing: LAMMPS" in res.stderr
    imported = run_cli("doctor", "quick", "--set", "source.format=pyg-botan", "--set", "source.path=/data", env=env)
    assert imported.returncode == 0 and "[absent ] LAMMPS" in imported.stdout


def test_slurm_is_needed_only_with_the_slurm_executor(tmp_path):
    env = {"PATH": str(tmp_path)}  # an empty PATH: no sbatch (Python and mpirun are found beside the venv)
    res = run_cli("doctor", "quick", "--executor", "slurm", env=env)
    assert res.returncode == 1 and "[MISSING] Slurm: no sbatch on PATH" in res.stdout, res.stdout
    local = run_cli("doctor", "quick", env=env)
    assert "[absent ] Slurm: no sbatch on PATH" in local.stdout
