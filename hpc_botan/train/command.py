"""``hpc-botan train RUN_DIR``: BOTAN and NT-GNN replicas trained on the targets (torch, DDP)."""
from __future__ import annotations

import argparse
from pathlib import Path

from hpc_botan.command_args import add_selection_args

DESCRIPTION = (
    "Train every task of the run: BOTAN pretraining (p = 0, one short time point), BOTAN "
    "fine-tuning (p = train.node_weight) for every (T, t) starting from the pretrained "
    "replicas, and NT-GNN (p = 1) from scratch; train.n_replicas replicas each.\n\n"
    "One process trains the replicas one after another. Under torchrun or srun the processes "
    "form R replica slots x D data-parallel ranks (D = train.data_parallel): slots train "
    "different replicas at once, the D ranks of a slot take different graphs each step and "
    "average their gradients (effective batch D x batch_graphs graphs). gloo on CPUs, NCCL "
    "and one GPU per local rank where CUDA is available.\n\n"
    "Writes RUN_DIR/train/<task>/replica-XX/{checkpoint.pt,best.pt,final.pt,metrics.csv}; "
    "finished replicas are skipped and unfinished ones resume from their checkpoint.")

EPILOG = """\
examples:
  hpc-botan train runs/quick
  hpc-botan train runs/sample --set train.epochs=50 --set train.ntgnn.enabled=false
  torchrun --nproc_per_node 4 -m hpc_botan.train runs/ka --set train.n_replicas=4"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train BOTAN and NT-GNN replicas on the targets (torch, DDP)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a model.*, train.* or launch.* value before training starts (stored in config.yaml; "
                        "refused once a replica has trained an epoch); repeatable")
    add_selection_args(p, "train", "train only this task, e.g. botan/finetune/T0.640/t06 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=("local", "slurm"),
                   help="submit the training as one submitit job of launch.train_nodes x "
                        "launch.train_tasks_per_node processes (slurm: requeued and resumed after a timeout or "
                        "preemption); default: train in this process (or this torchrun/srun world)")
    p.add_argument("--no-wait", action="store_true", help="with --executor: print the job id and return")
    p.set_defaults(handler=_run)


def _count_finished_replicas(run_dir: str) -> int:
    from hpc_botan.io.rundir import RunLayout  # imported when the command runs: --help stays fast

    return len(RunLayout(run_dir).finished_models())


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import RunLayout, run_config_with_overrides
    from hpc_botan.plan.tasks import check_training_config
    from hpc_botan.train.stage import run_training

    cfg = run_config_with_overrides(args.run_dir, args.overrides, ("model", "train", "launch"), RunLayout.TRAINED_EPOCHS,
                                    check=lambda c: check_training_config(args.run_dir, c))
    if args.executor:
        # imported when the command runs: 'hpc-botan --help' stays fast
        from hpc_botan.launch.training_job import submit_training

        result = submit_training(args.run_dir, cfg, args.executor, models=tuple(args.models or ("botan", "ntgnn")),
                                 task_names=args.tasks, wait=not args.no_wait)
        if args.no_wait:
            print(f"train: submitted job {result.job_id}")
            return 0
        print(f"train: job finished; {_count_finished_replicas(args.run_dir)} finished replica(s) under "
              f"{Path(args.run_dir) / 'train'}")
        return 0
    run_training(args.run_dir, cfg, models=tuple(args.models or ("botan", "ntgnn")), task_names=args.tasks,
                 show_progress=not args.no_progress)
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.plan.world import detect_world

    if detect_world().rank == 0:
        print(f"train: {_count_finished_replicas(args.run_dir)} finished replica(s) under "
              f"{Path(args.run_dir) / 'train'}")
    return 0
