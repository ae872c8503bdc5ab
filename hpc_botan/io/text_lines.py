"""Text files as numbered lines, for readers whose every complaint is one line ``FILE line K: expected …``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError


class Lines:
    """A text file as numbered lines with ``#`` comments removed, for one-line error messages."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise UserError(f"{path} line 1: expected a text file, found binary data") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
        self.raw = text.splitlines()
        self.pos = 0  # index of the next line to read

    def error(self, line_index: int, expected: str, found: str | None = None) -> UserError:
        """``FILE line K: expected …`` for the 0-based ``line_index`` (K is 1-based)."""
        if line_index >= len(self.raw):
            return UserError(f"{self.path} line {line_index + 1}: expected {expected}, found the end of the file")
        shown = self.raw[line_index].strip() if found is None else found
        return UserError(f"{self.path} line {line_index + 1}: expected {expected}, found {shown[:60]!r}")

    def at_end(self) -> bool:
        return self.pos >= len(self.raw)

    def at_end_after_blank_lines(self) -> bool:
        """Skip blank lines (between frames); whether the file ends there."""
        while not self.at_end() and not self.raw[self.pos].strip():
            self.pos += 1
        return self.at_end()

    def next_raw(self, expected: str) -> tuple[int, str]:
        if self.at_end():
            raise self.error(self.pos, expected)
        k = self.pos
        self.pos += 1
        return k, self.raw[k]


def numbers(lines: Lines, k: int, fields: list[str], count: int, expected: str, kind=float) -> list:
    """The first ``count`` fields of line ``k`` as numbers, or the one-line error."""
    if len(fields) < count:
        raise lines.error(k, expected)
    try:
        return [kind(x) for x in fields[:count]]
    except ValueError:
        raise lines.error(k, expected) from None


def species_from_types(types: np.ndarray, lines: Lines, k: int) -> np.ndarray:
    if (types < 1).any() or (types > 127).any():
        raise lines.error(k, "atom types 1 (A) and 2 (B)", f"type {int(types[(types < 1) | (types > 127)][0])}")
    return (types - 1).astype(np.int8)


def sorted_by_id(ids: np.ndarray, *arrays: np.ndarray, lines: Lines, k: int) -> list[np.ndarray]:
    if len(np.unique(ids)) != len(ids):
        raise lines.error(k, "distinct atom ids", "a repeated atom id")
    order = np.argsort(ids, kind="stable")
    return [ids[order], *(a[order] for a in arrays)]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
