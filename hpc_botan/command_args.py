"""Options that several ``hpc-botan`` subcommands share, defined once (argparse only, so that
``hpc-botan --help`` stays fast)."""
from __future__ import annotations

import argparse


def add_command(sub, name: str, summary: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``: ``summary`` in ``hpc-botan --help``, ``description`` and
    ``epilog`` (examples) kept as written in its own ``--help``."""
    return sub.add_parser(name, help=summary, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_config_args(p: argparse.ArgumentParser, example: str | None = "simulation.n_runs=4") -> None:
    """``CONFIG_OR_PRESET`` and ``--set KEY.PATH=VALUE`` (its help shows ``--set example``, if any)."""
    p.add_argument("config", metavar="CONFIG_OR_PRESET", help="YAML config file, or a preset name (quick, paper)")
    shown = f", e.g. --set {example}" if example else ""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help=f"override one config value (YAML syntax){shown}; repeatable")


def add_out_arg(p: argparse.ArgumentParser) -> None:
    """``--out RUN_DIR``, the run directory a command creates or resumes."""
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (created if needed)")


def add_selection_args(p: argparse.ArgumentParser, verb: str, task_help: str) -> None:
    """``--model`` and ``--task``: which model families and tasks a command works on."""
    p.add_argument("--model", dest="models", action="append", choices=("botan", "ntgnn"),
                   help=f"{verb} only this model family (repeatable; default: both)")
    p.add_argument("--task", dest="tasks", action="append", metavar="NAME", help=task_help)
