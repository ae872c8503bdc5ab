import h5py
import numpy as np
import pytest

from hpc_botan.errors import UserError
from hpc_botan.io import h5md


def _traj(n_runs=2, n_frames=3, n=5):
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 3, size=(n_runs, n_frames, n, 3))
    pos[:, 0] = pos[0, 0]
    return h5md.ConfigurationTrajectories(
        species=np.array([0, 0, 0, 1, 1], dtype=np.int8)[:n], ids=np.arange(1, n + 1), box=np.array([3.0, 3.0, 3.0]),
        steps=np.arange(n_frames) * 10, times=np.arange(n_frames) * 0.01, positions=pos,
        attrs={"temperature": 0.64, "config_yaml": "simulation: {}\n"}, run_seeds=np.array([11, 12][:n_runs]))


def test_round_trip(tmp_path):
    traj = _traj()
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, traj)
    back = h5md.read_configuration(path)
    np.testing.assert_array_equal(back.positions, traj.positions)
    np.testing.assert_array_equal(back.species, traj.species)
    np.testing.assert_array_equal(back.run_seeds, traj.run_seeds)
    assert back.attrs["temperature"] == 0.64
    assert h5md.is_complete(path, n_runs=2, n_atoms=5)
    assert not h5md.is_complete(path, n_runs=3)
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]  # no temporary left behind


def test_layout_follows_h5md(tmp_path):
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, _traj())
    with h5py.File(path) as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "hpc_botan"
        assert "name" in f["h5md/author"].attrs
        run = f["particles/run_001"]
        assert run["box"].attrs["dimension"] == 3
        assert [b.decode() for b in run["box"].attrs["boundary"]] == ["periodic"] * 3
        assert run["box/edges"].shape == (3,)
        for name in ("step", "time", "value"):
            assert name in run["position"]
        assert run["position/value"].shape == (3, 5, 3)
        # species is stored once and hard-linked into every run group
        assert f["particles/run_000/species"].id == f["particles/run_001/species"].id


def test_failed_write_leaves_the_old_file_alone(tmp_path):
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, _traj())
    good = path.read_bytes()
    bad = _traj()
    bad.attrs = {"unstorable": object()}
    with pytest.raises(TypeError):
        h5md.write_configuration(path, bad)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.h5"]


def test_truncated_and_foreign_files_are_not_complete(tmp_path):
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, _traj())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert not h5md.is_complete(path)
    with pytest.raises(UserError, match="not a readable hpc_botan H5MD"):
        h5md.read_configuration(path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    assert not h5md.is_complete(other)
    with pytest.raises(UserError, match="incomplete"):
        h5md.read_configuration(other)


def test_a_changed_dataset_fails_its_checksum(tmp_path):
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, _traj())
    with h5py.File(path, "r") as f:
        assert "crc32" in f["particles/run_000/position/value"].attrs
    with h5py.File(path, "r+") as f:
        f["particles/run_001/position/value"][1, 0, 0] += 1e-3
    with pytest.raises(UserError, match="run_001/position/value does not match the checksum"):
        h5md.read_configuration(path)
