"""Readers of static structures for prediction: LAMMPS data and dump files, H5MD, extended XYZ.

Every reader returns a list of :class:`Structure` in the conventions of the targets stage:
positions wrapped into [0, L) per axis (σ), species 0 = A, 1 = B, particles sorted by their id where
the file has ids.  Only orthorhombic periodic boxes are accepted: the graph and the network are
defined with a minimum image in an orthorhombic box.

**Species.** Each format labels particles its own way: a LAMMPS type number, an extended-XYZ species
(an element symbol, A/B, or an integer), an H5MD species value.  Without a type map only the labels
of the two Kob–Andersen species are read (:data:`DEFAULT_LABELS`: LAMMPS types 1 and 2, extended-XYZ
A/B or 1/2, H5MD species 0 and 1); a type map (:func:`parse_type_map`, ``--type-map Ar=A,Kr=B``)
replaces them and must name every label of the files.  Any other label is refused, in one line that
names the file, where in it, the labels found and the ``--type-map`` that would read them: a network
given a species it was never trained on predicts nonsense, never a warning's worth.

Every mistake in a file is a :class:`~hpc_botan.errors.UserError` of one line,
``FILE line K: expected …`` (or ``FILE: …`` where no line applies).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

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

#: The labels each format reads without a type map → species (0 = A, 1 = B).
DEFAULT_LABELS: dict[str, dict[str, int]] = {
    "lammps": {"1": 0, "2": 1},
    "extxyz": {"A": 0, "B": 1, "a": 0, "b": 1, "1": 0, "2": 1},
    "h5md": {"0": 0, "1": 1, "A": 0, "B": 1},  # A, B: the names of hpc_botan's enum species
    "elements": {},  # H5MD species that are atomic numbers (znh5md): only a type map names them
    "python": {"0": 0, "1": 1, "A": 0, "B": 1},  # hpc_botan.load_predictor(…).predict(…, types)
}
_DEFAULTS_SAID = {
    "lammps": "without --type-map LAMMPS type 1 is A and 2 is B",
    "extxyz": "without --type-map the species must be A and B, or 1 and 2",
    "h5md": "without --type-map H5MD species 0 is A and 1 is B",
    "elements": "the file's species are atomic numbers (znh5md), read only with --type-map",
    "python": "without type_map, types must be 0 (A) and 1 (B)",
}
_TYPE_MAP_FORM = "LABEL=A or LABEL=B pairs separated by commas, e.g. --type-map Ar=A,Kr=B or 1=A,2=B"


@dataclass
class Structure:
    """One static structure to predict on (N particles).

    Attributes:
        positions: (N, 3) float64, σ, wrapped into [0, L) per axis.
        species: (N,) int8, 0 = A, 1 = B (the readers give no other value).
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


# ---------------------------------------------------------------------------- type maps

def _label(text: str) -> str:
    """A label as the type maps compare it: integers in their plain form ("01", "+1" → "1")."""
    text = text.strip()
    return str(int(text)) if re.fullmatch(r"[+-]?\d+", text) else text


def parse_type_map(text: str, option: str = "--type-map") -> dict[str, int]:
    """``"Ar=A,Kr=B"`` → ``{"Ar": 0, "Kr": 1}``: file labels (element symbols, LAMMPS type numbers,
    H5MD species values) → species 0 = A, 1 = B.  A malformed text is a one-line :class:`UserError`."""
    out: dict[str, int] = {}
    for entry in text.split(","):
        label, sep, name = entry.partition("=")
        label, name = _label(label), name.strip().upper()
        if not sep or not label or "=" in name or name not in ("A", "B"):
            raise UserError(f"{option} {text!r}: expected {_TYPE_MAP_FORM}; {entry.strip()!r} is not one")
        species = "AB".index(name)
        if out.get(label, species) != species:
            raise UserError(f"{option} {text!r}: {label} is mapped to both A and B")
        out[label] = species
    return out


