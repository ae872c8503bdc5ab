"""Small file helpers shared by every stage: atomic writes so that nothing half-written counts."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import stat
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
    resume logic) mistakes it for a finished file, and names the writer (``.NAME.HOST-PID.XXXX.tmp``)
    so that :func:`remove_dead_writers_temporaries` can tell a killed writer's from a live one's.
    On error it is removed and ``path``, if it existed, is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp", dir=path.parent)
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


def _writer_tag(host: str | None = None, pid: int | None = None) -> str:
    """``HOST-PID`` of the writing process, as it appears in its temporaries' names (no dots)."""
    host = (host or socket.gethostname()).replace(".", "_").replace("-", "_")
    return f"{host}-{os.getpid() if pid is None else pid}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        return True
    return True


def remove_dead_writers_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of ``path`` whose writer was a process of this host that no longer runs.

    For outputs that no lock protects (a user's ``--out``): a temporary of a live process, or of
    another host (which cannot be checked from here), is kept.  Returns the removed paths.
    """
    path = Path(path)
    host = _writer_tag().rsplit("-", 1)[0]
    removed = []
    for tmp in sorted(path.parent.glob(f".{path.name}.*.tmp")):
        tag = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        writer_host, _, pid = tag.rpartition("-")
        if writer_host == host and pid.isdigit() and not _pid_alive(int(pid)) and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def crc32(array) -> int:
    """CRC-32 of an array's bytes (C order): the checksum recorded beside every stored dataset."""
    return zlib.crc32(np.ascontiguousarray(array).tobytes()) & 0xFFFFFFFF


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


#: What :func:`exclusive_lock` writes into its file; a file with other content is not a lock.
_LOCK_LINE = re.compile(r"^(host \S+ pid \d+ since [0-9: -]+)?\s*$")


def _open_lock_file(path: Path) -> int:
    """Open (or create) the lock file ``path`` for writing without following a symlink at it.

    Refuses, with a one-line :class:`UserError`, a symlink, anything but a regular file, a file
    with other hard links, and a file whose content is not a lock line: a lock never truncates
    a file it did not create.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic link; a lock file is never followed (remove the link)") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise UserError(f"{path}: not a lock file of hpc_botan (not a regular file with one name); remove it")
        head = os.pread(fd, 200, 0)
        if info.st_size > 200 or not _LOCK_LINE.match(head.decode("utf-8", "replace")):
            raise UserError(f"{path}: not a lock file of hpc_botan (it holds other data); remove it if it is not "
                            "needed")
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` for the block; fail at once if another process holds it.

    The kernel drops the lock when its process dies, so a killed job never leaves a stale
    lock behind.  The holder writes ``host pid start-time`` into the file, and a refused process
    names it.  ``what`` names the protected work in the error message.  The file is opened without
    following symlinks and only if it is a lock file (see :func:`_open_lock_file`).  See
    docs/architecture.md ("Locks") for the file systems on which flock is shared between nodes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(_open_lock_file(path), "r+") as fh:
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
    try:  # never follows a symlink, never blocks on a FIFO
        fh = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "r")
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
