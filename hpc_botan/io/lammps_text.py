"""LAMMPS text files: data files (atom style atomic) and text dumps, read and written only here.

The simulate stage writes data files and reads back its own one-frame dumps (a fast path for its
fixed columns); prediction reads any user's data file or multi-frame dump through the same
parsers, with one-line errors ``FILE line K: expected …``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import write_text_atomic
from hpc_botan.io.text_lines import Lines, is_number, numbers, sorted_by_id, species_from_types


@dataclass(frozen=True)
class LammpsData:
    """The atoms of a data file, sorted by id: ids (N,) int64, species (N,) int8 (type − 1),
    positions (N, 3) float64 σ as written, images (N, 3) int64 (0 where absent), bounds (3, 2) lo/hi σ."""

    ids: np.ndarray
    species: np.ndarray
    positions: np.ndarray
    images: np.ndarray
    bounds: np.ndarray


@dataclass(frozen=True)
class LammpsFrame:
    """One frame of a dump, sorted by id: ids (N,), species (N,) int8, positions (N, 3) σ relative to
    the box's lower corner, box (3,) edge lengths σ."""

    ids: np.ndarray
    species: np.ndarray
    positions: np.ndarray
    box: np.ndarray


#: Section names of a LAMMPS data file; rows of every section but Atoms are skipped.
_DATA_SECTIONS_WITH_ROWS = {"Atoms", "Velocities", "Masses", "Bonds", "Angles", "Dihedrals", "Impropers",
                            "Pair Coeffs", "PairIJ Coeffs", "Bond Coeffs", "Angle Coeffs", "Dihedral Coeffs",
                            "Improper Coeffs", "Ellipsoids", "Lines", "Triangles", "Bodies"}


def parse_data(path: str | Path) -> LammpsData:
    """A LAMMPS data file of atom style ``atomic`` (any writer: LAMMPS' ``write_data``, ours, others).

    Header: ``N atoms``, ``xlo xhi``, ``ylo yhi``, ``zlo zhi`` (a ``xy xz yz`` tilt line, i.e. a
    triclinic box, is refused); ``Atoms`` rows ``id type x y z [ix iy iz]``.  Types 1 → A, 2 → B.
    Other sections (Masses, Velocities, …) are skipped.  Every mistake is one line
    ``FILE line K: expected …``.
    """
    path = Path(path)
    lines = Lines(path)
    lines.next_raw("a title line")  # the first line of a data file is always a free-form title
    n_atoms = None
    bounds: dict[str, tuple[float, float]] = {}
    atoms: list[tuple[int, list[str]]] = []
    section = None
    section_line = 0
    while not lines.at_end():
        k, raw = lines.next_raw("")
        text, _, comment = raw.partition("#")
        fields = text.split()
        if not fields:
            continue
        name = " ".join(fields)
        if name in _DATA_SECTIONS_WITH_ROWS or fields[0] in ("Atoms", "Velocities", "Masses"):
            section, section_line = fields[0] if fields[0] in ("Atoms", "Velocities", "Masses") else name, k
            if section == "Atoms":
                style = comment.strip().split()
                if style and style[0] != "atomic":
                    raise lines.error(k, "atom style 'atomic' (Atoms # atomic)", raw.strip())
            continue
        if section is None:  # header: numbers followed by a keyword
            if fields[-1] == "atoms" and len(fields) == 2:
                n_atoms = numbers(lines, k, fields, 1, "'N atoms' with an integer N", int)[0]
            elif fields[-2:] in (["xlo", "xhi"], ["ylo", "yhi"], ["zlo", "zhi"]) and len(fields) == 4:
                lo, hi = numbers(lines, k, fields, 2, f"'lo hi {fields[2]} {fields[3]}' with two numbers")
                if not hi > lo:
                    raise lines.error(k, "hi > lo")
                bounds[fields[2][0]] = (lo, hi)
            elif fields[-3:] == ["xy", "xz", "yz"]:
                raise lines.error(k, "an orthogonal box (no 'xy xz yz' tilt line; triclinic boxes are not "
                                     "supported)")
            elif len(fields) >= 2 and is_number(fields[0]) and all(f.isalpha() for f in fields[1:]):
                continue  # another count (atom types, bonds, …): not needed for an atomic structure
            else:
                raise lines.error(k, "a header line 'N atoms', 'lo hi xlo xhi', … or a section name")
        elif section == "Atoms":
            atoms.append((k, fields))
        elif not is_number(fields[0]):
            raise lines.error(k, f"a row of the {section} section or a section name")
    if n_atoms is None:
        raise lines.error(0, "a header line 'N atoms'", "no such line")
    missing = [a for a in "xyz" if a not in bounds]
    if missing:
        raise UserError(f"{path} line 1: expected a '{missing[0]}lo {missing[0]}hi' header line, found none")
    if not atoms:
        raise UserError(f"{path} line {len(lines.raw) + 1}: expected an 'Atoms' section, found none")
    if len(atoms) != n_atoms:
        raise lines.error(atoms[-1][0] if len(atoms) > n_atoms else len(lines.raw),
                          f"{n_atoms} rows in the Atoms section (header), got {len(atoms)}", "")
    ids = np.empty(n_atoms, np.int64)
    types = np.empty(n_atoms, np.int64)
    xyz = np.empty((n_atoms, 3))
    images = np.zeros((n_atoms, 3), np.int64)
    for row, (k, fields) in enumerate(atoms):
        if len(fields) not in (5, 8):
            raise lines.error(k, "an atomic row 'id type x y z [ix iy iz]'")
        ids[row], types[row] = numbers(lines, k, fields, 2, "an atomic row 'id type x y z'", int)
        xyz[row] = numbers(lines, k, fields[2:], 3, "an atomic row 'id type x y z' with numeric x y z")
        if not np.isfinite(xyz[row]).all():
            raise lines.error(k, "finite coordinates")
        if len(fields) == 8:
            images[row] = numbers(lines, k, fields[5:], 3, "integer image flags ix iy iz", int)
    species = species_from_types(types, lines, section_line)
    ids, xyz, species, images = sorted_by_id(ids, xyz, species, images, lines=lines, k=section_line)
    return LammpsData(ids=ids, species=species, positions=xyz, images=images,
                      bounds=np.array([bounds[a] for a in "xyz"], dtype=np.float64))


