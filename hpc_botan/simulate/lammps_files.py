"""Readers for the LAMMPS text files the simulate stage produces (data files, single-frame dumps)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError


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
