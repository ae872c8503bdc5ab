"""Structures written by ASE and by znh5md (ASE Atoms → H5MD), read by hpc_botan for prediction.

Element symbols (Ar, Kr), LAMMPS types and atomic numbers become A and B only through a type map
(``hpc-botan predict --type-map``, ``read_structures(type_map=…)``, ``Predictor.predict(type_map=…)``);
without one, a label other than the formats' own A/B is refused in one line.
"""
from __future__ import annotations

import ase
import ase.io
import h5py
import numpy as np
import pytest
import znh5md
from ase.calculators.singlepoint import SinglePointCalculator

from hpc_botan.cli import main
from hpc_botan.errors import UserError
from hpc_botan.io.structures import parse_type_map, read_structures
from hpc_botan.predictor import _structure
from tests.predict.test_command import structure, trained_run, write_data  # noqa: F401  (fixtures)

BOX = np.array([5.0, 6.0, 7.0])


def _liquid(seed=0, n=50):
    """An ASE Atoms of 80 % Ar, 20 % Kr in an orthorhombic periodic box; some positions outside it."""
    rng = np.random.default_rng(seed)
    symbols = ["Kr" if i % 5 == 0 else "Ar" for i in range(n)]
    atoms = ase.Atoms(symbols, positions=rng.uniform(-3.0, 10.0, (n, 3)), cell=BOX, pbc=True)
    return atoms


def _expected_species(atoms):
    return np.array([0 if s == "Ar" else 1 for s in atoms.get_chemical_symbols()], np.int8)


def test_ase_extxyz_with_element_symbols(tmp_path):
    frames = [_liquid(0), _liquid(1)]
    frames[0].info["Temperature"] = 0.44
    frames[1].calc = SinglePointCalculator(frames[1], energy=-3.5, forces=np.zeros((50, 3)))  # more columns
    path = tmp_path / "liquid.extxyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(UserError) as exc:
        read_structures(path)
    message = str(exc.value)
    assert message.startswith(f"{path} line 3 (frame 0): species Ar, Kr are neither A nor B") and "\n" not in message
    assert "--type-map Ar=A,Kr=B" in message   # the majority species first: Ar is A
    first, second = read_structures(path, type_map=parse_type_map("Ar=A,Kr=B"))
    for s, atoms in zip((first, second), ase.io.read(path, index=":")):   # the positions as written (8 decimals)
        np.testing.assert_array_equal(s.species, _expected_species(atoms))
        np.testing.assert_allclose(s.box, BOX)
        np.testing.assert_allclose(s.positions, np.mod(atoms.positions, BOX), atol=1e-12)   # wrapped into [0, L)
        assert ((s.positions >= 0) & (s.positions < BOX)).all()
    assert first.temperature == pytest.approx(0.44) and second.temperature is None


def test_ase_extxyz_triclinic_or_open_boxes_are_refused(tmp_path):
    tilted = _liquid()
    tilted.set_cell([[5.0, 0.0, 0.0], [1.0, 6.0, 0.0], [0.0, 0.0, 7.0]])
    path = tmp_path / "tilted.extxyz"
    ase.io.write(path, tilted, format="extxyz")
    with pytest.raises(UserError, match=r"tilted\.extxyz line 2: expected an orthogonal Lattice") as exc:
        read_structures(path, type_map=parse_type_map("Ar=A,Kr=B"))
    assert "\n" not in str(exc.value)
    slab = _liquid()
    slab.pbc = [True, True, False]
    ase.io.write(path, slab, format="extxyz")
    with pytest.raises(UserError, match=r'line 2: expected pbc="T T T" .*found \'pbc="T T F"\''):
        read_structures(path, type_map=parse_type_map("Ar=A,Kr=B"))


def test_ase_lammps_data(tmp_path):
    atoms = _liquid()
    path = tmp_path / "liquid.data"
    ase.io.write(path, atoms, format="lammps-data", atom_style="atomic")   # types by sorted symbol: Ar 1, Kr 2
    (s,) = read_structures(path)
    np.testing.assert_array_equal(s.species, _expected_species(atoms))
    np.testing.assert_allclose(s.positions, np.mod(atoms.positions, BOX), atol=1e-9)
    np.testing.assert_array_equal(s.ids, np.arange(1, 51))
    ase.io.write(path, atoms, format="lammps-data", atom_style="atomic", specorder=["Kr", "Ar"], masses=True)
    (swapped,) = read_structures(path, type_map=parse_type_map("1=B,2=A"))
    np.testing.assert_array_equal(swapped.species, _expected_species(atoms))


