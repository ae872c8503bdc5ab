"""Readers of static structures for prediction: LAMMPS data and dump files, H5MD, extended XYZ.

Every reader returns a list of :class:`Structure` in the conventions of the targets stage:
positions wrapped into [0, L) per axis (σ), species 0 = A, 1 = B (LAMMPS type k → k − 1, so a
type 3 becomes species 2 and is reported as out of range by the prediction), particles sorted
by their id where the file has ids.  Only orthorhombic periodic boxes are accepted: the graph
and the network are defined with a minimum image in an orthorhombic box.

Every mistake in a file is a :class:`~hpc_botan.errors.UserError` of one line,
``FILE line K: expected …`` (or ``FILE: …`` where no line applies).
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.lammps_text import parse_data, parse_dump
from hpc_botan.io.text_lines import Lines, numbers
from hpc_botan.physics.pbc import wrap

#: ``--format`` names → the file extensions that select them.
FORMAT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "data": (".data", ".lmp", ".lammps"),
    "dump": (".dump", ".lammpstrj"),
    "h5md": (".h5", ".h5md"),
    "extxyz": (".xyz", ".extxyz"),
}


@dataclass
class Structure:
    """One static structure to predict on (N particles).

    Attributes:
        positions: (N, 3) float64, σ, wrapped into [0, L) per axis.
        species: (N,) int8, 0 = A, 1 = B (other values are kept and warned about).
        box: (3,) float64 edge lengths of the orthorhombic box, σ.
        source: the file it was read from.
        frame: 0-based frame number within that file (0 for single-structure files).
        temperature: the temperature the file records (reduced units), or None.
        ids: (N,) int64 particle ids of the file (sorted ascending), or 0 … N−1 where it has none.
    """

    positions: np.ndarray
    species: np.ndarray
    box: np.ndarray
    source: str
    frame: int = 0
    temperature: float | None = None
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64)
        self.positions = wrap(np.asarray(self.positions, dtype=np.float64), self.box)
        self.species = np.asarray(self.species, dtype=np.int8)
        if self.ids is None:
            self.ids = np.arange(len(self.species), dtype=np.int64)

    @property
    def n_particles(self) -> int:
        return int(self.species.shape[0])

    @property
    def density(self) -> float:
        """Number density N/V, σ⁻³."""
        return self.n_particles / float(np.prod(self.box))


# ---------------------------------------------------------------------------- LAMMPS text files

def read_lammps_data(path: str | Path) -> list[Structure]:
    """One structure from a LAMMPS data file of atom style ``atomic`` (:func:`~hpc_botan.io.lammps_text.parse_data`):
    types 1 → A, 2 → B; positions relative to the box's lower corner."""
    data = parse_data(path)
    lo, hi = data.bounds[:, 0], data.bounds[:, 1]
    return [Structure(positions=data.positions - lo, species=data.species, box=hi - lo, source=str(path), frame=0,
                      ids=data.ids)]


def read_lammps_dump(path: str | Path) -> list[Structure]:
    """Every frame of a LAMMPS text dump (:func:`~hpc_botan.io.lammps_text.parse_dump`) as one structure;
    ``frame`` counts the frames of the file from 0."""
    return [Structure(positions=f.positions, species=f.species, box=f.box, source=str(path), frame=k, ids=f.ids)
            for k, f in enumerate(parse_dump(path))]


# ---------------------------------------------------------------------------- extended XYZ

def _xyz_species(label: str) -> int | None:
    """A / B (case-insensitive) or 1 / 2 → 0 / 1; other letters and integers → their rank (warned later)."""
    if label.isdigit():
        return int(label) - 1 if int(label) >= 1 else None
    if len(label) == 1 and label.isalpha():
        return ord(label.upper()) - ord("A")
    return None


