"""Restarts of the input scripts: a run stopped and resumed records what an uninterrupted run records.

Both scripts save their state every ``restart_every`` steps and read it straight back, so the
uninterrupted run and the resumed one go through the same restart files: equal bit for bit.
"""
import shutil
import threading
import time

import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.io.lammps_restart import is_complete_restart, previous_path, remove_restarts, usable_restart
from hpc_botan.io.lammps_text import read_data_file, write_data_file
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, run_batch
from hpc_botan.simulate.stage import find_inputs_dir
from hpc_botan.simulate.stop_request import RunStopped


def test_data_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    box = np.array([4.0, 4.5, 5.0])
    species = (rng.uniform(size=20) < 0.3).astype(int)
    positions = rng.uniform(size=(20, 3)) * box
    write_data_file(tmp_path / "c.data", species, positions, box)
    ids, got_species, got_positions, images, bounds = read_data_file(tmp_path / "c.data")
    np.testing.assert_array_equal(ids, np.arange(1, 21))
    np.testing.assert_array_equal(got_species, species)
    np.testing.assert_array_equal(got_positions, positions)   # %.17g: exact
    assert not images.any() and np.array_equal(bounds[:, 1] - bounds[:, 0], box)
    with pytest.raises(ValueError):
        write_data_file(tmp_path / "bad.data", species, positions[:5], box)


@pytest.fixture(scope="module")
def inputs():
    return find_inputs_dir(load_config("quick"))


def _common(inputs):
    return {"potential": [str(inputs / "ka_potential.lmp")], "thermo_every": ["1000"]}


def _prepare(inputs, tmp_path, tag, stop_when=None, **extra):
    """prepare.in for 250 particles (melt 6000, quench 2000, equilibration 6000 steps); the data file."""
    out = tmp_path / f"{tag}.data"
    stop = tmp_path / f"{tag}.stop"
    variables = {**_common(inputs), "N": ["250"], "n_a": ["200"], "n_melt": ["6000"], "n_quench": ["2000"],
                 "n_equil": ["6000"], "seed": ["7"], "out": [str(out)], "restart_every": ["1500"],
                 "restart_file": [str(tmp_path / f"{tag}.restart")], "stop_file": [str(stop)], "stop_check": ["50"],
                 **{k: [v] for k, v in extra.items()}}
    job = LammpsJob(str(inputs / "prepare.in"), variables, str(tmp_path / f"{tag}.log"), stop_file=str(stop))
    with _stopping(stop_when, stop):
        run_batch(Batch([job]))
    return out


class _stopping:
    """Create ``stop`` (as the signal watcher would) once ``when`` exists: a stop in mid-run."""

    def __init__(self, when, stop):
        self.when, self.stop = when, stop

    def __enter__(self):
        if self.when is None:
            return
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.done = False
        self.thread.start()

    def _watch(self):
        while not self.done and not self.when.exists():
            time.sleep(0.005)
        self.stop.touch()

    def __exit__(self, *exc):
        if self.when is not None:
            self.done = True
            self.thread.join()


def _isoconf(inputs, tmp_path, data, tag, frames, stop_when=None, **extra):
    stop = tmp_path / f"{tag}.stop"
    variables = {**_common(inputs), "data": [str(data)], "seed": [extra.pop("seed", "11")], "T": ["0.64"],
                 "frames": [str(f) for f in frames], "dump_prefix": [str(tmp_path / tag)], "stop_file": [str(stop)],
                 "stop_check": ["50"], **{k: [v] for k, v in extra.items()}}
    job = LammpsJob(str(inputs / "isoconf.in"), variables, str(tmp_path / f"{tag}.log"),
                    frames_npy=str(tmp_path / f"{tag}.npy"), n_atoms=250, stop_file=str(stop))
    with _stopping(stop_when, stop):
        run_batch(Batch([job]))
    return np.load(tmp_path / f"{tag}.npy")


