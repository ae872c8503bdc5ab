"""An in-process LAMMPS run leaves the process's OpenMP and torch thread counts as they were."""
import os
import subprocess
import sys
import textwrap

import pytest

from hpc_botan.config import load_config
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, probe_capabilities, run_batch
from hpc_botan.simulate.openmp_threads import default_openmp_threads
from hpc_botan.simulate.stage import find_inputs_dir

pytestmark = pytest.mark.lammps

OPENMP_ONE_THREAD = ["-sf", "omp", "-pk", "omp", "1"]


def _tiny_prepare_job(tmp_path):
    inputs = find_inputs_dir(load_config("quick"))
    return LammpsJob(str(inputs / "prepare.in"),
                     {"potential": [str(inputs / "ka_potential.lmp")], "N": ["100"], "n_a": ["80"],
                      "n_melt": ["50"], "n_quench": ["50"], "n_equil": ["50"], "seed": ["3"],
                      "out": [str(tmp_path / "prep.data")], "thermo_every": ["50"]},
                     str(tmp_path / "prepare.log"))


def test_torch_keeps_its_threads_after_an_in_process_run(need_lammps, tmp_path):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        probe_capabilities.cache_clear()
        probe_capabilities()
        assert torch.get_num_threads() == 2
        run_batch(Batch([_tiny_prepare_job(tmp_path)], OPENMP_ONE_THREAD))
        assert (tmp_path / "prep.data").is_file()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_torch_imported_after_a_run_gets_the_default_threads(need_lammps, tmp_path):
    """LAMMPS' OpenMP runtime serves libraries loaded later: torch must still start with its default."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from hpc_botan.simulate.lammps_runner import Batch, run_batch
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_openmp_threads import OPENMP_ONE_THREAD, _tiny_prepare_job
        run_batch(Batch([_tiny_prepare_job(Path({str(tmp_path)!r}))], OPENMP_ONE_THREAD))
        assert "torch" not in sys.modules
        import torch
        print(torch.get_num_threads())
    """)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    expected = len(os.sched_getaffinity(0))
    assert int(proc.stdout.split()[-1]) == expected


def test_default_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")
    assert default_openmp_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert default_openmp_threads() == len(os.sched_getaffinity(0))
