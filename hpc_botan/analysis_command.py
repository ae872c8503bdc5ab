"""``hpc-botan analyze fs|energy RUN_DIR``: physics checks on a run directory."""
from __future__ import annotations

import argparse
import math

from hpc_botan.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="physics checks on a run directory",
                       description="Physics checks computed from a run directory's trajectory files.")
    asub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    pf = asub.add_parser(
        "fs", help="self-intermediate scattering function F_s(k, t) of A particles and tau_alpha",
        description="Compute F_s(k, t) of A particles (spherical average, mean over runs, particles and "
                    "configurations) and tau_alpha where F_s = 1/e; print a table, write "
                    "RUN_DIR/analysis/fs.csv and RUN_DIR/figures/fs.png|pdf.")
    pf.add_argument("run_dir", metavar="RUN_DIR")
    pf.add_argument("--k", type=float, default=6.283185307179586, help="wave number in 1/sigma (default: 2 pi)")
    pf.set_defaults(handler=_run_fs)
    pe = asub.add_parser(
        "energy", help="potential energy of the equilibration and the runs: is the liquid still ageing?",
        description="From the simulate logs of every finished configuration: the mean potential energy per "
                    "particle over the second half of the NVT equilibration at T, its drift (last quarter minus "
                    "third quarter: ageing left), and the mean potential energy and temperature of the NVE runs.")
    pe.add_argument("run_dir", metavar="RUN_DIR")
    pe.set_defaults(handler=_run_energy)


def _run_energy(args: argparse.Namespace) -> int:
    from hpc_botan.analysis import energy_analysis, format_energy_table  # no torch, no plotting

    print(format_energy_table(energy_analysis(args.run_dir)))
    return 0


def _run_fs(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.k) and args.k > 0):
        raise UserError(f"--k {args.k}: expected a positive wave number (1/σ; the first peak of S(k) is near 2π)")
    from hpc_botan.io.rundir import load_run_config  # imported when the command runs: --help stays fast

    load_run_config(args.run_dir)  # a wrong path, before the imports of the plotting stack
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.analysis import format_fs_table, fs_analysis, write_fs_csv
    from hpc_botan.plots.dynamics import plot_fs_result

    result = fs_analysis(args.run_dir, k=args.k)
    print(format_fs_table(result))
    for path in [write_fs_csv(result, args.run_dir), *plot_fs_result(result, args.run_dir)]:
        print(f"written {path}")
    return 0
