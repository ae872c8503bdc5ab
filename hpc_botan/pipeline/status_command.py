"""``hpc-botan status RUN_DIR``: which stages of a run are finished and what is left of the others.

Only argparse is imported at module level, so that ``hpc-botan --help`` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_botan.errors import UserError

DESCRIPTION = """\
For every stage of a run, in the order 'hpc-botan run' runs them, say whether it is finished
(everything it writes is there and complete, and newer than what it is computed from) and, if
not, which of its parts are left: configurations to simulate, training groups (pretraining, then
one per temperature and time point).  Reads the run directory only; exits 0 when every stage is
finished, 3 otherwise."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``status`` with the top-level subparsers."""
    p = subparsers.add_parser("status", help="which stages of a run are finished, and what is left",
                              formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION,
                              epilog="example: hpc-botan status runs/quick")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(handler=_run)
    return p


def status_lines(run_dir: Path, cfg, stages) -> tuple[list[str], bool]:
    """One line per stage of ``stages`` and whether all of them are finished."""
    lines, finished = [], True
    for stage in stages:
        if stage.launch == "resolve" and stage.done(run_dir, cfg):
            # the run directory's configuration is resolved already, so the stage no longer applies to it
            lines.append(f"{stage.name:10s} finished")
            continue
        if not stage.applies(cfg):
            lines.append(f"{stage.name:10s} not part of this run ({stage.absent_because(cfg)})")
            continue
        try:
            parts = stage.parts(run_dir, cfg)
        except UserError as exc:  # e.g. training settings that do not fit the imported targets
            finished = False
            lines.append(f"{stage.name:10s} cannot be planned: {exc}")
            continue
        if not parts:
            lines.append(f"{stage.name:10s} finished")
            continue
        finished = False
        left = "" if parts == [""] else (f": {len(parts)} part(s) left, {', '.join(parts[:4])}"
                                         + (" …" if len(parts) > 4 else ""))
        lines.append(f"{stage.name:10s} to do{left}  ({stage.summary})")
    return lines, finished


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast (no torch)
    from hpc_botan.io.rundir import load_run_config

    run_dir = Path(args.run_dir)
    cfg = load_run_config(run_dir)  # a wrong path is refused before the registry's imports
    # the registry imports every stage (torch, the plotting stack): only when the command runs
    from hpc_botan.registry import STAGES

    lines, finished = status_lines(run_dir, cfg, STAGES)
    print("\n".join(lines))
    return 0 if finished else 3
