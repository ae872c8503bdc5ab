"""``hpc-botan``: the command line.  Thin: parse, hand the arguments to the command's handler.

Every subcommand lives in its own ``command`` module, listed once in :data:`COMMAND_MODULES`.

Every user mistake ends as one line on stderr (``hpc-botan: error: …``) and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hpc_botan.errors import UserError, storage_error
from hpc_botan.version import __version__

DESCRIPTION = """\
hpc_botan: simulate a Kob–Andersen glass-former with LAMMPS, measure how every particle and
neighbour pair moves, and train BOTAN graph networks to predict it from structure alone.

A CONFIG is a YAML file or a built-in preset (quick: minutes on a laptop; paper: the
published data set, for a cluster).  Every command works in a run directory (--out) that
holds the resolved config.yaml and every stage's files; re-running a command resumes it."""

EPILOG = """\
examples:
  hpc-botan run quick --out runs/quick        # everything, ending with runs/quick/report/report.html
  hpc-botan predict runs/quick new.data --out predictions.h5
  hpc-botan simulate quick --out runs/quick
  hpc-botan calibrate paper --out /scratch/ka --executor slurm   # the pilot that measures tau_alpha
  hpc-botan simulate paper --out /scratch/ka --executor slurm --set launch.slurm.partition=gpu
  hpc-botan analyze fs runs/quick
  hpc-botan config quick > my_run.yaml      # start your own versioned config from a preset"""


#: The registry of subcommands, in the order ``hpc-botan --help`` lists them: every command is in its own
#: module, whose ``add_parser(subparsers)`` registers a parser with ``set_defaults(handler=fn)``,
#: ``fn(args) -> exit code``.  They import only argparse (and small helpers) at module level, so that
#: ``hpc-botan --help`` stays fast; the work is imported when a command runs.
#: ``run`` (the whole job) first, then the stages in the order they run, then the tools.
COMMAND_MODULES: tuple[str, ...] = (
    "hpc_botan.pipeline.command",
    "hpc_botan.simulate.command",
    "hpc_botan.targets.command",
    "hpc_botan.targets.import_command",
    "hpc_botan.targets.verify_command",
    "hpc_botan.analysis_command",
    "hpc_botan.train.command",
    "hpc_botan.train.import_weights_command",
    "hpc_botan.evaluate.command",
    "hpc_botan.pipeline.status_command",
    "hpc_botan.pipeline.plan_command",
    "hpc_botan.calibrate.command",
    "hpc_botan.baselines.command",
    "hpc_botan.report.command",
    "hpc_botan.predict.command",
    "hpc_botan.predict.export_command",
    "hpc_botan.plots.command",
    "hpc_botan.config_command",
    "hpc_botan.doctor_command",
    "hpc_botan.completion_command",
)


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    """-q/-v on ``p``.  The main parser sets the defaults; every subcommand accepts them too, with
    SUPPRESS as its default, so that ``hpc-botan status -q RUN`` and ``hpc-botan -q status RUN`` agree."""
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors")
    p.add_argument("-v", "--verbose", action="count", default=0 if default is False else default,
                   help="more detail: debug messages of hpc_botan (-vv: of every library too)")


def _subcommand_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` (subcommands, and their subcommands)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):   # aliases map to the same parser
                yield child
                yield from _subcommand_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpc-botan", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hpc_botan {__version__}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    for child in _subcommand_parsers(parser):
        _add_verbosity(child, argparse.SUPPRESS)
    return parser


#: Commands that continue where an interrupted run of them stopped (the others start again).
RESUMABLE = ("simulate", "targets", "import", "train", "import-weights", "calibrate", "run")

#: Commands that write into their run directory (RUN_DIR, or --out for simulate and run).
WRITES_RUN_DIR = ("simulate", "targets", "analyze", "train", "import-weights", "evaluate", "calibrate", "baselines",
                  "report", "plot", "run")


def _quiet_storage_unraisable() -> None:
    """Drop the tracebacks that a full disk makes h5py print while it closes a file.

    h5py flushes in ``__dealloc__``, where an exception cannot propagate: Cython prints it through
    ``sys.excepthook`` and ``sys.unraisablehook``.  The write that failed first is raised, and
    reported in one line, anyway.
    """
    if getattr(sys.excepthook, "hpc_botan_quiet_storage", False):
        return  # installed by an earlier main() of this process: wrap the hooks once
    unraisable, excepthook = sys.unraisablehook, sys.excepthook

    def unraisable_hook(info):
        if storage_error(info.exc_value) is None:
            unraisable(info)

    def except_hook(kind, value, tb):
        if storage_error(value) is None:
            excepthook(kind, value, tb)

    except_hook.hpc_botan_quiet_storage = True
    sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_storage_unraisable()
    if args.quiet and args.verbose:
        print("hpc-botan: error: -q/--quiet and -v/--verbose contradict each other", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.DEBUG if args.verbose >= 2 else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.verbose:
        logging.getLogger("hpc_botan").setLevel(logging.DEBUG)
    try:
        if args.command in WRITES_RUN_DIR:
            from hpc_botan.io.rundir import check_writable_run_dir  # imported here: --help stays fast

            written = getattr(args, "run_dir", None) or getattr(args, "out", None)
            if written is not None:
                check_writable_run_dir(written)
        return args.handler(args)
    except UserError as exc:
        print(f"hpc-botan: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        storage = storage_error(exc)  # a full disk or a read-only directory is the user's to fix
        if storage is None:
            raise
        print(f"hpc-botan: error: {storage}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command in RESUMABLE:
            print("hpc-botan: interrupted; re-run the same command to resume", file=sys.stderr)
        else:  # these write their outputs whole at the end (temporary name, then rename)
            print(f"hpc-botan: interrupted; {args.command} writes its outputs only when it finishes, so nothing "
                  "was written: re-run the same command to start again", file=sys.stderr)
        return 130
