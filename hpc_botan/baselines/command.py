"""``hpc-botan baselines RUN_DIR``: the simple models beside the networks (parser and handler)."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Fit three baselines on the configurations the networks train on (the train part of the train split,
train.validation_fraction and train.seed as for training) and score them on the held-out configurations
exactly as 'hpc-botan evaluate' scores the networks (Pearson rho per configuration, averaged; type-A
particles for S_i, A-A pairs closer than 1.35 for E_ij; beside the noise ceiling), at every temperature
and time point of the targets index:

  ridge     S_i from coarse-grained radial shell densities of each particle (Boattini et al. 2021),
            E_ij from the two end points' descriptors (sum, |difference|) and r_ij(0); ridge
            regression, penalty chosen on the validation part
  density   S_i linear in the Gaussian-weighted local density of the particle
  distance  E_ij = train mean of E_ij at the same r_ij(0) and species pair

Data sets without E_ij targets (GlassBench imports) get the S_i baselines only.  Writes
RUN_DIR/eval/baselines.json (the schema of eval/metrics.json) and RUN_DIR/eval/baselines.csv (the
columns of rho.csv); baselines-validation.* with --split validation.  See docs/baselines.md."""

EPILOG = """\
examples:
  hpc-botan baselines runs/sample
  hpc-botan baselines runs/sample --split validation"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``baselines`` on the ``hpc-botan`` subparsers."""
    p = subparsers.add_parser("baselines", help="ridge, local-density and distance baselines, scored like evaluate",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with targets (hpc-botan targets / import)")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="score on the test split (default) or on the validation part of the train split")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    # the work imports torch and the data stack: only when the command runs
    from hpc_botan.baselines.stage import run_baselines
    from hpc_botan.evaluate.stage import format_table
    from hpc_botan.io.rundir import RunLayout, load_run_config

    results = run_baselines(args.run_dir, load_run_config(args.run_dir), split=args.split,
                            show_progress=not args.no_progress and sys.stderr.isatty())
    print(f"baselines ({args.split} split): Pearson rho, mean over configurations")
    print(format_table(results))
    suffix = "" if args.split == "test" else f"-{args.split}"
    out = RunLayout(args.run_dir).eval
    print(f"baselines: written {out / f'baselines{suffix}.json'} and {out / f'baselines{suffix}.csv'}")
    return 0
