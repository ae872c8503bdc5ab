"""``hpc-botan verify RUN_DIR``: check every targets shard and the index."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify", help="check every targets shard and the index",
        description="Check RUN_DIR/targets: shapes, dtypes, NaN/inf, the checksums recorded at write time, and "
                    "that every configuration is present exactly once. Prints each problem on one line; exit "
                    "code 2 if there is any.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import RunLayout, load_run_config
    from hpc_botan.io.shards import verify_targets
    from hpc_botan.targets.stage import work_items

    metas = work_items(load_run_config(args.run_dir), args.run_dir)
    problems = verify_targets(RunLayout(args.run_dir).targets, metas)
    for problem in problems:
        print(f"hpc-botan: verify: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"verify: {len(metas)} configurations OK in {Path(args.run_dir) / 'targets'}")
    return 0