def normalize_type_map(type_map: Mapping[Any, Any] | str, option: str = "type_map") -> dict[str, int]:
    """A type map from Python: the text of :func:`parse_type_map`, or a mapping label → 0 / 1 / "A" / "B"
    (labels str or int)."""
    if isinstance(type_map, str):
        return parse_type_map(type_map, option)
    out = {}
    for label, value in dict(type_map).items():
        name = value.strip().upper() if isinstance(value, str) else value
        species = {"A": 0, "B": 1}.get(name, name) if isinstance(name, str) else name
        if isinstance(species, bool) or species not in (0, 1):
            raise UserError(f"{option}: {label!r} -> {value!r}; expected 0 or 'A' (A), 1 or 'B' (B)")
        out[_label(str(label))] = int(species)
    return out


def _format_map(type_map: Mapping[str, int]) -> str:
    return ",".join(f"{label}={'AB'[species]}" for label, species in type_map.items())


def assign_species(labels: np.ndarray, type_map: Mapping[str, int] | None, kind: str,
                   where: Callable[[int], str], what: tuple[str, str] = ("species", "species"),
                   aliases: Mapping[str, str] | None = None, option: str = "--type-map") -> np.ndarray:
    """Species (N,) int8, 0 = A / 1 = B, of particles labelled ``labels`` (N,) str.

    ``type_map`` (label → 0 / 1) replaces the defaults of the format ``kind`` (:data:`DEFAULT_LABELS`);
    ``aliases`` give a second label for a label (an element symbol's atomic number), tried after it.
    An unknown label is a one-line :class:`UserError` that starts with ``where(i)`` (``i``: the first
    particle with an unknown label), names the labels found (``what``: singular, plural) and the fix.
    """
    table = DEFAULT_LABELS[kind] if type_map is None else type_map
    aliases = aliases or {}
    names, inverse, counts = np.unique(np.asarray(labels, dtype=str), return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    codes = np.full(len(names), -1, dtype=np.int8)
    for u, name in enumerate(names):
        for candidate in (name, aliases.get(name)):
            if candidate is not None and candidate in table:
                codes[u] = table[candidate]
                break
    unknown = [int(u) for u in np.argsort(-counts, kind="stable") if codes[u] < 0]
    if not unknown:
        return codes[inverse]
    first = int(np.flatnonzero(codes[inverse] < 0)[0])
    shown = ", ".join(str(names[u]) for u in unknown[:8]) + (", …" if len(unknown) > 8 else "")
    noun, verb = (what[0], "is") if len(unknown) == 1 else (what[1], "are")
    if type_map is None:
        by_count = [str(names[u]) for u in np.argsort(-counts, kind="stable")][:2]
        hint = ",".join(f"{name}={'AB'[k]}" for k, name in enumerate(by_count))
        example = f"{option} {hint}" if option.startswith("--") else f'{option}="{hint}"'
        raise UserError(f"{where(first)}: {noun} {shown} {verb} neither A nor B ({_DEFAULTS_SAID[kind]}); "
                        f"name the species with {option}, e.g. {example} (A: the majority species)")
    raise UserError(f"{where(first)}: {noun} {shown} {verb} not in {option} {_format_map(type_map)}; it must "
                    "name every label of the input (the models know only A and B)")


# ---------------------------------------------------------------------------- LAMMPS text files

def _type_labels(species: np.ndarray) -> np.ndarray:
    """LAMMPS type numbers (as text) of the parsers' species (type − 1)."""
    return (species.astype(np.int64) + 1).astype(str)


def read_lammps_data(path: str | Path, type_map: Mapping[str, int] | None = None) -> list[Structure]:
    """One structure from a LAMMPS data file of atom style ``atomic`` (:func:`~hpc_botan.io.lammps_text.parse_data`):
    types 1 → A, 2 → B (or as ``type_map`` says); positions relative to the box's lower corner."""
    data = parse_data(path)
    species = assign_species(_type_labels(data.species), type_map, "lammps", lambda i: f"{path}",
                             ("atom type", "atom types"))
    lo, hi = data.bounds[:, 0], data.bounds[:, 1]
    return [Structure(positions=data.positions - lo, species=species, box=hi - lo, source=str(path), frame=0,
                      ids=data.ids)]


def read_lammps_dump(path: str | Path, type_map: Mapping[str, int] | None = None) -> list[Structure]:
    """Every frame of a LAMMPS text dump (:func:`~hpc_botan.io.lammps_text.parse_dump`) as one structure;
    ``frame`` counts the frames of the file from 0; types as in :func:`read_lammps_data`."""
    out = []
    for k, f in enumerate(parse_dump(path)):
        species = assign_species(_type_labels(f.species), type_map, "lammps", lambda i, k=k: f"{path} frame {k}",
                                 ("atom type", "atom types"))
        out.append(Structure(positions=f.positions, species=species, box=f.box, source=str(path), frame=k,
                             ids=f.ids))
    return out


# ---------------------------------------------------------------------------- extended XYZ

def read_extxyz(path: str | Path, type_map: Mapping[str, int] | None = None) -> list[Structure]:
    """Every frame of an extended XYZ file (as ASE writes them, ``ase.io.write(…, format="extxyz")``).

    Frame: a line with N, a comment line of ``key=value`` pairs read by ASE's parser
    (:func:`ase.io.extxyz.key_val_str_to_dict`: quotes, arrays, booleans as ASE writes them) with
    ``Lattice="a 0 0 0 b 0 0 0 c"`` (orthogonal; σ) and ``Properties`` naming a ``species`` column
    (S: A/B or element symbols, I: 1/2 or other integers) and ``pos:R:3`` (default
    ``species:S:1:pos:R:3``; other columns are skipped), then N rows.  ``pbc`` must be periodic in every
    direction (the default with a Lattice).  ``Temperature=`` / ``temperature=`` / ``T=`` sets the
    structure's temperature.  The species go through :func:`assign_species` with ``type_map``.
    """
    from ase.io.extxyz import key_val_str_to_dict  # ASE: the reference parser of the comment line

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
            info = key_val_str_to_dict(comment.strip()) if comment.strip() else {}
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise lines.error(kc, f"key=value pairs that ASE reads ({' '.join(str(exc).split())})") from None
        box = _xyz_box(info, lines, kc)
        species_col, pos_col, n_cols, integer_species = _xyz_properties(
            info.get("Properties", "species:S:1:pos:R:3"), lines, kc)
        temperature = None
        for key in ("Temperature", "temperature", "T"):
            if key in info:
                value = info[key]
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
                    raise lines.error(kc, f"{key}=<number>", f"{key}={value}")
                temperature = float(value)
                break
        first_row = lines.pos
        labels = []
        xyz = np.empty((n_atoms, 3))
        for row in range(n_atoms):
            kk, value = lines.next_raw(f"{n_atoms} atom rows")
            fields = value.split()
            if len(fields) != n_cols:
                raise lines.error(kk, f"an atom row of {n_cols} columns (from Properties)")
            label = fields[species_col]
            if integer_species:
                label = numbers(lines, kk, [label], 1, "an integer species (Properties species:I:1)", int)[0]
            labels.append(_label(str(label)))
            xyz[row] = numbers(lines, kk, fields[pos_col:pos_col + 3], 3, "numeric positions")
            if not np.isfinite(xyz[row]).all():
                raise lines.error(kk, "finite coordinates")
        frame = len(structures)
        species = assign_species(np.array(labels), type_map, "extxyz",
                                 lambda i, row=first_row, k=frame: f"{path} line {row + i + 1} (frame {k})")
        structures.append(Structure(positions=xyz, species=species, box=box, source=str(path), frame=frame,
                                    temperature=temperature))
    if not structures:
        raise lines.error(0, "the number of atoms (an extended XYZ file)")
    return structures


def _xyz_box(info: dict[str, Any], lines: Lines, k: int) -> np.ndarray:
    """(3,) edge lengths σ of a frame's ``Lattice``, after checking it is orthogonal and periodic."""
    if "Lattice" not in info:
        raise lines.error(k, 'Lattice="a 0 0 0 b 0 0 0 c" (a periodic orthogonal box)')
    matrix = np.asarray(info["Lattice"], dtype=np.float64)  # ASE checked: nine numbers, as 3 × 3
    if np.any(matrix[~np.eye(3, dtype=bool)] != 0) or not (np.diag(matrix) > 0).all():
        raise lines.error(k, 'an orthogonal Lattice "a 0 0 0 b 0 0 0 c" with a, b, c > 0 (triclinic '
                             'boxes are not supported)')
    if "pbc" in info:
        flags = np.atleast_1d(np.asarray(info["pbc"]))
        if flags.dtype.kind not in "bi" or flags.shape not in ((1,), (3,)) or not flags.all():
            said = " ".join(("T" if f else "F") if flags.dtype.kind in "bi" else str(f) for f in flags)
            raise lines.error(k, 'pbc="T T T" (periodic in every direction: the models know only bulk liquids)',
                              f'pbc="{said}"')
    return np.diag(matrix).copy()


def _xyz_properties(spec: Any, lines: Lines, k: int) -> tuple[int, int, int, bool]:
    """(species column, first position column, number of columns, species is an integer column) of a
    ``Properties`` value, read by ASE's :func:`ase.io.extxyz.parse_properties`."""
    from ase.io.extxyz import parse_properties  # ASE (0.65 s to import): only extended XYZ needs it

    try:
        properties, names, dtype, _ = parse_properties(str(spec))
    except (ValueError, IndexError, TypeError):
        raise lines.error(k, "Properties=name:type:count triples (types R, I, S, L)", f"Properties={spec}") from None
    column = 0
    species_col = pos_col = None
    integer_species = False
    for name in names:
        count = properties[name][1]
        kind = dtype[name if count == 1 else f"{name}0"].kind  # O: S (text), i: I, f: R, b: L
        if name == "species":
            if kind not in "Oi" or count != 1:
                raise lines.error(k, "Properties species:S:1 or species:I:1")
            species_col, integer_species = column, kind == "i"
        elif name == "pos":
            if kind != "f" or count != 3:
                raise lines.error(k, "Properties pos:R:3")
            pos_col = column
        column += count
    if species_col is None or pos_col is None:
        raise lines.error(k, "Properties with species and pos columns")
    return species_col, pos_col, column, integer_species


# ---------------------------------------------------------------------------- H5MD

def read_h5md(path: str | Path, type_map: Mapping[str, int] | None = None) -> list[Structure]:
    """The t = 0 structure of an H5MD file.

    This package's trajectory files (``particles/run_000 …``, either layout): frame 0 of ``run_000``,
    the temperature from ``/parameters``.  Any other H5MD file with one group under ``particles``
    (znh5md's, for instance): its first ``position`` frame, ``box/edges`` (3,) or a diagonal (3, 3),
    ``species``, ``id`` if present (each a plain dataset or a time-dependent group, first frame); a
    ``temperature`` attribute of ``/parameters`` if present.  Values are taken as σ (a ``unit``
    attribute is not interpreted).  Species labels: the names of an enum species (hpc_botan's: A, B);
    the element symbols of atomic numbers where the writer stores them (znh5md, whose species are
    ASE's atomic numbers; the number itself is accepted too); else the integer values.
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

        def first_frame(key: str) -> tuple[np.ndarray, h5py.Dataset]:
            """Frame 0 of the element ``key`` (a path below the particle group) and its dataset."""
            if key not in g:
                raise UserError(f"{where}: expected '{key}', found none")
            item = g[key]
            if isinstance(item, h5py.Group):  # time-dependent element: value (F, …), first frame
                if not isinstance(item.get("value"), h5py.Dataset):
                    raise UserError(f"{where}/{key}: expected a 'value' dataset, found none")
                value = item["value"]
                if value.ndim == 0 or value.shape[0] == 0:
                    raise UserError(f"{where}/{key}/value: expected at least one frame, found none")
                return np.asarray(value[0]), value
            if not isinstance(item, h5py.Dataset):
                raise UserError(f"{where}/{key}: expected a dataset or a group, found {type(item).__name__}")
            return np.asarray(item[()]), item

        positions = first_frame("position")[0]
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise UserError(f"{where}/position: expected (N, 3) positions, found shape {positions.shape}")
        if not isinstance(g.get("box"), h5py.Group) or "edges" not in g["box"]:
            raise UserError(f"{where}/box/edges: expected the box edges, found none")
        edges = first_frame("box/edges")[0].astype(np.float64)
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
        if "pbc" in g["box"]:  # znh5md's per-frame flags (not H5MD, beside the boundary attribute)
            if not np.asarray(first_frame("box/pbc")[0]).astype(bool).all():
                raise UserError(f"{where}/box/pbc: expected periodic boundaries in every direction")
        raw_species, species_ds = first_frame("species")
        positions, raw_species = _without_padding(positions, raw_species, where)
        n_atoms = positions.shape[0]
        if raw_species.shape != (n_atoms,):
            raise UserError(f"{where}/species: expected ({n_atoms},) species, found shape {raw_species.shape}")
        labels, aliases, kind = _h5md_labels(raw_species, species_ds, f, where)
        ids = first_frame("id")[0].astype(np.int64)[:n_atoms] if "id" in g else np.arange(n_atoms, dtype=np.int64)
        temperature = None
        if "parameters" in f and "temperature" in f["parameters"].attrs:
            temperature = float(f["parameters"].attrs["temperature"])
    if not np.isfinite(positions).all():
        raise UserError(f"{where}/position: expected finite positions")
    species = assign_species(labels, type_map, kind, lambda i: f"{where}/species", aliases=aliases)
    order = np.argsort(ids, kind="stable")
    return [Structure(positions=positions[order], species=species[order], box=edges,
                      source=str(path), frame=0, temperature=temperature, ids=ids[order])]


def _without_padding(positions: np.ndarray, species: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Frame 0 without the NaN rows that znh5md appends to a frame with fewer particles than the largest."""
    if species.dtype.kind != "f" or not np.isnan(species).any():
        return positions, species
    n = int(np.argmax(np.isnan(species)))
    if not np.isnan(species[n:]).all() or not np.isnan(positions[n:]).all():
        raise UserError(f"{where}/species: expected integer species values, found NaN")
    return positions[:n], species[:n]


def _h5md_labels(values: np.ndarray, ds: h5py.Dataset, f: h5py.File, where: str
                 ) -> tuple[np.ndarray, dict[str, str], str]:
    """(labels (N,) str, aliases, the kind of defaults) of H5MD species ``values`` (N,) read from ``ds``;
    see :func:`read_h5md`."""
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise UserError(f"{where}/species: expected integer species values, found {values[:3].tolist()} …")
    elif values.dtype.kind not in "iu":
        raise UserError(f"{where}/species: expected integer species values, found type {values.dtype}")
    values = values.astype(np.int64)
    enum = h5py.check_enum_dtype(ds.dtype)
    if enum:  # the names of an enum species (hpc_botan's: A = 0, B = 1), the integer as a second label
        names = {int(v): str(k) for k, v in enum.items()}
        return np.array([names.get(int(v), str(v)) for v in values]), {n: str(v) for v, n in names.items()}, "h5md"
    if _atomic_numbers(f, ds):
        from ase.data import chemical_symbols  # ASE, imported only for the files of ASE users (znh5md)

        symbols = {int(z): chemical_symbols[int(z)] for z in np.unique(values) if 0 <= z < len(chemical_symbols)}
        labels = np.array([symbols.get(int(z), str(z)) for z in values])
        # elements are never A or B by default (boron is not species B): these files need a type map
        return labels, {s: str(z) for z, s in symbols.items()}, "elements"
    return values.astype(str), {}, "h5md"


def _atomic_numbers(f: h5py.File, species: h5py.Dataset) -> bool:
    """Whether the species of this file are atomic numbers: files written by znh5md (ASE's ``numbers``;
    it marks what it wrote with an ``ASE_ENTRY_ORIGIN`` attribute, and names itself as the creator)."""
    creator = f["h5md/creator"].attrs.get("name", b"") if "h5md/creator" in f else b""
    creator = creator.decode() if isinstance(creator, bytes) else str(creator)
    return creator == "znh5md" or "ASE_ENTRY_ORIGIN" in species.parent.attrs


READERS: dict[str, Callable[..., list[Structure]]] = {
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


def read_structures(path: str | Path, fmt: str | None = None, type_map: Mapping[str, int] | None = None
                    ) -> list[Structure]:
    """Every structure in ``path``, read with ``fmt`` (data | dump | h5md | extxyz) or by extension.

    ``type_map``: file label → species 0 / 1 (:func:`parse_type_map`), replacing the formats' defaults
    (:data:`DEFAULT_LABELS`); a particle whose label it does not name is refused.
    """
    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt not in READERS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(READERS)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    structures = READERS[fmt](path, type_map)
    for s in structures:
        if not math.isfinite(float(np.prod(s.box))):
            raise UserError(f"{path}: expected a finite box")
    return structures
