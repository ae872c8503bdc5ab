"""New HDF5 files, written so that a full disk is one clean error, never a crash.

HDF5 writing straight to a file system that fails mid-way (no space left, a quota, a file-size
limit) reports the failures from h5py's object destructors and then crashes the process with a
segmentation fault while closing the file.  Two ways around it, by the size of the file:

* :func:`new_hdf5_file` builds the file in memory (HDF5's core driver without a backing store) and
  writes its image at the end with plain Python I/O: a failing write is an ``OSError`` with its
  errno.  For files that fit in memory (trajectories of one configuration, the index, predictions).
* :func:`ensure_free_space` is called before each large write into a file that streams to disk (a
  targets shard of many configurations): it refuses, in one line, a write that the file system or
  the process's file-size limit cannot take.

Both write to a temporary name and rename (:func:`hpc_botan.io.durable.atomic_path`).
"""
from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path
from typing import Iterator

import h5py

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path

#: Room kept beyond the data itself: HDF5 metadata, chunk padding, other writers (bytes, fraction).
SPACE_MARGIN_BYTES = 1 << 20
SPACE_MARGIN_FRACTION = 0.1


@contextlib.contextmanager
def new_hdf5_file(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Yield a new, empty HDF5 file that appears at ``path`` (atomically) when the block succeeds.

    The file lives in memory until then (its size in RAM); on error nothing is written.
    """
    path = Path(path)
    f = h5py.File(f"{path.name}.in-memory", "w", driver="core", backing_store=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    with atomic_path(path) as tmp:
        tmp.write_bytes(image)


def ensure_free_space(path: str | os.PathLike, n_bytes: int, shown: str | os.PathLike | None = None) -> None:
    """Refuse (one-line :class:`UserError` naming ``shown``, default ``path``) to grow the file ``path`` by
    ``n_bytes`` if the file system's free space or this process's file-size limit (``ulimit -f``)
    cannot take it, with a margin."""
    path = Path(path)
    where = shown or path
    needed = int(n_bytes * (1 + SPACE_MARGIN_FRACTION)) + SPACE_MARGIN_BYTES
    current = path.stat().st_size if path.exists() else 0
    stats = os.statvfs(path.parent)
    free = stats.f_bavail * stats.f_frsize
    if free < needed:
        raise UserError(f"{where}: no space left on the device for {needed / 1e6:.1f} MB more ({free / 1e6:.1f} MB "
                        "free); finished files are intact: make room, then re-run the same command")
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and current + needed > soft:
        raise UserError(f"{where}: the file would grow past this process's file-size limit (ulimit -f: "
                        f"{soft / 1e6:.1f} MB); finished files are intact: raise the limit, then re-run")
