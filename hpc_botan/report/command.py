"""``hpc-botan report RUN_DIR``: the self-contained HTML report of an evaluated run."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="write RUN_DIR/report/report.html (figures, rho table, timings, provenance)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw every figure the run's data allows (as 'hpc-botan plot all') and write one self-contained "
                    "HTML file, RUN_DIR/report/report.html, with the Pearson rho table per time point beside the "
                    "noise ceilings (BOTAN, NT-GNN and the baselines), the figures, the time each stage took, "
                    "where the data came from and the configuration. Needs an evaluated run "
                    "(RUN_DIR/eval/metrics.json); 'hpc-botan run' writes the report at its end.",
        epilog="example: hpc-botan report runs/quick && xdg-open runs/quick/report/report.html")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # the stages import the plotting stack: only when the command runs
    from hpc_botan.io.rundir import load_run_config
    from hpc_botan.registry import stage_named
    from hpc_botan.report.html import evaluation_metrics

    run_dir = Path(args.run_dir)
    cfg = load_run_config(run_dir)
    evaluation_metrics(run_dir)  # refused before any figure is drawn
    stage_named("figures").run(run_dir, cfg)
    print(f"report: {stage_named('report').run(run_dir, cfg)}")
    return 0
