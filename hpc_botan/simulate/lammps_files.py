"""Readers for the LAMMPS text files the simulate stage produces (data files, single-frame dumps)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io_utils import write_text_atomic


def read_data_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read an atomic-style LAMMPS data file written by ``write_data``.

    Returns ``(ids, species, positions, images, box)``: ids (N,) int sorted ascending,
    species (N,) int8 (LAMMPS type − 1, so A = 0, B = 1), positions (N, 3) float64 in σ
    (as written, normally inside the box), images (N, 3) int64 image flags (0 if absent),
    box (3, 2) float64 lower/upper bounds per axis.  LAMMPS's unwrapped position of atom i
    is ``positions[i] + images[i] * (box[:, 1] - box[:, 0])``.
    Raises :class:`UserError` on a malformed file.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    n_atoms = None
    box = np.zeros((3, 2))
    atoms_at = None
    for k, line in enumerate(lines):
        words = line.split()
        if len(words) == 2 and words[1] == "atoms":
            n_atoms = int(words[0])
        for axis, tag in enumerate(("xlo", "ylo", "zlo")):
            if len(words) >= 4 and words[2] == tag:
                box[axis] = float(words[0]), float(words[1])
        if words and words[0] == "Atoms":
            atoms_at = k
            break
    if n_atoms is None or atoms_at is None:
        raise UserError(f"{path}: not a LAMMPS data file (no atom count or Atoms section)")
    rows = [ln.split() for ln in lines[atoms_at + 1:] if ln.strip()][:n_atoms]
    if len(rows) != n_atoms:
        raise UserError(f"{path}: Atoms section has {len(rows)} lines, header says {n_atoms}")
    try:
        table = np.array([[float(x) for x in row[:5]] + [float(x) for x in (row[5:8] if len(row) >= 8 else "000")]
                          for row in rows])
    except ValueError:
        raise UserError(f"{path}: Atoms section is not 'id type x y z [ix iy iz]'") from None
    table = table[np.argsort(table[:, 0])]
    return (table[:, 0].astype(np.int64), (table[:, 1] - 1).astype(np.int8), table[:, 2:5].copy(),
            table[:, 5:8].astype(np.int64), box)


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
