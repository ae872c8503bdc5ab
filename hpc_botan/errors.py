"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in the input (config, files, environment) with a message that says how to fix it."""


class ConfigError(UserError):
    """A configuration value or key is wrong; the message starts with the key path."""


class LammpsError(UserError):
    """LAMMPS is missing or a LAMMPS run failed; the message names the log file."""


#: errno values that say the file system, not the program, refused a write or a read.
_STORAGE_ERRNOS = {
    28: "no space left on the device",        # ENOSPC
    27: "file too large (a file-size limit)",  # EFBIG
    122: "disk quota exceeded",                # EDQUOT
    30: "read-only file system",               # EROFS
    13: "permission denied",                   # EACCES
    1: "operation not permitted",              # EPERM
}
#: How torch and HDF5 word the same failures (they raise RuntimeError or an OSError without errno).
_STORAGE_PHRASES = {
    "file write failed": "a write failed (no space left, or a file-size limit)",
    "no space left": _STORAGE_ERRNOS[28],
    "file too large": _STORAGE_ERRNOS[27],
    "disk quota": _STORAGE_ERRNOS[122],
    "read-only file system": _STORAGE_ERRNOS[30],
    "permission denied": _STORAGE_ERRNOS[13],
}


def storage_error(exc: BaseException) -> UserError | None:
    """A one-line :class:`UserError` for an exception that means a full disk, a size limit, a quota,
    a read-only file system or missing permissions (``OSError`` from Python, h5py or numpy; the
    ``RuntimeError`` of ``torch.save``); None for any other exception.

    Every writer of the package writes to a temporary name and renames it, so nothing finished
    is lost: the message says to make room (or fix the permissions) and re-run.
    """
    # torch.save's writer fails twice: the write ("file write failed"), then, while closing, its
    # own consistency check ("unexpected pos"): the first cause is in the exception's context
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    reason = None
    for link in chain:
        if isinstance(link, OSError) and link.errno in _STORAGE_ERRNOS:
            reason = _STORAGE_ERRNOS[link.errno]
        elif isinstance(link, (OSError, RuntimeError)):
            text = str(link).lower()
            reason = next((why for phrase, why in _STORAGE_PHRASES.items() if phrase in text), None)
        if reason is not None:
            exc = link
            break
    if reason is None:
        return None
    where = getattr(exc, "filename", None)
    if where is None:  # h5py: "Unable to … (… name = '/path', errno = 28, …)"
        text = str(exc)
        start = text.find("name = '")
        where = text[start + 8:text.find("'", start + 8)] if start >= 0 else None
    place = f"{where}: " if where else ""
    return UserError(f"{place}{reason}; finished files are intact (every output is written under a temporary "
                     "name, then renamed): make room or fix the permissions, then re-run the same command")
