"""``hpc-botan evaluate RUN_DIR``: Pearson ρ of the trained replicas on held-out configurations."""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_botan.command_args import add_command, add_selection_args

DESCRIPTION = (
    "For every fine-tuned BOTAN task and NT-GNN task with finished replicas: predict S_i and "
    "E_ij of the held-out configurations with each replica's validation-selected model (best.pt; "
    "the test split never selects a model), then report Pearson rho per configuration averaged "
    "over configurations (and pooled) on type-A particles and on A-A pairs closer than 1.35, for "
    "each replica (median, best, worst) and for the ensemble mean of the replicas, beside the "
    "noise ceiling sqrt(split-half reliability) of the targets.\n\n"
    "Writes RUN_DIR/eval/metrics.json and RUN_DIR/eval/rho.csv (metrics-validation.json etc. "
    "with --split validation).")


def add_parser(sub) -> None:
    p = add_command(sub, "evaluate", "Pearson rho of the trained replicas on held-out configurations", DESCRIPTION,
                    "example: hpc-botan evaluate runs/quick")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="test (default) or the validation part of the train split")
    add_selection_args(p, "evaluate", "evaluate only this task")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.evaluate.stage import format_table, run_evaluation
    from hpc_botan.io.rundir import load_run_config

    results = run_evaluation(args.run_dir, load_run_config(args.run_dir), split=args.split,
                             models=tuple(args.models or ("botan", "ntgnn")), task_names=args.tasks)
    print(f"evaluate ({args.split} split): Pearson rho, mean over configurations")
    print(format_table(results))
    print(f"evaluate: written to {Path(args.run_dir) / 'eval'}")
    return 0
