"""``hpc-botan config CONFIG``: a preset or config file, resolved, as YAML."""
from __future__ import annotations

import argparse
import sys

from hpc_botan.command_args import add_config_args


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="print a preset or config file, resolved, as YAML",
                       description="Print the resolved configuration (defaults filled in) as YAML: a starting "
                                   "point for your own versioned config file.")
    add_config_args(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.config import load_config

    sys.stdout.write(load_config(args.config, args.overrides).to_yaml())
    return 0