def test_znh5md_files_of_ase_atoms(tmp_path):
    frames = [_liquid(0), _liquid(1)]
    path = tmp_path / "liquid.h5"
    znh5md.IO(str(path)).extend(frames)
    with pytest.raises(UserError) as exc:
        read_structures(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: /particles/atoms/species: species Ar, Kr are neither A nor B (the file's "
                              "species are atomic numbers (znh5md)") and "--type-map Ar=A,Kr=B" in message
    for text in ("Ar=A,Kr=B", "18=A,36=B"):   # the symbols or the atomic numbers
        (s,) = read_structures(path, type_map=parse_type_map(text))
        np.testing.assert_array_equal(s.species, _expected_species(frames[0]))   # frame 0
        np.testing.assert_allclose(s.positions, np.mod(frames[0].positions, BOX), atol=1e-12)
        np.testing.assert_allclose(s.box, BOX)


def test_znh5md_boron_is_not_species_b(tmp_path):
    path = tmp_path / "bn.h5"
    atoms = ase.Atoms("B4N", positions=np.random.default_rng(0).uniform(0, 5, (5, 3)), cell=BOX, pbc=True)
    znh5md.IO(str(path)).extend([atoms])
    with pytest.raises(UserError, match="species B, N are neither A nor B"):
        read_structures(path)


def test_predictor_type_maps():
    atoms = _liquid()
    for type_map in ({"Ar": 0, "Kr": 1}, {"Ar": "A", "Kr": "b"}, "Ar=A,Kr=B"):
        np.testing.assert_array_equal(_structure(atoms, None, None, type_map).species, _expected_species(atoms))
    lammps_types = _expected_species(atoms) + 1
    s = _structure(atoms.positions, lammps_types, BOX, {1: "A", 2: "B"})
    np.testing.assert_array_equal(s.species, _expected_species(atoms))
    with pytest.raises(UserError, match=r'^predict: type 2 is neither A nor B \(without type_map, types must be 0 '
                                        r'\(A\) and 1 \(B\)\); .*type_map="1=A,2=B"'):
        _structure(atoms.positions, lammps_types, BOX, None)   # LAMMPS types without a map: 2 was never trained
    with pytest.raises(UserError, match="expected 0 or 'A'"):
        _structure(atoms, None, None, {"Ar": 0, "Kr": "C"})


def _predict(*args, capsys):
    code = main(["-q", "predict", *map(str, args), "--no-progress"])
    return code, capsys.readouterr().err


def test_cli_refuses_symbols_without_type_map_before_any_model_is_loaded(tmp_path, capsys):
    path = tmp_path / "liquid.extxyz"
    ase.io.write(path, _liquid(), format="extxyz")
    no_model = tmp_path / "not-a-run"
    no_model.mkdir()
    code, err = _predict(no_model, path, "--out", tmp_path / "p.h5", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{path} line 3 (frame 0): species Ar, Kr are neither A nor B" in err and "--type-map Ar=A,Kr=B" in err
    # with the type map the structures are read: the command gets as far as the (missing) models
    code, err = _predict(no_model, path, "--out", tmp_path / "p.h5", "--type-map", "Ar=A,Kr=B", capsys=capsys)
    assert code == 2 and "species" not in err and str(no_model) in err


@pytest.mark.parametrize("text", ["Ar", "Ar=C", "Ar=A,,Kr=B", "Ar=A,Ar=B"])
def test_cli_malformed_type_map_is_one_line(tmp_path, capsys, text):
    path = tmp_path / "liquid.extxyz"
    ase.io.write(path, _liquid(), format="extxyz")
    code, err = _predict(tmp_path, path, "--out", tmp_path / "p.h5", "--type-map", text, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and f"--type-map {text!r}: " in err


def test_cli_predicts_ase_and_znh5md_files_with_a_type_map(trained_run, structure, tmp_path):  # noqa: F811
    """The same structure as an A/B LAMMPS data file and, with element symbols, as ASE's extended XYZ
    and znh5md's H5MD (ASE's LAMMPS data: types 1/2): one type map, the same predictions."""
    positions, species, box = structure
    atoms = ase.Atoms(["Ar" if t == 0 else "Kr" for t in species], positions=positions, cell=box, pbc=True)
    reference = write_data(tmp_path / "ab.data", positions, species, box)
    xyz = tmp_path / "ase.extxyz"
    ase.io.write(xyz, atoms, format="extxyz")
    h5 = tmp_path / "zn.h5"
    znh5md.IO(str(h5)).extend([atoms])
    data = tmp_path / "ase.data"
    ase.io.write(data, atoms, format="lammps-data", atom_style="atomic")
    out = tmp_path / "p.h5"
    assert main(["-q", "predict", str(trained_run), *map(str, (reference, xyz, h5, data)), "--out", str(out),
                 "--model", "botan", "--type-map", "Ar=A,Kr=B,1=A,2=B", "--no-progress"]) == 0
    with h5py.File(out, "r") as f:
        first = f["structures/00000"]
        s_reference = first["predictions/botan/T0.440/t00/S_mean"][()]
        for k in (1, 2, 3):
            g = f[f"structures/{k:05d}"]
            np.testing.assert_array_equal(g["species"][()], species)
            np.testing.assert_array_equal(g["edge_index"][()], first["edge_index"][()])
            np.testing.assert_allclose(g["predictions/botan/T0.440/t00/S_mean"][()], s_reference, atol=1e-5)


def test_ase_reads_the_package_lammps_data_files(tmp_path):
    """The other direction: the data files hpc_botan writes (restart points, test structures) open in ASE
    with the same box, positions and types (type 1 = A, type 2 = B), and read back through hpc_botan the same."""
    from hpc_botan.io.lammps_text import write_data_file

    rng = np.random.default_rng(3)
    species = (np.arange(40) % 5 == 0).astype(np.int8)
    positions = rng.uniform(0, 1, (40, 3)) * BOX
    path = tmp_path / "c.data"
    write_data_file(path, species, positions, BOX)
    atoms = ase.io.read(path, format="lammps-data", atom_style="atomic", units="metal")
    np.testing.assert_allclose(atoms.cell.lengths(), BOX, rtol=0, atol=1e-12)
    np.testing.assert_allclose(atoms.positions, positions, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(atoms.get_array("type"), species + 1)
    assert atoms.pbc.all()
    (s,) = read_structures(path)
    np.testing.assert_array_equal(s.species, species)
    np.testing.assert_allclose(s.positions, positions, rtol=0, atol=1e-12)
