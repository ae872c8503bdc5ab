"""LAMMPS binary restart files of the simulate stage: which one a run may continue from.

``prepare.in`` and ``isoconf.in`` keep two: ``FILE`` (the newest) and ``FILE.previous``, each
written under ``FILE.tmp`` and renamed, so a name only ever holds a finished write.  A disk that
fills up, a quota or a node failure can still leave a short or damaged file behind a final name;
LAMMPS writes its magic string at the start *and* at the end of a restart file, so a file
without both is not complete.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("hpc_botan.simulate")

#: LAMMPS' MAGIC_STRING (write_restart.cpp); the file ends with it and its terminating NUL
MAGIC = b"LammpS RestartT"


def previous_path(path: str | Path) -> Path:
    return Path(f"{path}.previous")


def is_complete_restart(path: str | Path) -> bool:
    """Whether ``path`` is a regular file that starts and ends with LAMMPS' restart magic string."""
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            return False
        size = path.stat().st_size
        if size < 2 * len(MAGIC) + 1:
            return False
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC))
            fh.seek(-(len(MAGIC) + 1), os.SEEK_END)
            tail = fh.read()
    except OSError:
        return False
    return head == MAGIC and tail == MAGIC + b"\0"


def usable_restart(path: str | Path) -> Path | None:
    """The restart a run continues from: ``path``, else ``path.previous``, else None (start over).

    A damaged ``path`` is removed (with a warning), so that the next periodic restart does not
    push it into ``.previous`` in place of the good one.
    """
    path = Path(path)
    if is_complete_restart(path):
        return path
    previous = previous_path(path)
    if path.exists() or path.is_symlink():
        log.warning("%s: incomplete or damaged restart file, removed; continuing from %s", path,
                    previous if is_complete_restart(previous) else "the start")
        path.unlink()
    return previous if is_complete_restart(previous) else None


def remove_restarts(path: str | Path) -> None:
    """Remove a run's restart files (``path``, ``.previous``, ``.tmp``) once they are not needed."""
    for p in (Path(path), previous_path(path), Path(f"{path}.tmp")):
        p.unlink(missing_ok=True)
