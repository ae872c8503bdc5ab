"""The structure readers against tiny hand-written files with hand-computed expectations."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from hpc_botan.errors import UserError
from hpc_botan.io.structures import format_of, parse_type_map, read_structures

DATA_FILE = """\
LAMMPS data file written by hand

3 atoms
2 atom types

-1.0 9.0 xlo xhi
0.0 10.0 ylo yhi
2.0 12.0 zlo zhi

Masses

1 1.0
2 1.0

Atoms # atomic

3 2 0.5 1.0 2.5 0 0 0
1 1 -2.0 4.0 13.0 0 0 1
2 1 8.5 -1.0 5.0

Velocities

1 0.0 0.0 0.0
2 0.0 0.0 0.0
3 0.0 0.0 0.0
"""


def test_lammps_data_sorted_by_id_shifted_and_wrapped(tmp_path):
    path = tmp_path / "s.data"
    path.write_text(DATA_FILE)
    (s,) = read_structures(path)
    np.testing.assert_array_equal(s.ids, [1, 2, 3])
    np.testing.assert_array_equal(s.species, [0, 0, 1])
    np.testing.assert_allclose(s.box, [10.0, 10.0, 10.0])
    # id 1: x −2 − (−1) = −1 → 9; y 4; z 13 − 2 = 11 → 1.  id 2: 9.5, −1 → 9, 3.  id 3: 1.5, 1, 0.5
    np.testing.assert_allclose(s.positions, [[9.0, 4.0, 1.0], [9.5, 9.0, 3.0], [1.5, 1.0, 0.5]])
    assert s.positions.dtype == np.float64 and s.species.dtype == np.int8
    assert s.frame == 0 and s.temperature is None and s.source == str(path)


@pytest.mark.parametrize("change, message", [
    (("0.0 10.0 ylo yhi\n", "0.0 10.0 ylo yhi\n0.0 0.0 0.0 xy xz yz\n"), "line 8: expected an orthogonal box"),
    (("Atoms # atomic", "Atoms # full"), "line 15: expected atom style 'atomic'"),
    (("1 1 -2.0 4.0 13.0 0 0 1", "1 1 -2.0 four 13.0 0 0 1"), "line 18: expected an atomic row"),
    (("3 atoms", "4 atoms"), "expected 4 rows in the Atoms section"),
    (("2 1 8.5 -1.0 5.0", "3 1 8.5 -1.0 5.0"), "expected distinct atom ids"),
    (("3 atoms", "three atoms"), "line 3: expected 'N atoms' with an integer N"),
])
def test_lammps_data_mistakes(tmp_path, change, message):
    path = tmp_path / "bad.data"
    path.write_text(DATA_FILE.replace(*change))
    with pytest.raises(UserError, match=message) as exc:
        read_structures(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


DUMP = """\
ITEM: TIMESTEP
0
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS pp pp pp
0.0 4.0
-2.0 2.0
0.0 8.0
ITEM: ATOMS id type xs ys zs
2 2 0.25 0.5 0.125
1 1 0.0 1.25 -0.5
ITEM: TIMESTEP
100
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS pp pp pp
0.0 4.0
-2.0 2.0
0.0 8.0
ITEM: ATOMS id type xu yu zu vx
1 1 5.0 -3.0 1.0 0.1
2 2 1.0 1.0 9.0 0.2
"""


def test_lammps_dump_frames_scaled_and_unwrapped(tmp_path):
    path = tmp_path / "t.lammpstrj"
    path.write_text(DUMP)
    first, second = read_structures(path)
    assert (first.frame, second.frame) == (0, 1)
    np.testing.assert_allclose(first.box, [4.0, 4.0, 8.0])
    np.testing.assert_array_equal(first.ids, [1, 2])
    np.testing.assert_array_equal(first.species, [0, 1])
    # scaled: x = xs·L.  id 1: (0, 1.25·4 = 5 → 1, −0.5·8 = −4 → 4); id 2: (1, 2, 1)
    np.testing.assert_allclose(first.positions, [[0.0, 1.0, 4.0], [1.0, 2.0, 1.0]])
    # unwrapped, minus the lower bound: id 1 (5 → 1, −3 + 2 = −1 → 3, 1); id 2 (1, 3, 9 → 1)
    np.testing.assert_allclose(second.positions, [[1.0, 3.0, 1.0], [1.0, 3.0, 1.0]])


@pytest.mark.parametrize("change, message", [
    (("ITEM: BOX BOUNDS pp pp pp\n0.0 4.0", "ITEM: BOX BOUNDS xy xz yz pp pp pp\n0.0 4.0"),
     "line 5: expected an orthogonal box"),
    (("ITEM: ATOMS id type xs ys zs", "ITEM: ATOMS id type vx vy vz"), "line 9: expected 'ITEM: ATOMS' with position"),
    (("ITEM: ATOMS id type xs ys zs", "ITEM: ATOMS type xs ys zs"), "line 9: expected 'ITEM: ATOMS' with columns id"),
    (("1 1 0.0 1.25 -0.5\n", "1 1 0.0 1.25\n"), "line 11: expected an atom row of 5 columns"),
])
def test_lammps_dump_mistakes(tmp_path, change, message):
    path = tmp_path / "bad.dump"
    path.write_text(DUMP.replace(*change, 1))
    with pytest.raises(UserError, match=message):
        read_structures(path)


def test_lammps_dump_truncated_frame(tmp_path):
    path = tmp_path / "cut.dump"
    path.write_text("\n".join(DUMP.splitlines()[:-1]) + "\n")
    with pytest.raises(UserError, match=r"line 22: expected 2 atom rows after line 20, found the end of the file"):
        read_structures(path)


EXTXYZ = """\
2
Lattice="5.0 0.0 0.0 0.0 6.0 0.0 0.0 0.0 7.0" Properties=species:S:1:pos:R:3:mass:R:1 Temperature=0.44 pbc="T T T"
A 6.0 -1.0 3.5 1.0
B 1.0 2.0 3.0 1.0
2
Lattice="5 0 0 0 6 0 0 0 7" Properties=pos:R:3:species:I:1
0.5 0.5 0.5 2
1.0 1.0 1.0 1
"""


def test_extxyz_frames_species_and_temperature(tmp_path):
    path = tmp_path / "s.extxyz"
    path.write_text(EXTXYZ)
    first, second = read_structures(path)
    np.testing.assert_allclose(first.box, [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(first.species, [0, 1])
    np.testing.assert_allclose(first.positions, [[1.0, 5.0, 3.5], [1.0, 2.0, 3.0]])
    assert first.temperature == pytest.approx(0.44) and second.temperature is None
    np.testing.assert_array_equal(second.species, [1, 0])
    np.testing.assert_allclose(second.positions, [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    assert second.frame == 1


@pytest.mark.parametrize("change, message", [
    (('Lattice="5.0 0.0 0.0 0.0 6.0', 'Lattice="5.0 1.0 0.0 0.0 6.0'), "line 2: expected an orthogonal Lattice"),
    (('Lattice="5.0 0.0 0.0 0.0 6.0 0.0 0.0 0.0 7.0" ', ""), "line 2: expected Lattice="),
    (("B 1.0 2.0 3.0 1.0", "Xe 1.0 2.0 3.0 1.0"), r"line 4 \(frame 0\): species Xe is neither A nor B"),
    (("B 1.0 2.0 3.0 1.0", "H 1.0 2.0 3.0 1.0"), r"line 4 \(frame 0\): species H is neither A nor B"),  # not 'A' + 7
    (("0.5 0.5 0.5 2", "0.5 0.5 0.5 3"), r"line 7 \(frame 1\): species 3 is neither A nor B"),
    (('pbc="T T T"', 'pbc="T F T"'), 'line 2: expected pbc="T T T"'),
    (("Temperature=0.44", "Temperature=hot"), "line 2: expected Temperature=<number>"),
    (("pos:R:3:mass:R:1", "pos:R:3:mass:X:1"), "line 2: expected Properties=name:type:count triples"),
    (("pos:R:3:species:I:1", "pos:R:3:species:R:1"), "line 6: expected Properties species:S:1 or species:I:1"),
    (("2\nLattice=\"5.0", "two\nLattice=\"5.0"), "line 1: expected the number of atoms"),
])
def test_extxyz_mistakes(tmp_path, change, message):
    path = tmp_path / "bad.xyz"
    path.write_text(EXTXYZ.replace(*change, 1))
    with pytest.raises(UserError, match=message) as exc:
        read_structures(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_extxyz_comment_line_as_ase_reads_it(tmp_path):
    """ASE's grammar of the comment line: spaces around '=', quoted values with escaped quotes, JSON,
    bare flags, T/F booleans (the hand-written parser before it refused the first)."""
    path = tmp_path / "s.extxyz"
    path.write_text('1\nLattice = "4 0 0 0 4 0 0 0 4" note="say \\"hi\\"" dct="_JSON {\\"a\\": 1}" flag pbc="T T T" '
                    "T=0.5 Properties=species:S:1:pos:R:3:fixed:L:1\nA 5.0 -1.0 2.0 T\n")
    (s,) = read_structures(path)
    np.testing.assert_allclose(s.box, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(s.positions, [[1.0, 3.0, 2.0]])   # wrapped into [0, L)
    assert s.temperature == pytest.approx(0.5) and s.species.tolist() == [0]


def test_type_maps_in_every_text_format(tmp_path):
    data = tmp_path / "s.data"
    data.write_text(DATA_FILE)
    assert read_structures(data, type_map=parse_type_map("1=B,2=A"))[0].species.tolist() == [1, 1, 0]
    with pytest.raises(UserError, match=r"s\.data: atom type 2 is not in --type-map 1=B,3=A; it must name every"):
        read_structures(data, type_map=parse_type_map("1=B,3=A"))
    dump = tmp_path / "t.lammpstrj"
    dump.write_text(DUMP.replace("2 2 1.0 1.0 9.0 0.2", "2 3 1.0 1.0 9.0 0.2"))
    with pytest.raises(UserError, match=r"t\.lammpstrj frame 1: atom type 3 is neither A nor B \(without --type-map "
                                        r"LAMMPS type 1 is A and 2 is B\); name the species with --type-map, e\.g\."):
        read_structures(dump)
    first, second = read_structures(dump, type_map=parse_type_map("1=A,2=B,3=B"))
    assert first.species.tolist() == [0, 1] and second.species.tolist() == [0, 1]
    xyz = tmp_path / "s.xyz"
    xyz.write_text(EXTXYZ.replace("A 6.0", "Ar 6.0").replace("B 1.0", "Kr 1.0"))
    with pytest.raises(UserError, match=r"s\.xyz line 3 \(frame 0\): species Ar, Kr are neither A nor B.*"
                                        r"--type-map Ar=A,Kr=B") as exc:
        read_structures(xyz)
    assert "\n" not in str(exc.value)
    first, second = read_structures(xyz, type_map=parse_type_map("Ar=A,Kr=B,1=A,2=B"))
    assert first.species.tolist() == [0, 1] and second.species.tolist() == [1, 0]


@pytest.mark.parametrize("text, expected", [
    ("Ar=A,Kr=B", {"Ar": 0, "Kr": 1}), (" 1 = b , 02=a ", {"1": 1, "2": 0}), ("18=A,36=B,18=A", {"18": 0, "36": 1}),
])
def test_parse_type_map(text, expected):
    assert parse_type_map(text) == expected


@pytest.mark.parametrize("text, message", [
    ("Ar:A", "expected LABEL=A or LABEL=B pairs separated by commas"), ("Ar=C", "'Ar=C' is not one"),
    ("Ar=A,", "'' is not one"), ("=A", "'=A' is not one"), ("Ar=A=B", "is not one"), ("", "is not one"),
    ("Ar=A,Ar=B", "Ar is mapped to both A and B"),
])
def test_malformed_type_maps(text, message):
    with pytest.raises(UserError, match=message) as exc:
        parse_type_map(text)
    assert str(exc.value).startswith(f"--type-map {text!r}: ") and "\n" not in str(exc.value)


def test_hpc_botan_trajectory_file_gives_frame_zero_and_temperature(tmp_path):
    from hpc_botan.io.h5md import ConfigurationTrajectories, write_configuration

    frame0 = np.array([[0.5, 1.0, 1.5], [4.0, 3.0, 2.0], [2.5, 2.5, 2.5]])
    later = frame0 + 7.0  # unwrapped later frames must not be used
    traj = ConfigurationTrajectories(
        species=np.array([1, 0, 0], np.int8), ids=np.array([3, 1, 2]), box=np.array([5.0, 5.0, 5.0]),
        steps=np.array([0, 10]), times=np.array([0.0, 0.01]), positions=np.stack([np.stack([frame0, later])] * 2),
        attrs={"temperature": 0.64}, run_seeds=np.array([1, 2]))
    path = tmp_path / "conf-0000.h5"
    write_configuration(path, traj)
    (s,) = read_structures(path)
    assert s.temperature == pytest.approx(0.64)
    np.testing.assert_array_equal(s.ids, [1, 2, 3])
    np.testing.assert_array_equal(s.species, [0, 0, 1])
    np.testing.assert_allclose(s.positions, frame0[[1, 2, 0]])


def test_generic_h5md_first_frame(tmp_path):
    path = tmp_path / "other.h5md"
    with h5py.File(path, "w") as f:
        g = f.create_group("particles/all")
        g.create_dataset("box/edges", data=np.diag([4.0, 4.0, 4.0]))
        g.create_dataset("position/value", data=np.array([[[-1.0, 0.0, 5.0], [1.0, 1.0, 1.0]],
                                                          [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]]))
        g.create_dataset("species", data=np.array([0, 1]))
    (s,) = read_structures(path)
    assert s.temperature is None
    np.testing.assert_allclose(s.positions, [[3.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(s.species, [0, 1])
    np.testing.assert_array_equal(s.ids, [0, 1])


def test_h5md_species_other_than_zero_and_one_are_refused(tmp_path):
    """Species 18 and 36 were predicted with node features 18 and 36 after a warning; now refused in one
    line unless a type map names them."""
    path = tmp_path / "other.h5md"
    with h5py.File(path, "w") as f:
        g = f.create_group("particles/all")
        g.create_dataset("box/edges", data=np.array([4.0, 4.0, 4.0]))
        g.create_dataset("position/value", data=np.array([[[1.0, 0.0, 0.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]]))
        g.create_dataset("species/value", data=np.array([[18, 18, 36]]))
    with pytest.raises(UserError, match=r"other\.h5md: /particles/all/species: species 18, 36 are neither A nor B "
                                        r"\(without --type-map H5MD species 0 is A and 1 is B\); name the species "
                                        r"with --type-map, e\.g\. --type-map 18=A,36=B"):
        read_structures(path)
    (s,) = read_structures(path, type_map=parse_type_map("18=A,36=B"))
    assert s.species.tolist() == [0, 0, 1]
    with pytest.raises(UserError, match="species 36 is not in --type-map 18=A"):
        read_structures(path, type_map=parse_type_map("18=A"))


def test_h5md_mistakes(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f.create_group("particles/a")
        f.create_group("particles/b")
    with pytest.raises(UserError, match="expected one group under /particles"):
        read_structures(path)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all\n" * 10)
    with pytest.raises(UserError, match="expected an HDF5"):
        read_structures(garbage)


def test_format_by_extension_and_forced(tmp_path):
    assert [format_of(f"x{e}") for e in (".data", ".lmp", ".lammps", ".dump", ".lammpstrj", ".h5", ".h5md",
                                         ".xyz", ".extxyz")] == ["data"] * 3 + ["dump"] * 2 + ["h5md"] * 2 + \
        ["extxyz"] * 2
    with pytest.raises(UserError, match=r"unknown extension '\.pdb'.*--format"):
        format_of("x.pdb")
    path = tmp_path / "conf.txt"
    path.write_text(DATA_FILE)
    (s,) = read_structures(path, "data")
    assert s.n_particles == 3


def test_garbage_and_binary_files(tmp_path):
    path = tmp_path / "junk.dump"
    path.write_text("hello world\n")
    with pytest.raises(UserError, match=r"junk.dump line 1: expected an 'ITEM: …' line"):
        read_structures(path)
    binary = tmp_path / "junk.data"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(UserError, match="line 1: expected a text file"):
        read_structures(binary)