@pytest.mark.lammps
def test_stopped_and_resumed_runs_record_the_uninterrupted_frames(need_lammps, inputs, tmp_path):
    data = _prepare(inputs, tmp_path, "prep")
    frames = [100, 2500, 9000, 20000]
    plain = _isoconf(inputs, tmp_path, data, "plain", frames)                        # no restarts at all
    whole = _isoconf(inputs, tmp_path, data, "whole", frames, restart_every="1000")
    assert not list(tmp_path.glob("whole.restart*")), "a finished run keeps no restart files"

    restart = tmp_path / "part.restart"
    with pytest.raises(RunStopped, match="stopped on request"):
        # stopped soon after its frame at step 2500, in the middle of the run, between frames
        _isoconf(inputs, tmp_path, data, "part", frames, restart_every="1000", restart_file=str(restart),
                 stop_when=tmp_path / "part.2500.dump")
    assert is_complete_restart(restart) and not (tmp_path / "part.npy").exists()
    assert (tmp_path / "part.2500.dump").is_file() and not (tmp_path / "part.9000.dump").exists()
    (tmp_path / "part.stop").unlink()
    # the resumed run takes its velocities from the restart, not from a new draw (another seed here)
    resumed = _isoconf(inputs, tmp_path, data, "part", frames, restart_every="1000", restart_file=str(restart),
                       resume="1", resume_from=str(restart), seed="999")
    np.testing.assert_array_equal(resumed, whole)
    # what the periodic read-back buys: without it a run differs from the restarted one in the last bits
    # at once, and the chaotic dynamics make that a visible difference within 10^4 steps
    assert np.abs(plain[0] - whole[0]).max() < 1e-12
    assert np.abs(plain[-1] - whole[-1]).max() > 1e-6


@pytest.mark.lammps
def test_stopped_and_resumed_preparation_writes_the_uninterrupted_structure(need_lammps, inputs, tmp_path):
    whole = _prepare(inputs, tmp_path, "whole")
    part_restart = tmp_path / "part.restart"
    # stop in the melt after its second restart, then resume; the quench ramp and the Nose-Hoover state
    # of each phase carry over
    with pytest.raises(RunStopped):
        _prepare(inputs, tmp_path, "part", stop_when=previous_path(part_restart))
    assert not (tmp_path / "part.data").exists() and is_complete_restart(part_restart)
    (tmp_path / "part.stop").unlink()
    part = _prepare(inputs, tmp_path, "part", resume="1", resume_from=str(part_restart))
    assert whole.read_bytes() == part.read_bytes()


def test_damaged_restart_falls_back_to_the_previous_one(tmp_path):
    good = b"LammpS RestartT" + b"\x01" * 100 + b"LammpS RestartT\0"
    current, previous = tmp_path / "run.restart", previous_path(tmp_path / "run.restart")
    current.write_bytes(good)
    previous.write_bytes(good)
    assert usable_restart(current) == current
    current.write_bytes(good[:-20])                    # cut short: a write that never finished
    assert usable_restart(current) == previous and not current.exists()
    previous.write_bytes(b"\0" * len(good))            # a block of zeros after a crash of the file system
    assert usable_restart(current) is None
    current.symlink_to(tmp_path / "elsewhere")
    assert not is_complete_restart(current)
    remove_restarts(current)
    assert not previous.exists()


@pytest.mark.lammps
def test_the_check_accepts_what_lammps_writes(need_lammps, inputs, tmp_path):
    _prepare(inputs, tmp_path, "p", n_melt="100", n_quench="100", n_equil="100")
    restart = tmp_path / "p.restart"   # the phase ends write one even without periodic restarts
    assert is_complete_restart(restart)
    cut = tmp_path / "cut.restart"
    shutil.copy(restart, cut)
    with open(cut, "r+b") as fh:
        fh.truncate(restart.stat().st_size - 1)
    assert not is_complete_restart(cut)
