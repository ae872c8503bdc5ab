"""Trajectory files: round trip, H5MD layout (what MDAnalysis and znh5md need), the previous layout, checksums."""
import h5py
import numpy as np
import pytest

from hpc_botan.errors import UserError
from hpc_botan.io import h5md
from hpc_botan.io.durable import crc32
from hpc_botan.io.structures import read_structures


def _traj(n_runs=2, n_frames=3, n=5, species=None):
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 3, size=(n_runs, n_frames, n, 3))
    pos[:, 0] = pos[0, 0]
    return h5md.ConfigurationTrajectories(
        species=np.array([0, 0, 0, 1, 1], dtype=np.int8)[:n] if species is None else species,
        ids=np.arange(1, n + 1), box=np.array([3.0, 3.0, 3.5]), steps=np.arange(n_frames) * 10,
        times=np.arange(n_frames) * 0.01, positions=pos,
        attrs={"temperature": 0.64, "config_yaml": "simulation: {}\n"}, run_seeds=np.arange(11, 11 + n_runs))


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
    traj = _traj()
    h5md.write_configuration(path, traj)
    with h5py.File(path) as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "hpc_botan"
        assert "name" in f["h5md/author"].attrs
        run = f["particles/run_001"]
        assert run["box"].attrs["dimension"] == 3
        assert [b.decode() for b in run["box"].attrs["boundary"]] == ["periodic"] * 3
        for name in ("step", "time", "value"):
            assert name in run["position"]
        assert run["position/value"].shape == (3, 5, 3)
        # box, species and id are time-dependent elements (what MDAnalysis and znh5md read) ...
        np.testing.assert_array_equal(run["box/edges/value"][()], np.tile(traj.box, (3, 1)))
        np.testing.assert_array_equal(run["species/value"][()], np.tile(traj.species, (3, 1)))
        np.testing.assert_array_equal(run["id/value"][()], np.tile(traj.ids, (3, 1)))
        assert h5py.check_enum_dtype(run["species/value"].dtype) == {"A": 0, "B": 1}
        # ... sampled with the positions: step and time are hard links to position's, shared by every run
        step = f["particles/run_000/position/step"]
        for element in ("position", "box/edges", "species", "id"):
            assert run[f"{element}/step"] == step and run[f"{element}/time"] == f["particles/run_000/position/time"]
        # box, species and id are stored once and hard-linked into every run group
        for name in ("box", "species", "id"):
            assert f[f"particles/run_000/{name}"] == f[f"particles/run_001/{name}"]
        # no H5MD 'unit' attribute (MDAnalysis refuses units it does not know); the reduced unit said instead
        assert run["position/value"].attrs["reduced_unit"] == "sigma" and run["position/time"].attrs["reduced_unit"] \
            == "tau" and run["box/edges/value"].attrs["reduced_unit"] == "sigma"
        assert not [name for name, obj in _items(f) if "unit" in obj.attrs]
        assert all("crc32" in obj.attrs for name, obj in _items(f) if isinstance(obj, h5py.Dataset)
                   and not name.startswith("parameters"))


def _items(f):
    found = []
    f.visititems(lambda name, obj: found.append((name, obj)))
    return found


def test_repeated_rows_cost_little_on_disk(tmp_path):
    """Box, species and id in every frame, stored once per file and compressed: a few % over the positions."""
    traj = _traj(n_runs=3, n_frames=40, n=2000, species=(np.arange(2000) % 5 == 0).astype(np.int8))
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, traj)
    assert path.stat().st_size < 1.03 * traj.positions.nbytes + 200_000


