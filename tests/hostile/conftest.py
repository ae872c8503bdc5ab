"""Fixtures of the hostile-input tests: a tiny trained run, its exported model and a structure file.

Every test here plays a user who hands the package something it did not make (a model file from
someone else, a symlink, a full disk, a read-only directory, a broken input) and checks the
promise of the brief: a one-line error naming the file, no code run, nothing already written lost.
"""
from __future__ import annotations

import pytest

from hpc_botan.cli import main
from hpc_botan.io.shards import read_configuration
from tests.predict.test_command import write_data
from tests.train.conftest import TINY_TRAIN, import_synthetic


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory):
    """A synthetic run (T = 0.44, 256 particles) with one BOTAN and one NT-GNN replica, trained a few steps."""
    run = import_synthetic(tmp_path_factory.mktemp("hostile"), n_configurations=4)
    sets = TINY_TRAIN + ["train.n_replicas=1", "train.ntgnn.enabled=true", "train.ntgnn.epochs=2",
                         "train.ntgnn.batch_graphs=1"]
    assert main(["-q", "train", str(run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    return run


@pytest.fixture(scope="session")
def hostile_model(hostile_run, tmp_path_factory):
    """The exported model of :func:`hostile_run` (never modified: tests copy it)."""
    out = tmp_path_factory.mktemp("hostile-model") / "model.pt2"
    assert main(["-q", "export", str(hostile_run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def structure_arrays(hostile_run):
    """Configuration 0 of the run: positions (N, 3), species (N,), box (3,)."""
    c = read_configuration(hostile_run / "targets" / "index.h5", 0)
    return c["positions0"], c["species"], c["box"]


@pytest.fixture(scope="session")
def structure_file(structure_arrays, tmp_path_factory):
    """Configuration 0 of the run as a LAMMPS data file."""
    return write_data(tmp_path_factory.mktemp("hostile-structure") / "s.data", *structure_arrays)


def one_line_error(res) -> str:
    """The error of a failed ``hpc-botan`` process, checked to be one line without a traceback."""
    assert res.returncode not in (0, None), res.stdout
    err = res.stderr.strip()
    assert "Traceback" not in err and err.count("\n") == 0 and err.startswith("hpc-botan: error: "), err
    return err
