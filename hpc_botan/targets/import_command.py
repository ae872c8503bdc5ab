"""``hpc-botan import FORMAT SOURCE --out RUN_DIR``: a published data set as a run directory with targets."""
from __future__ import annotations

import argparse
import dataclasses

from hpc_botan.command_args import add_command
from hpc_botan.errors import UserError
from hpc_botan.targets.command import compute_targets

DESCRIPTION = (
    "Read a data set users already have and write the same targets layout as 'hpc-botan targets' "
    "(shards + index, and a config.yaml describing the data), so training works on it unchanged."
    "\n\nformats:\n  pyg-botan   the reference implementation's isoconfig_N<N>T<T>_<id>_tc<kk>.npz "
    "files (one per configuration and time point; box from --density)\n  deepmind    the NT-GNN "
    "data set's pickles, one dict per configuration (box per file, 30 runs; read with an "
    "unpickler that only builds plain containers and numpy arrays)\n  glassbench  GlassBench "
    "N<N>T<T>_<id>.npz (md_prop as S_i; no trajectories, so no E_ij)\n\nRuns under MPI like "
    "'targets'.")


def add_parser(sub) -> None:
    p = add_command(sub, "import", "turn a published data set into a run directory with targets", DESCRIPTION,
                    "example: hpc-botan import pyg-botan shared/data/pyg_botan_sample/train --out runs/sample")
    p.add_argument("format", choices=("pyg-botan", "deepmind", "glassbench"), help="format of SOURCE")
    p.add_argument("source", metavar="SOURCE", help="directory holding the files")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (or resume)")
    p.add_argument("--density", type=float, default=1.2, help="number density, for formats without a box "
                   "(default: 1.2)")
    p.add_argument("--n-test", type=int, default=0, metavar="K",
                   help="put the last K configurations of each temperature in the test split (default: 0, all "
                        "train)")
    p.set_defaults(handler=_run)


def with_test_split(cfg, n_test: int):
    """``cfg`` with the last ``n_test`` configurations of each temperature in the test split."""
    n_conf = cfg.simulation.n_configurations
    if not 0 <= n_test < n_conf:
        raise UserError(f"--n-test {n_test}: expected 0 … {n_conf - 1} (the data set has {n_conf} configurations "
                        "per temperature)")
    return dataclasses.replace(cfg, simulation=dataclasses.replace(cfg.simulation, n_train=n_conf - n_test))


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast (mpi4py starts MPI)
    from hpc_botan.io.rundir import open_run_dir
    from hpc_botan.plan.mpi_world import world
    from hpc_botan.targets.importers import importer

    comm = world()
    error = None
    if comm.Get_rank() == 0:
        try:
            cfg = importer(args.format).describe(args.source, density=args.density)
            open_run_dir(args.out, with_test_split(cfg, args.n_test))
        except UserError as exc:
            error = str(exc)
    error = comm.bcast(error, root=0)
    if error:
        if comm.Get_rank() != 0:
            return 2
        raise UserError(error)
    return compute_targets(args.out, show_progress=not args.quiet)