def write_previous_layout(path, traj):
    """A trajectory file as hpc_botan wrote them before box, species and id became time-dependent
    (plain datasets box/edges (3,), species (N,), id (N,), hard-linked into every run)."""
    with h5py.File(path, "w") as f:
        f.create_group("h5md").attrs["version"] = np.array([1, 1], dtype=np.int32)
        params = f.create_group("parameters")
        for key, value in traj.attrs.items():
            params.attrs[key] = value
        params.create_dataset("run_seeds", data=traj.run_seeds)

        def checked(group, name, data, **kwargs):
            group.create_dataset(name, data=data, **kwargs).attrs["crc32"] = crc32(data)
            return group[name]

        shared = None
        for r in range(traj.positions.shape[0]):
            g = f.create_group(f"particles/run_{r:03d}")
            box = g.create_group("box")
            box.attrs["dimension"] = np.int32(3)
            box.attrs["boundary"] = np.array([b"periodic"] * 3)
            checked(box, "edges", traj.box.astype(np.float64))
            if shared is None:
                shared = checked(g, "species", traj.species.astype(np.int8)), checked(g, "id", traj.ids)
            else:
                g["species"], g["id"] = shared
            checked(g, "position/step", traj.steps)
            checked(g, "position/time", traj.times)
            checked(g, "position/value", traj.positions[r])
        f.attrs["hpc_botan_complete"] = 1


def test_files_of_the_previous_layout_are_still_read(tmp_path):
    traj = _traj()
    path = tmp_path / "old.h5"
    write_previous_layout(path, traj)
    back = h5md.read_configuration(path)
    for name in ("species", "ids", "box", "steps", "times", "positions", "run_seeds"):
        np.testing.assert_array_equal(getattr(back, name), getattr(traj, name))
    assert back.species.dtype == np.int8 and back.attrs["temperature"] == 0.64
    assert h5md.is_complete(path, n_runs=2, n_atoms=5) and not h5md.is_complete(path, n_atoms=4)
    assert h5md.read_parameters(path)["temperature"] == 0.64
    assert h5md.read_provenance(path, ["temperature", "run_seeds"]) == {"temperature": "0.64", "run_seeds": "[11 12]"}
    (s,) = read_structures(path)
    np.testing.assert_array_equal(s.species, traj.species)
    np.testing.assert_allclose(s.positions, traj.positions[0, 0])
    with h5py.File(path, "r+") as f:   # its checksums are checked too
        f["particles/run_000/species"][0] = 1
    with pytest.raises(UserError, match="run_000/species does not match the checksum"):
        h5md.read_configuration(path)


def test_new_and_previous_layouts_read_the_same(tmp_path):
    traj = _traj()
    h5md.write_configuration(tmp_path / "new.h5", traj)
    write_previous_layout(tmp_path / "old.h5", traj)
    new, old = h5md.read_configuration(tmp_path / "new.h5"), h5md.read_configuration(tmp_path / "old.h5")
    for name in ("species", "ids", "box", "steps", "times", "positions", "run_seeds"):
        a, b = getattr(new, name), getattr(old, name)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and a.dtype.metadata is None   # no enum dtype leaks into the targets stage


def test_species_that_change_in_time_are_refused(tmp_path):
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, _traj())
    with h5py.File(path, "r+") as f:
        value = f["particles/run_000/species/value"]
        changed = value[()]
        changed[2, 0] = 1
        del f["particles/run_000/species/value"]
        f["particles/run_000/species"].create_dataset("value", data=changed).attrs["crc32"] = crc32(changed)
    with pytest.raises(UserError, match="species/value is not the same in every frame"):
        h5md.read_configuration(path)


def test_extract_run_writes_one_run_alone(tmp_path):
    traj = _traj(n_runs=3)
    path = tmp_path / "c.h5"
    h5md.write_configuration(path, traj)
    out = h5md.extract_run(path, 2, tmp_path / "run2.h5")
    with h5py.File(out) as f:
        assert list(f["particles"]) == ["run_002"] and f["parameters"].attrs["extracted_run"] == 2
    one = h5md.read_configuration(out)
    np.testing.assert_array_equal(one.positions, traj.positions[2:3])
    np.testing.assert_array_equal(one.species, traj.species)
    np.testing.assert_array_equal(one.run_seeds, traj.run_seeds[2:3])
    with pytest.raises(UserError, match="no run 3; the file has runs 0 … 2"):
        h5md.extract_run(path, 3, tmp_path / "run3.h5")
    assert not (tmp_path / "run3.h5").exists()
    before = path.read_bytes()
    for existing in (path, out):      # never written over: the trajectory itself, an earlier extract
        with pytest.raises(UserError, match="exists; not overwritten"):
            h5md.extract_run(path, 0, existing)
    assert path.read_bytes() == before


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