#: Position columns of a dump, by preference: (names, scaled).  Scaled: x = xlo + xs (xhi − xlo).
_DUMP_POSITION_COLUMNS = ((("x", "y", "z"), False), (("xu", "yu", "zu"), False),
                          (("xs", "ys", "zs"), True), (("xsu", "ysu", "zsu"), True))


def parse_dump(path: str | Path) -> list[LammpsFrame]:
    """Every frame of a LAMMPS text dump (``dump atom``/``dump custom``), in file order.

    Each frame needs ``ITEM: NUMBER OF ATOMS``, ``ITEM: BOX BOUNDS`` (orthogonal: three
    ``lo hi`` lines) and ``ITEM: ATOMS`` with columns ``id`` and ``type`` and one of
    ``x y z`` / ``xu yu zu`` / ``xs ys zs`` (scaled, fractions of the box) / ``xsu ysu zsu``.
    Rows are sorted by id; positions are relative to the box's lower corner (σ).
    """
    path = Path(path)
    lines = Lines(path)
    structures = []
    while not lines.at_end_after_blank_lines():
        n_atoms = None
        box_lo = box = None
        while True:  # the ITEM blocks of one frame, up to and including ATOMS
            k, raw = lines.next_raw("an 'ITEM: …' line")
            item = raw.strip()
            if not item.startswith("ITEM:"):
                raise lines.error(k, "an 'ITEM: …' line")
            if item.startswith("ITEM: TIMESTEP") or item.startswith("ITEM: TIME") or item.startswith("ITEM: UNITS"):
                lines.next_raw("a value")
            elif item.startswith("ITEM: NUMBER OF ATOMS"):
                kk, value = lines.next_raw("the number of atoms")
                n_atoms = numbers(lines, kk, value.split(), 1, "the number of atoms (an integer)", int)[0]
            elif item.startswith("ITEM: BOX BOUNDS"):
                if any(tilt in item.split() for tilt in ("xy", "xz", "yz")):
                    raise lines.error(k, "an orthogonal box ('ITEM: BOX BOUNDS pp pp pp'; triclinic boxes are "
                                         "not supported)")
                rows = []
                for axis in "xyz":
                    kk, value = lines.next_raw(f"'{axis}lo {axis}hi'")
                    lo, hi = numbers(lines, kk, value.split(), 2, f"'{axis}lo {axis}hi' (two numbers)")
                    if not hi > lo:
                        raise lines.error(kk, f"{axis}hi > {axis}lo")
                    rows.append((lo, hi))
                box_lo = np.array([r[0] for r in rows])
                box = np.array([r[1] - r[0] for r in rows])
            elif item.startswith("ITEM: ATOMS"):
                break
            else:
                raise lines.error(k, "ITEM: TIMESTEP, NUMBER OF ATOMS, BOX BOUNDS or ATOMS")
        if n_atoms is None or box is None:
            raise lines.error(k, "'ITEM: NUMBER OF ATOMS' and 'ITEM: BOX BOUNDS' before 'ITEM: ATOMS'")
        columns = item.split()[2:]
        if "id" not in columns or "type" not in columns:
            raise lines.error(k, "'ITEM: ATOMS' with columns id and type")
        chosen = next(((names, scaled) for names, scaled in _DUMP_POSITION_COLUMNS
                       if all(n in columns for n in names)), None)
        if chosen is None:
            raise lines.error(k, "'ITEM: ATOMS' with position columns x y z, xu yu zu, xs ys zs or xsu ysu zsu")
        names, scaled = chosen
        cols = [columns.index(c) for c in ("id", "type", *names)]
        atoms_line = k
        if lines.pos + n_atoms > len(lines.raw):
            raise lines.error(len(lines.raw), f"{n_atoms} atom rows after line {atoms_line + 1}")
        ids = np.empty(n_atoms, np.int64)
        types = np.empty(n_atoms, np.int64)
        xyz = np.empty((n_atoms, 3))
        for row in range(n_atoms):
            kk, value = lines.next_raw("an atom row")
            fields = value.split()
            if len(fields) != len(columns):
                raise lines.error(kk, f"an atom row of {len(columns)} columns ({' '.join(columns)})")
            picked = [fields[c] for c in cols]
            ids[row], types[row] = numbers(lines, kk, picked, 2, "integer id and type", int)
            xyz[row] = numbers(lines, kk, picked[2:], 3, f"numeric {' '.join(names)}")
            if not np.isfinite(xyz[row]).all():
                raise lines.error(kk, "finite coordinates")
        positions = xyz * box if scaled else xyz - box_lo
        species = species_from_types(types, lines, atoms_line)
        ids, positions, species = sorted_by_id(ids, positions, species, lines=lines, k=atoms_line)
        structures.append(LammpsFrame(ids=ids, species=species, positions=positions, box=box))
    if not structures:
        raise lines.error(0, "'ITEM: TIMESTEP' (a LAMMPS dump)")
    return structures




