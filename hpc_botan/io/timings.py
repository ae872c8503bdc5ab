"""Stage timings: ``RUN_DIR/pipeline/timings/<stage>[.<part>].json``, one per successful execution.

Each successful execution of a stage (or of one part of it, e.g. one configuration or one
element of the training job array) writes its start, end, duration, host and executor; the
report adds them up.  A killed attempt writes nothing, so the figures are those of the attempts
that completed.
"""
from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from hpc_botan.io.durable import write_text_atomic
from hpc_botan.io.rundir import RunLayout


@contextlib.contextmanager
def timed_stage(run_dir: str | Path, stage: str, part: str = "", executor: str = "local") -> Iterator[None]:
    """Record the wall time of the block as a timing of ``stage`` (only if the block succeeds)."""
    started = time.time()
    yield
    finished = time.time()
    name = f"{stage}.{part}" if part else stage
    record = {"stage": stage, "part": part, "started": started, "finished": finished,
              "seconds": finished - started, "host": socket.gethostname(), "executor": executor}
    write_text_atomic(RunLayout(run_dir).timings / f"{name.replace('/', '_')}.json", json.dumps(record))


def stage_timings(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Stage → {"seconds": summed over parts, "wall": last end − first start, "parts": n, "hosts"}."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(RunLayout(run_dir).timings.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            rec = {k: rec[k] for k in ("stage", "started", "finished", "seconds")} | {"host": rec.get("host", "?")}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a timing is informative only; never fail a report over one
        s = out.setdefault(rec["stage"], {"seconds": 0.0, "started": rec["started"], "finished": rec["finished"],
                                          "parts": 0, "hosts": set()})
        s["seconds"] += rec["seconds"]
        s["started"] = min(s["started"], rec["started"])
        s["finished"] = max(s["finished"], rec["finished"])
        s["parts"] += 1
        s["hosts"].add(rec.get("host", "?"))
    for s in out.values():
        s["wall"] = s["finished"] - s["started"]
        s["hosts"] = sorted(s["hosts"])
    return out
