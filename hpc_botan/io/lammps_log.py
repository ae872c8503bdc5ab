"""Thermodynamic output of LAMMPS log files (``log.lammps``, the simulate stage's ``*.log``).

A log holds one thermo block per ``run``: a header line whose first word is ``Step`` (the columns
of ``thermo_style``), then one line of numbers per thermo output, ending at ``Loop time of …``
(or where the log ends, for a run that is still going or was killed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError


def parse_thermo(text: str) -> list[dict[str, np.ndarray]]:
    """Every thermo block of a LAMMPS log: a list of {column name: (rows,) float64 array}, in order.

    Lines inside a block that are not as many numbers as the header has columns (warnings LAMMPS
    prints between thermo lines) are skipped.
    """
    blocks, columns, rows = [], None, []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Step"]:
            if columns is not None:
                blocks.append((columns, rows))
            columns, rows = words, []
        elif columns is not None and line.startswith("Loop time of"):
            blocks.append((columns, rows))
            columns, rows = None, []
        elif columns is not None and len(words) == len(columns):
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                continue
    if columns is not None:
        blocks.append((columns, rows))
    return [{name: np.array([r[k] for r in rows], dtype=np.float64) for k, name in enumerate(cols)}
            for cols, rows in blocks]


def read_thermo(path: str | Path) -> list[dict[str, np.ndarray]]:
    """:func:`parse_thermo` of the log file ``path`` (one-line :class:`UserError` if it cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the LAMMPS log ({exc.strerror})") from None
    return parse_thermo(text)
