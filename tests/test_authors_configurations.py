"""benchmarks/authors_configurations.py: the bookkeeping of the decisive test (the LAMMPS runs take hours)."""
import importlib.util
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("authors_configurations",
                                                  REPO / "benchmarks" / "authors_configurations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_frames_end_at_the_published_tau_alpha(script):
    steps = script.frame_steps(1_000_000)
    assert steps == [1_300, 13_000, 130_000, 412_000, 1_000_000, 1_300_000, 2_000_000, 3_000_000, 4_000_000,
                     4_120_000]


def test_a_directory_keeps_the_potential_of_its_runs(script, tmp_path):
    out = tmp_path / "check"
    assert script.recorded_potential(out) is None
    script.claim_potential(out, "shifted_force_global_cutoff")
    assert script.recorded_potential(out) == "shifted_force_global_cutoff"
    script.claim_potential(out, "shifted_force_global_cutoff")  # the same form: resumes
    with pytest.raises(SystemExit, match="its runs use --potential shifted_force_global_cutoff, not shifted_force"):
        script.claim_potential(out, "shifted_force")
    assert (out / "potential.txt").read_text() == "shifted_force_global_cutoff\n"
    # a directory from before the option holds shifted_force runs
    old = tmp_path / "old"
    (old / "config01" / "run00").mkdir(parents=True)
    assert script.recorded_potential(old) == "shifted_force"
    with pytest.raises(SystemExit, match="not truncated_shifted"):
        script.claim_potential(old, "truncated_shifted")


def test_each_potential_has_its_lammps_include(script):
    for name in script.ka.POTENTIALS:
        assert (REPO / "lammps_inputs" / script.ka.potential_file(name)).is_file()
