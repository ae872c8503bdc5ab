"""``hpc-botan simulate CONFIG --out RUN_DIR``: the configurations and their isoconfigurational ensembles."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hpc_botan.command_args import add_command, add_config_args, add_out_arg
from hpc_botan.errors import UserError

DESCRIPTION = (
    "Prepare every initial configuration (melt, quench, NVT) and run its isoconfigurational "
    "ensemble of NVE runs with LAMMPS, one job per configuration.\n\n"
    "Writes RUN_DIR/simulate/T<temperature>/conf-<index>.h5 (H5MD, every run's unwrapped "
    "positions at the configured time points) and LAMMPS logs under RUN_DIR/simulate/logs/. "
    "Finished configurations are skipped, so re-running the same command resumes.\n"
    "The LAMMPS accelerator (GPU package, KOKKOS, OPENMP or plain) is picked on the node "
    "that runs the job unless lammps.accelerator says otherwise.")


def add_parser(sub) -> None:
    p = add_command(sub, "simulate", "equilibrated configurations and their isoconfigurational ensembles (LAMMPS)", DESCRIPTION,
                    "example: hpc-botan simulate quick --out runs/quick --executor local")
    add_config_args(p)
    add_out_arg(p)
    p.add_argument("--executor", choices=("local", "slurm", "debug"), default="local",
                   help="local: subprocesses here (launch.local_parallelism at a time); slurm: one job array "
                        "(launch.slurm.*); debug: in this process, one by one (default: local)")
    p.add_argument("--no-wait", action="store_true",
                   help="with --executor slurm: print the job ids and return without waiting")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--task", type=int, metavar="K",
                   help="run only configuration K (0-based) here, without submitit; for your own job "
                        "scripts, e.g. slurm/simulate_array.sbatch passes $SLURM_ARRAY_TASK_ID")
    g.add_argument("--count", action="store_true",
                   help="create/check RUN_DIR, print the number of configurations (array size) and exit")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.calibrate.stage import CalibrateStage
    from hpc_botan.config import load_config
    from hpc_botan.io.rundir import RunLayout, check_run_dir_path
    from hpc_botan.launch.executors import map_tasks
    from hpc_botan.plan.configurations import configuration_tasks, pending_configurations
    from hpc_botan.simulate.stage import prepare_run, run_configuration, select_accelerator, simulation_resources

    if args.no_wait and args.executor != "slurm":
        raise UserError("--no-wait: only with --executor slurm")
    cfg = load_config(args.config, args.overrides)
    check_run_dir_path(args.out)  # before the LAMMPS probe, which takes seconds
    calibration = CalibrateStage()
    if calibration.applies(cfg):
        # the time points of a calibrated run directory: its finished pilot's, never a new pilot here
        _, cfg = calibration.resolve(args.out, cfg, executor=None)
    if args.executor != "slurm" or args.task is not None:
        # jobs run on this machine: a missing LAMMPS or accelerator is reported now, not from a job
        select_accelerator(cfg)
    run_dir = prepare_run(cfg, args.out)
    s = cfg.simulation
    tasks = configuration_tasks(cfg)
    if args.count:
        print(len(tasks))
        return 0
    if args.task is not None:
        if not 0 <= args.task < len(tasks):
            raise UserError(f"--task: expected 0 … {len(tasks) - 1} for this config, got {args.task}")
        print(run_configuration(str(run_dir), args.task))
        return 0
    pending = pending_configurations(run_dir, cfg)
    log = logging.getLogger("hpc_botan")
    log.info("simulate: %d configurations (%s) x %d runs of %d particles; %d finished, %d to do",
             len(tasks), ", ".join(f"T={t:g}" for t in s.temperatures), s.n_runs, s.n_particles,
             len(tasks) - len(pending), len(pending))
    result = map_tasks(run_configuration, [(str(run_dir), k) for k in pending], kind=args.executor,
                       folder=RunLayout(run_dir).jobs("simulate"), launch=cfg.launch,
                       resources=simulation_resources(cfg),
                       name="simulate", wait=not args.no_wait)
    if args.no_wait:
        for job in result:
            print(job.job_id)
        return 0
    print(f"simulate: {len(tasks)} trajectory files in {Path(run_dir) / 'simulate'}")
    return 0
