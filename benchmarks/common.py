"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM), MB.

    Not ``getrusage``'s ru_maxrss: Linux carries that over ``exec`` from the forked parent, so a
    child started by a big parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")