def read_extxyz(path: str | Path) -> list[Structure]:
    """Every frame of an extended XYZ file.

    Frame: a line with N, a comment line of ``key=value`` pairs with
    ``Lattice="a 0 0 0 b 0 0 0 c"`` (orthogonal; σ) and ``Properties`` naming a ``species``
    column (S: A/B, or I: 1/2) and ``pos:R:3`` (default ``species:S:1:pos:R:3``), then N rows.
    ``Temperature=`` / ``temperature=`` / ``T=`` in the comment line sets the structure's temperature.
    """
    path = Path(path)
    lines = Lines(path)
    structures = []
    while not lines.at_end_after_blank_lines():
        k, raw = lines.next_raw("the number of atoms")
        n_atoms = numbers(lines, k, raw.split(), 1, "the number of atoms (an integer)", int)[0]
        if len(raw.split()) != 1 or n_atoms < 1:
            raise lines.error(k, "the number of atoms (one positive integer)")
        kc, comment = lines.next_raw("a comment line with Lattice=… and Properties=…")
        try:
            tokens = shlex.split(comment)
        except ValueError:
            raise lines.error(kc, "key=value pairs with balanced quotes") from None
        info = {}
        for token in tokens:
            key, sep, value = token.partition("=")
            if sep:
                info[key] = value
        if "Lattice" not in info:
            raise lines.error(kc, 'Lattice="a 0 0 0 b 0 0 0 c" (a periodic orthogonal box)')
        try:
            lattice = np.array([float(x) for x in info["Lattice"].split()])
        except ValueError:
            raise lines.error(kc, "Lattice with nine numbers") from None
        if lattice.shape != (9,):
            raise lines.error(kc, "Lattice with nine numbers")
        matrix = lattice.reshape(3, 3)
        if np.any(matrix[~np.eye(3, dtype=bool)] != 0) or np.any(np.diag(matrix) <= 0):
            raise lines.error(kc, 'an orthogonal Lattice "a 0 0 0 b 0 0 0 c" with a, b, c > 0 (triclinic '
                                  'boxes are not supported)')
        box = np.diag(matrix).copy()
        if "pbc" in info and [w.upper() for w in info["pbc"].split()] not in (["T"] * 3, ["TRUE"] * 3):
            raise lines.error(kc, 'pbc="T T T" (periodic in every direction: the models know only bulk liquids)',
                              f'pbc="{info["pbc"]}"')
        species_col, pos_col, n_cols = _xyz_properties(info.get("Properties", "species:S:1:pos:R:3"), lines, kc)
        temperature = None
        for key in ("Temperature", "temperature", "T"):
            if key in info:
                try:
                    temperature = float(info[key])
                except ValueError:
                    raise lines.error(kc, f"{key}=<number>") from None
                break
        species = np.empty(n_atoms, np.int64)
        xyz = np.empty((n_atoms, 3))
        for row in range(n_atoms):
            kk, value = lines.next_raw(f"{n_atoms} atom rows")
            fields = value.split()
            if len(fields) != n_cols:
                raise lines.error(kk, f"an atom row of {n_cols} columns (from Properties)")
            label = _xyz_species(fields[species_col])
            if label is None or label > 127:
                raise lines.error(kk, "species A or B (or 1 or 2)", fields[species_col])
            species[row] = label
            xyz[row] = numbers(lines, kk, fields[pos_col:pos_col + 3], 3, "numeric positions")
            if not np.isfinite(xyz[row]).all():
                raise lines.error(kk, "finite coordinates")
        structures.append(Structure(positions=xyz, species=species.astype(np.int8), box=box, source=str(path),
                                    frame=len(structures), temperature=temperature))
    if not structures:
        raise lines.error(0, "the number of atoms (an extended XYZ file)")
    return structures


def _xyz_properties(spec: str, lines: Lines, k: int) -> tuple[int, int, int]:
    """(species column, first position column, number of columns) of a ``Properties`` value."""
    parts = spec.split(":")
    if len(parts) % 3:
        raise lines.error(k, "Properties=name:type:count triples")
    column = 0
    species_col = pos_col = None
    for name, kind, count in zip(parts[0::3], parts[1::3], parts[2::3]):
        if not count.isdigit():
            raise lines.error(k, f"Properties: a column count for {name}")
        if name == "species":
            if kind not in ("S", "I") or count != "1":
                raise lines.error(k, "Properties species:S:1 or species:I:1")
            species_col = column
        elif name == "pos":
            if kind != "R" or count != "3":
                raise lines.error(k, "Properties pos:R:3")
            pos_col = column
        column += int(count)
    if species_col is None or pos_col is None:
        raise lines.error(k, "Properties with species and pos columns")
    return species_col, pos_col, column


# ---------------------------------------------------------------------------- H5MD

