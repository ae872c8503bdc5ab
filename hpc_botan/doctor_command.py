"""``hpc-botan doctor [CONFIG]``: what this machine offers each stage of a run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = (
    "Report the LAMMPS found (version, accelerator packages, whether lj/smooth/linear, its /omp, "
    "/gpu and /kk variants and the table styles exist), the accelerator the simulate stage would "
    "use, mpi4py's MPI library and the MPI launcher, torch and its CUDA devices with the device "
    "and backend training would use, and whether Slurm answers. Exits 1 when something a stage "
    "of CONFIG needs is missing (LAMMPS for simulated runs, an MPI launcher for more than one "
    "rank, Slurm with --executor slurm).")

EPILOG = """\
examples:
  hpc-botan doctor quick
  hpc-botan doctor paper --executor slurm --set launch.slurm.gpus_per_node=4
  hpc-botan doctor runs/ka   (a run directory: its config.yaml)"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "doctor", help="what this machine offers each stage; exit 1 if a configured stage cannot run here",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("config", nargs="?", default="quick", metavar="CONFIG_OR_RUN_DIR",
                   help="preset, config file or run directory whose stages are checked (default: quick)")
    p.add_argument("--executor", choices=("local", "slurm", "debug"), default="local",
                   help="where the stages would run (slurm: Slurm must answer)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config value (repeatable)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.config import load_config
    from hpc_botan.doctor import diagnose
    from hpc_botan.io.rundir import CONFIG_NAME

    where = Path(args.config)
    source = str(where / CONFIG_NAME) if (where / CONFIG_NAME).is_file() else args.config
    findings = diagnose(load_config(source, args.overrides), args.executor)
    print(f"doctor: {source}, executor {args.executor}")
    for finding in findings:
        print(finding.line())
    blocking = [f for f in findings if f.blocking]
    if blocking:
        print(f"doctor: {len(blocking)} thing(s) a configured stage needs are missing: "
              f"{', '.join(f.topic for f in blocking)}", file=sys.stderr)
        return 1
    print("doctor: every configured stage can run here")
    return 0
