"""A run directory tampered with, or named oddly: outputs, locks, symlinks, stray files, spaces and "ü"."""
from __future__ import annotations

import os
import shutil
import socket

import h5py
import pytest

from hpc_botan.errors import UserError
from hpc_botan.io.durable import exclusive_lock
from hpc_botan.pipeline.run import pipeline_lock
from tests.conftest import TINY, run_cli, simulated_run
from tests.hostile.conftest import one_line_error

# ---------------------------------------------------------------------------------------------
# --overwrite never destroys an input, a model or a run's identity


def test_predict_never_overwrites_its_model(hostile_model, structure_file, tmp_path):
    model = tmp_path / "m.pt2"
    shutil.copy(hostile_model, model)
    before = model.read_bytes()
    err = one_line_error(run_cli("-q", "predict", str(model), str(structure_file), "--out", str(model), "--overwrite"))
    assert "is one of the inputs" in err and model.read_bytes() == before
    # nor another model file
    other = tmp_path / "other.pt2"
    shutil.copy(hostile_model, other)
    err = one_line_error(run_cli("-q", "predict", str(model), str(structure_file), "--out", str(other), "--overwrite"))
    assert "is an exported model file" in err and other.read_bytes() == before


@pytest.mark.parametrize("command", ["predict", "export"])
def test_no_output_replaces_a_run_directory_file(command, hostile_run, structure_file):
    config = hostile_run / "config.yaml"
    before = config.read_bytes()
    args = ([str(hostile_run), str(structure_file)] if command == "predict" else [str(hostile_run)])
    err = one_line_error(run_cli("-q", command, *args, "--out", str(config), "--overwrite"))
    assert "a file of the run directory" in err and config.read_bytes() == before
    # nor a lock or any other file under a stage folder
    lock = hostile_run / "pipeline" / ".run.lock"
    err = one_line_error(run_cli("-q", command, *args, "--out", str(lock), "--overwrite"))
    assert "inside the 'pipeline' folder" in err and not lock.exists()
    # the run still works
    assert run_cli("-q", "status", str(hostile_run)).returncode in (0, 3)


def test_a_killed_writers_temporaries_are_removed_by_the_next_predict(hostile_model, structure_file, tmp_path):
    out = tmp_path / "p.h5"
    host = socket.gethostname().replace(".", "_").replace("-", "_")
    dead = tmp_path / f".p.h5.{host}-{2 ** 22 + 12345}.abcd.tmp"     # no such process
    live = tmp_path / f".p.h5.{host}-{os.getpid()}.efgh.tmp"          # a writer that still runs
    other_host = tmp_path / ".p.h5.elsewhere-1.ijkl.tmp"
    for path in (dead, live, other_host):
        path.write_bytes(b"half a file")
    res = run_cli("-q", "predict", str(hostile_model), str(structure_file), "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert not dead.exists() and live.exists() and other_host.exists()
    with h5py.File(out) as f:
        assert f.attrs["format"] == "hpc_botan-predictions-1"


# ---------------------------------------------------------------------------------------------
# locks: never followed, never truncate what they did not create


def test_a_symlinked_train_lock_is_refused_and_its_target_untouched(hostile_run, tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's data\n")
    lock = next((hostile_run / "train").rglob("replica-00")) / ".train.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(victim)
    try:
        err = one_line_error(run_cli("-q", "train", str(hostile_run), "--no-progress"))
        assert "is a symbolic link" in err
    finally:
        lock.unlink()
    assert victim.read_text() == "the user's data\n"


def test_the_pipeline_lock_refuses_a_symlink_a_hard_link_and_a_foreign_file(tmp_path):
    run = tmp_path / "run"
    (run / "pipeline").mkdir(parents=True)
    lock = run / "pipeline" / ".run.lock"
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's data\n")
    lock.symlink_to(victim)
    with pytest.raises(UserError, match="is a symbolic link"):
        with pipeline_lock(run):
            pass
    lock.unlink()
    os.link(victim, lock)
    with pytest.raises(UserError, match="not a regular file with one name"):
        with pipeline_lock(run):
            pass
    lock.unlink()
    lock.write_text("a file the user keeps here\n")
    with pytest.raises(UserError, match="holds other data"):
        with pipeline_lock(run):
            pass
    assert victim.read_text() == "the user's data\n" and lock.read_text() == "a file the user keeps here\n"
    lock.unlink()
    for _ in range(2):   # a lock file of an earlier run is reused
        with pipeline_lock(run):
            assert lock.read_text().startswith(f"host {socket.gethostname()} pid {os.getpid()} since ")


def test_a_lock_on_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / ".lock"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        with exclusive_lock(fifo, "a test"):
            pass


# ---------------------------------------------------------------------------------------------
# the targets stage: stray files and a symlinked .previous-shards


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, need_lammps):
    """A tiny simulated run whose directory has a space and an 'ü' in its name (LAMMPS writes there)."""
    return simulated_run(tmp_path_factory.mktemp("sim") / "my run ü", TINY, 2)


@pytest.mark.lammps
def test_a_run_directory_with_a_space_and_an_umlaut_simulates(simulated):
    trajectories = sorted((simulated / "simulate").rglob("*.h5"))
    assert len(trajectories) == 2


@pytest.mark.lammps
def test_targets_ignore_stray_shard_names_and_refuse_a_symlinked_previous_shards(simulated, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(simulated, run)
    assert run_cli("-q", "targets", str(run)).returncode == 0
    stray = [run / "targets" / "shard-abc.h5", run / "targets" / "shard-00000.bak.h5"]
    for path in stray:
        path.write_bytes(b"a user's copy")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "targets" / ".previous-shards").symlink_to(elsewhere)
    err = one_line_error(run_cli("-q", "targets", str(run)))
    assert ".previous-shards: not a folder that hpc_botan made" in err and list(elsewhere.iterdir()) == []
    (run / "targets" / ".previous-shards").unlink()
    res = run_cli("-q", "targets", str(run))
    assert res.returncode == 0, res.stderr
    assert all(p.read_bytes() == b"a user's copy" for p in stray)
    assert run_cli("-q", "verify", str(run)).returncode == 0
