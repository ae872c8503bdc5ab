"""``hpc-botan plan CONFIG``: the cost of a run, before anything is submitted.

Only argparse is imported at module level, so that ``hpc-botan --help`` stays fast.
"""
from __future__ import annotations

import argparse
import math

from hpc_botan.command_args import add_config_args
from hpc_botan.errors import UserError

DESCRIPTION = """\
Print, for every stage and temperature of CONFIG: the MD steps of one simulate task (one
configuration: its preparation and its isoconfigurational runs), the time of that task at the
speed of this machine's LAMMPS (measured by a short run at the config's N with the accelerator
'hpc-botan doctor' picks here, about 10 s at N = 4096), the core- or GPU-hours, the number of
Slurm jobs and job arrays (split below MaxArraySize), the requeues a task needs at
launch.slurm.time_min, and the disk each stage fills (trajectories, restarts, target shards,
checkpoints).  Where the time points are 'calibrated', the pilot is planned too and the
production uses the estimated tau_alpha.

Run it where the jobs will run, or give the speed of those nodes with --steps-per-second (the
login node of a GPU cluster measures its own CPU).  Submits nothing and writes nothing."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``plan`` with the top-level subparsers."""
    p = subparsers.add_parser("plan", help="the cost of a run (hours, jobs, requeues, disk) before submitting it",
                              formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION,
                              epilog="examples:\n  hpc-botan plan paper --executor slurm\n"
                                     "  hpc-botan plan paper --steps-per-second 4000   # a GPU node's speed")
    add_config_args(p, example=None)
    p.add_argument("--executor", choices=("local", "slurm"), default="slurm",
                   help="slurm (default): read MaxArraySize from scontrol (or launch.slurm.max_array_size); "
                        "local: no job arrays")
    p.add_argument("--steps-per-second", type=float, metavar="S",
                   help="MD steps per second of one LAMMPS run on the compute nodes, instead of measuring here")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    if args.steps_per_second is not None and not (math.isfinite(args.steps_per_second) and args.steps_per_second > 0):
        raise UserError(f"--steps-per-second {args.steps_per_second}: expected a positive number of MD steps per second")
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.config import load_config
    from hpc_botan.pipeline.plan import format_plan
    from hpc_botan.pipeline.planning import build_plan

    cfg = load_config(args.config, args.overrides)
    print(format_plan(build_plan(cfg, executor=args.executor, steps_per_second=args.steps_per_second)))
    return 0