def read_h5md(path: str | Path) -> list[Structure]:
    """The t = 0 structure of an H5MD file.

    This package's trajectory files (``particles/run_000 …``): frame 0 of ``run_000``, the
    temperature from ``/parameters``.  Any other H5MD file with one group under ``particles``:
    its first ``position`` frame, ``box/edges`` (3,) or a diagonal (3, 3), ``species`` (0 = A,
    1 = B), ``id`` if present; a ``temperature`` attribute of ``/parameters`` if present.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{path}: expected an HDF5 (H5MD) file, cannot open it as one") from None
    with f:
        if "particles" not in f or not isinstance(f["particles"], h5py.Group) or not len(f["particles"]):
            raise UserError(f"{path}: expected an H5MD file with a /particles group, found none")
        names = sorted(f["particles"])
        if "run_000" in names:
            name = "run_000"  # this package's trajectory: every run starts from the same t = 0 structure
        elif len(names) == 1:
            name = names[0]
        else:
            raise UserError(f"{path}: expected one group under /particles (or run_000), found {', '.join(names)}")
        g = f["particles"][name]
        where = f"{path}: /particles/{name}"

        def first_frame(key: str) -> np.ndarray:
            if key not in g:
                raise UserError(f"{where}: expected '{key}', found none")
            item = g[key]
            if isinstance(item, h5py.Group):  # time-dependent element: value (F, …), first frame
                if "value" not in item:
                    raise UserError(f"{where}/{key}: expected a 'value' dataset, found none")
                value = item["value"]
                if value.ndim == 0 or value.shape[0] == 0:
                    raise UserError(f"{where}/{key}/value: expected at least one frame, found none")
                return np.asarray(value[0])
            return np.asarray(item[()])

        positions = first_frame("position")
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise UserError(f"{where}/position: expected (N, 3) positions, found shape {positions.shape}")
        n_atoms = positions.shape[0]
        if "box" not in g or "edges" not in g["box"]:
            raise UserError(f"{where}/box/edges: expected the box edges, found none")
        edges = g["box"]["edges"]
        edges = np.asarray(edges["value"][0] if isinstance(edges, h5py.Group) else edges[()], dtype=np.float64)
        if edges.shape == (3, 3):
            if np.any(edges[~np.eye(3, dtype=bool)] != 0):
                raise UserError(f"{where}/box/edges: expected an orthogonal box (triclinic boxes are not supported)")
            edges = np.diag(edges).copy()
        if edges.shape != (3,) or not (edges > 0).all():
            raise UserError(f"{where}/box/edges: expected three positive edge lengths, found {edges.tolist()}")
        boundary = g["box"].attrs.get("boundary")
        if boundary is not None and any((b.decode() if isinstance(b, bytes) else str(b)) != "periodic"
                                        for b in np.atleast_1d(boundary)):
            raise UserError(f"{where}/box: expected periodic boundaries, found {list(boundary)}")
        species = first_frame("species").astype(np.int64)
        if species.shape != (n_atoms,):
            raise UserError(f"{where}/species: expected ({n_atoms},) species, found shape {species.shape}")
        if (species < 0).any() or (species > 127).any():
            raise UserError(f"{where}/species: expected species 0 (A) and 1 (B), found {int(species.min())} … "
                            f"{int(species.max())}")
        ids = first_frame("id").astype(np.int64) if "id" in g else np.arange(n_atoms, dtype=np.int64)
        temperature = None
        if "parameters" in f and "temperature" in f["parameters"].attrs:
            temperature = float(f["parameters"].attrs["temperature"])
    if not np.isfinite(positions).all():
        raise UserError(f"{where}/position: expected finite positions")
    order = np.argsort(ids, kind="stable")
    return [Structure(positions=positions[order], species=species[order].astype(np.int8), box=edges,
                      source=str(path), frame=0, temperature=temperature, ids=ids[order])]


READERS: dict[str, Callable[[str | Path], list[Structure]]] = {
    "data": read_lammps_data, "dump": read_lammps_dump, "h5md": read_h5md, "extxyz": read_extxyz,
}


def format_of(path: str | Path) -> str:
    """The ``--format`` name that the extension of ``path`` selects; UserError for unknown extensions."""
    suffix = Path(path).suffix.lower()
    for name, extensions in FORMAT_EXTENSIONS.items():
        if suffix in extensions:
            return name
    known = ", ".join(e for exts in FORMAT_EXTENSIONS.values() for e in exts)
    raise UserError(f"{path}: unknown extension {suffix or '(none)'!r}; expected one of {known}, "
                    "or name the format with --format")


def read_structures(path: str | Path, fmt: str | None = None) -> list[Structure]:
    """Every structure in ``path``, read with ``fmt`` (data | dump | h5md | extxyz) or by extension."""
    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt not in READERS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(READERS)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    structures = READERS[fmt](path)
    for s in structures:
        if not math.isfinite(float(np.prod(s.box))):
            raise UserError(f"{path}: expected a finite box")
    return structures