def read_data_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read an atomic-style LAMMPS data file written by ``write_data``.

    Returns ``(ids, species, positions, images, box)``: ids (N,) int sorted ascending,
    species (N,) int8 (LAMMPS type − 1, so A = 0, B = 1), positions (N, 3) float64 in σ
    (as written, normally inside the box), images (N, 3) int64 image flags (0 if absent),
    box (3, 2) float64 lower/upper bounds per axis.  LAMMPS's unwrapped position of atom i
    is ``positions[i] + images[i] * (box[:, 1] - box[:, 0])``.
    Raises :class:`UserError` on a malformed file.
    """
    data = parse_data(path)
    return data.ids, data.species, data.positions, data.images, data.bounds


def read_dump_frame(path: str | Path, n_atoms: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Read a one-frame custom dump with columns ``id type xu yu zu`` sorted by id.

    Returns ``(step, species (N,) int8, positions (N, 3) float64)``.
    """
    path = Path(path)
    with open(path) as fh:
        head = [fh.readline() for _ in range(9)]
        if not head[0].startswith("ITEM: TIMESTEP") or "xu yu zu" not in head[8]:
            raise UserError(f"{path}: not a dump with columns id type xu yu zu")
        step = int(head[1])
        if int(head[3]) != n_atoms:
            raise UserError(f"{path}: {head[3].strip()} atoms, expected {n_atoms}")
        table = np.loadtxt(fh, dtype=np.float64, ndmin=2)
    if table.shape != (n_atoms, 5) or not np.array_equal(table[:, 0], np.arange(1, n_atoms + 1)):
        raise UserError(f"{path}: expected {n_atoms} atoms with ids 1..{n_atoms} in order")
    return step, (table[:, 1] - 1).astype(np.int8), table[:, 2:5].copy()


def write_data_file(path: str | Path, species: np.ndarray, positions: np.ndarray, box: np.ndarray,
                    n_types: int = 2) -> None:
    """Write an atomic-style LAMMPS data file (ids 1..N, types = species + 1, image flags 0).

    Args:
        path: the file to write (atomically: a temporary name, then a rename).
        species: (N,) int, A = 0, B = 1.
        positions: (N, 3) float positions in σ, inside ``[0, box)`` per axis.
        box: (3,) box edges in σ (orthogonal box with lower corner at the origin).
        n_types: number of atom types declared in the header.
    """
    species = np.asarray(species)
    positions = np.asarray(positions, dtype=np.float64)
    box = np.asarray(box, dtype=np.float64)
    if positions.shape != (species.size, 3) or box.shape != (3,):
        raise ValueError(f"positions {positions.shape} and box {box.shape} do not fit {species.size} atoms")
    lines = ["LAMMPS data file written by hpc_botan", "", f"{species.size} atoms", f"{n_types} atom types", ""]
    lines += [f"0 {edge:.17g} {lo} {hi}" for edge, lo, hi in zip(box, ("xlo", "ylo", "zlo"), ("xhi", "yhi", "zhi"))]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {int(t) + 1} {x:.17g} {y:.17g} {z:.17g} 0 0 0"
              for i, (t, (x, y, z)) in enumerate(zip(species, positions))]
    write_text_atomic(path, "\n".join(lines) + "\n")
