"""``hpc-botan targets RUN_DIR``: the ensemble-averaged targets and graphs of every configuration (MPI)."""
from __future__ import annotations

import argparse

from hpc_botan.command_args import add_command
from hpc_botan.errors import UserError

DESCRIPTION = (
    "Compute, for every simulated configuration, the graph (pairs closer than 2.0 at t = 0) and "
    "the isoconfigurational averages: propensity S_i(t), pair-distance change E_ij(t), "
    "cage-relative displacement, D2min, the locally averaged displacement, F_s and the noise "
    "ceilings.\n\nRun it under MPI to spread configurations over ranks; each rank writes "
    "RUN_DIR/targets/shard-<rank>.h5 and rank 0 writes RUN_DIR/targets/index.h5. Complete shards "
    "are reused, so re-running resumes.")


def add_parser(sub) -> None:
    p = add_command(sub, "targets", "ensemble-averaged targets and graphs of every configuration (MPI)", DESCRIPTION,
                    "examples:\n  hpc-botan targets runs/quick\n  mpirun -n 8 hpc-botan targets /scratch/ka")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (rank 0 shows one by default)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return compute_targets(args.run_dir, show_progress=not (args.no_progress or args.quiet))


def compute_targets(run_dir: str, *, show_progress: bool) -> int:
    """The targets of ``run_dir`` on the ranks of this MPI world; rank 0 prints where they are.  Exit code."""
    # imported when the command runs: 'hpc-botan --help' stays fast (mpi4py starts MPI)
    from hpc_botan.plan.mpi_world import world
    from hpc_botan.targets.stage import run_targets

    comm = world()
    try:
        index = run_targets(run_dir, comm, show_progress=show_progress)
    except UserError:
        if comm.Get_rank() != 0:
            return 2  # rank 0 reports; the others stay quiet
        raise
    if comm.Get_rank() == 0:
        print(f"targets: {index}")
    return 0
