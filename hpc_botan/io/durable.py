"""Small file helpers shared by every stage: atomic writes so that nothing half-written counts."""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from hpc_botan.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name starts with ``.`` and ends with ``.tmp`` so that no reader (and no
    resume logic) mistakes it for a finished file.  On error it is removed and ``path``,
    if it existed, is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give the finished file the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~umask)
            _fsync(tmp_path)  # the data is on disk before the name points at it
        os.replace(tmp_path, path)
        _fsync(path.parent)  # and the new name survives a crash of the node
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    """fsync a file or a directory; file systems that cannot sync a directory are tolerated."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # EINVAL: some file systems do not sync directories
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that :func:`atomic_path` writers of ``path`` left behind (killed mid-write).

    Call it only while holding the lock that every writer of ``path`` holds: then no live writer
    owns one of them.  Returns the removed paths.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def crc32(array) -> int:
    """CRC-32 of an array's bytes (C order): the checksum recorded beside every stored dataset."""
    return zlib.crc32(np.ascontiguousarray(array).tobytes()) & 0xFFFFFFFF


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` for the block; fail at once if another process holds it.

    The kernel drops the lock when its process dies, so a killed job never leaves a stale
    lock behind.  The holder writes ``host pid start-time`` into the file, and a refused process
    names it.  ``what`` names the protected work in the error message.  See docs/architecture.md
    ("Locks") for the file systems on which flock is shared between nodes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise UserError(f"{what} is being worked on by another process ({holder}; lock {path}); "
                            "wait for it to finish, then re-run") from None
        except OSError as exc:  # ENOLCK, ENOSYS, EOPNOTSUPP: a file system mounted without locks
            raise UserError(f"{path}: the file system refuses locks ({exc.strerror}); run directories need "
                            "flock shared between nodes (docs/architecture.md, 'Locks')") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"host {socket.gethostname()} pid {os.getpid()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def lock_holder(path: str | os.PathLike) -> str | None:
    """Who holds the :func:`exclusive_lock` on ``path`` now (its ``host pid since`` line), or None."""
    try:
        fh = open(path, "r")
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "unknown"
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def up_to_date(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> bool:
    """Whether ``output`` exists and was written no earlier than every existing file of ``inputs``
    (what ``make`` asks of a target: a stage whose outputs are older than its inputs runs again)."""
    try:
        written = os.stat(output).st_mtime_ns
    except OSError:
        return False
    for path in inputs:
        try:
            if os.stat(path).st_mtime_ns > written:
                return False
        except OSError:
            continue
    return True
