"""hpc_botan's trajectory files opened by the H5MD readers users already have: MDAnalysis and znh5md.

The calls are the ones README ("Files") documents; positions, box, species and times must come back
as the package wrote them, for run_000 and for another run.
"""
from __future__ import annotations

import warnings

import h5py
import MDAnalysis as mda
import numpy as np
import pytest
import znh5md

from hpc_botan.io import h5md

N_RUNS, N_FRAMES, N = 3, 5, 40


@pytest.fixture
def trajectory(tmp_path):
    """A trajectory file as the simulate stage writes it (unwrapped positions, a non-cubic box)."""
    rng = np.random.default_rng(7)
    box = np.array([4.0, 4.5, 5.0])
    positions = rng.uniform(-2.0, 7.0, (N_RUNS, N_FRAMES, N, 3))
    positions[:, 0] = rng.uniform(0, 1, (N, 3)) * box
    steps = np.array([0, 10, 100, 1000, 10000])
    traj = h5md.ConfigurationTrajectories(
        species=(np.arange(N) % 5 == 0).astype(np.int8), ids=np.arange(1, N + 1), box=box, steps=steps,
        times=steps * 0.005, positions=positions, attrs={"temperature": 0.44}, run_seeds=np.arange(N_RUNS) + 100)
    path = tmp_path / "conf-00000.h5"
    h5md.write_configuration(path, traj)
    return path, traj


def _universe(path):
    """README's MDAnalysis call: the number of particles for the minimal topology, numbers as stored (σ, τ)."""
    with h5py.File(path, "r") as f:
        n_atoms = f["particles"][next(iter(f["particles"]))]["position/value"].shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # MDAnalysis warns that a minimal topology has no masses
        return mda.Universe(str(path), format="H5MD", topology_format="MINIMAL", n_atoms=n_atoms,
                            convert_units=False)


def _check_mdanalysis(u, traj, run):
    assert u.trajectory.n_frames == N_FRAMES and len(u.atoms) == N
    for k, ts in enumerate(u.trajectory):
        # MDAnalysis holds float32: the file's float64 positions, rounded once
        np.testing.assert_array_equal(ts.positions, traj.positions[run, k].astype(np.float32))
        np.testing.assert_allclose(ts.dimensions, [*traj.box, 90.0, 90.0, 90.0], rtol=1e-7)
        assert ts.time == pytest.approx(traj.times[k]) and ts.data["step"] == traj.steps[k]


def test_mdanalysis_reads_run_000(trajectory):
    path, traj = trajectory
    _check_mdanalysis(_universe(path), traj, 0)


def test_mdanalysis_reads_another_run_extracted(trajectory, tmp_path):
    path, traj = trajectory
    u = _universe(h5md.extract_run(path, 2, tmp_path / "run2.h5"))
    _check_mdanalysis(u, traj, 2)


def test_mdanalysis_refuses_to_convert_reduced_units(trajectory):
    """Why README says convert_units=False: without units MDAnalysis refuses to guess them."""
    path, _ = trajectory
    with pytest.raises(ValueError, match="convert_units"):
        mda.Universe(str(path), format="H5MD", topology_format="MINIMAL", n_atoms=N)


@pytest.mark.parametrize("run", [0, 2])
def test_znh5md_reads_any_run(trajectory, run):
    path, traj = trajectory
    frames = znh5md.IO(str(path), particles_group=h5md.run_group(run))[:]
    assert len(frames) == N_FRAMES
    for k, atoms in enumerate(frames):
        np.testing.assert_array_equal(atoms.positions, traj.positions[run, k])
        np.testing.assert_array_equal(atoms.cell.array, np.diag(traj.box))
        np.testing.assert_array_equal(atoms.numbers, traj.species)   # species as ASE numbers: A = 0, B = 1
        np.testing.assert_array_equal(atoms.arrays["id"], traj.ids)
        assert atoms.pbc.all()


def test_znh5md_opens_the_first_group_by_default(trajectory):
    path, traj = trajectory
    atoms = znh5md.IO(str(path))[1]
    np.testing.assert_array_equal(atoms.positions, traj.positions[0, 1])
