"""``hpc-botan``: the command line.  Thin: parse, call a stage, print.

Every user mistake ends as one line on stderr (``hpc-botan: error: …``) and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import math
import sys
import zipfile
from pathlib import Path

from hpc_botan.errors import UserError, storage_error
from hpc_botan.version import __version__

DESCRIPTION = """\
hpc_botan: simulate a Kob–Andersen glass-former with LAMMPS, measure how every particle and
neighbour pair moves, and train BOTAN graph networks to predict it from structure alone.

A CONFIG is a YAML file or a built-in preset (quick: minutes on a laptop; paper: the
published data set, for a cluster).  Every command works in a run directory (--out) that
holds the resolved config.yaml and every stage's files; re-running a command resumes it."""

EPILOG = """\
examples:
  hpc-botan run quick --out runs/quick        # everything, ending with runs/quick/report/report.html
  hpc-botan predict runs/quick new.data --out predictions.h5
  hpc-botan simulate quick --out runs/quick
  hpc-botan calibrate paper --out /scratch/ka --executor slurm   # the pilot that measures tau_alpha
  hpc-botan simulate paper --out /scratch/ka --executor slurm --set launch.slurm.partition=gpu
  hpc-botan analyze fs runs/quick
  hpc-botan config quick > my_run.yaml      # start your own versioned config from a preset"""


#: Modules that add their own subcommands: each has ``add_parser(subparsers)``, which registers a
#: parser with ``set_defaults(handler=fn)``, ``fn(args) -> exit code``.  They import only argparse at
#: module level, so that ``hpc-botan --help`` stays fast.
#: The first one (``run``, the whole job) is listed before the stages; the rest after them.
COMMAND_MODULES: tuple[str, ...] = (
    "hpc_botan.pipeline.command",
    "hpc_botan.pipeline.status_command",
    "hpc_botan.pipeline.plan_command",
    "hpc_botan.calibrate.command",
    "hpc_botan.baselines.command",
    "hpc_botan.report.command",
    "hpc_botan.predict.command",
    "hpc_botan.predict.export_command",
    "hpc_botan.plots.command",
)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG_OR_PRESET", help="YAML config file, or a preset name (quick, paper)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override one config value (YAML syntax), e.g. --set simulation.n_runs=4; repeatable")


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    """-q/-v on ``p``.  The main parser sets the defaults; every subcommand accepts them too, with
    SUPPRESS as its default, so that ``hpc-botan status -q RUN`` and ``hpc-botan -q status RUN`` agree."""
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors")
    p.add_argument("-v", "--verbose", action="count", default=0 if default is False else default,
                   help="more detail: debug messages of hpc_botan (-vv: of every library too)")


def _subcommand_parsers(parser: argparse.ArgumentParser):
    """Every parser below ``parser`` (subcommands, and their subcommands)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):   # aliases map to the same parser
                yield child
                yield from _subcommand_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpc-botan", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hpc_botan {__version__}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    importlib.import_module(COMMAND_MODULES[0]).add_parser(sub)

    p = sub.add_parser(
        "simulate", help="equilibrated configurations and their isoconfigurational ensembles (LAMMPS)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Prepare every initial configuration (melt, quench, NVT) and run its isoconfigurational "
                    "ensemble of NVE runs with LAMMPS, one job per configuration.\n\n"
                    "Writes RUN_DIR/simulate/T<temperature>/conf-<index>.h5 (H5MD, every run's unwrapped "
                    "positions at the configured time points) and LAMMPS logs under RUN_DIR/simulate/logs/. "
                    "Finished configurations are skipped, so re-running the same command resumes.\n"
                    "The LAMMPS accelerator (GPU package, KOKKOS, OPENMP or plain) is picked on the node "
                    "that runs the job unless lammps.accelerator says otherwise.",
        epilog="example: hpc-botan simulate quick --out runs/quick --executor local")
    _add_config_args(p)
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (created if needed)")
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

    p = sub.add_parser(
        "targets", help="ensemble-averaged targets and graphs of every configuration (MPI)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute, for every simulated configuration, the graph (pairs closer than 2.0 at t = 0) and "
                    "the isoconfigurational averages: propensity S_i(t), pair-distance change E_ij(t), "
                    "cage-relative displacement, D2min, the locally averaged displacement, F_s and the noise "
                    "ceilings.\n\nRun it under MPI to spread configurations over ranks; each rank writes "
                    "RUN_DIR/targets/shard-<rank>.h5 and rank 0 writes RUN_DIR/targets/index.h5. Complete shards "
                    "are reused, so re-running resumes.",
        epilog="examples:\n  hpc-botan targets runs/quick\n  mpirun -n 8 hpc-botan targets /scratch/ka")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (rank 0 shows one by default)")

    p = sub.add_parser(
        "import", help="turn a published data set into a run directory with targets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a data set users already have and write the same targets layout as 'hpc-botan targets' "
                    "(shards + index, and a config.yaml describing the data), so training works on it unchanged."
                    "\n\nformats:\n  pyg-botan   the reference implementation's isoconfig_N<N>T<T>_<id>_tc<kk>.npz "
                    "files (one per configuration and time point; box from --density)\n  deepmind    the NT-GNN "
                    "data set's pickles, one dict per configuration (box per file, 30 runs; read with an "
                    "unpickler that only builds plain containers and numpy arrays)\n  glassbench  GlassBench "
                    "N<N>T<T>_<id>.npz (md_prop as S_i; no trajectories, so no E_ij)\n\nRuns under MPI like "
                    "'targets'.",
        epilog="example: hpc-botan import pyg-botan shared/data/pyg_botan_sample/train --out runs/sample")
    p.add_argument("format", choices=("pyg-botan", "deepmind", "glassbench"), help="format of SOURCE")
    p.add_argument("source", metavar="SOURCE", help="directory holding the files")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (or resume)")
    p.add_argument("--density", type=float, default=1.2, help="number density, for formats without a box "
                   "(default: 1.2)")
    p.add_argument("--n-test", type=int, default=0, metavar="K",
                   help="put the last K configurations of each temperature in the test split (default: 0, all "
                        "train)")

    p = sub.add_parser(
        "verify", help="check every targets shard and the index",
        description="Check RUN_DIR/targets: shapes, dtypes, NaN/inf, the checksums recorded at write time, and "
                    "that every configuration is present exactly once. Prints each problem on one line; exit "
                    "code 2 if there is any.")
    p.add_argument("run_dir", metavar="RUN_DIR")

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
    pe = asub.add_parser(
        "energy", help="potential energy of the equilibration and the runs: is the liquid still ageing?",
        description="From the simulate logs of every finished configuration: the mean potential energy per "
                    "particle over the second half of the NVT equilibration at T, its drift (last quarter minus "
                    "third quarter: ageing left), and the mean potential energy and temperature of the NVE runs.")
    pe.add_argument("run_dir", metavar="RUN_DIR")

    p = sub.add_parser(
        "train", help="train BOTAN and NT-GNN replicas on the targets (torch, DDP)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train every task of the run: BOTAN pretraining (p = 0, one short time point), BOTAN "
                    "fine-tuning (p = train.node_weight) for every (T, t) starting from the pretrained "
                    "replicas, and NT-GNN (p = 1) from scratch; train.n_replicas replicas each.\n\n"
                    "One process trains the replicas one after another. Under torchrun or srun the processes "
                    "form R replica slots x D data-parallel ranks (D = train.data_parallel): slots train "
                    "different replicas at once, the D ranks of a slot take different graphs each step and "
                    "average their gradients (effective batch D x batch_graphs graphs). gloo on CPUs, NCCL "
                    "and one GPU per local rank where CUDA is available.\n\n"
                    "Writes RUN_DIR/train/<task>/replica-XX/{checkpoint.pt,best.pt,final.pt,metrics.csv}; "
                    "finished replicas are skipped and unfinished ones resume from their checkpoint.",
        epilog="examples:\n  hpc-botan train runs/quick\n  hpc-botan train runs/sample --set train.epochs=50 "
               "--set train.ntgnn.enabled=false\n  torchrun --nproc_per_node 4 -m hpc_botan.train runs/ka "
               "--set train.n_replicas=4")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a model.*, train.* or launch.* value before training starts (stored in config.yaml; "
                        "refused once a replica has trained an epoch); repeatable")
    p.add_argument("--model", dest="models", action="append", choices=("botan", "ntgnn"),
                   help="train only this model family (repeatable; default: both)")
    p.add_argument("--task", dest="tasks", action="append", metavar="NAME",
                   help="train only this task, e.g. botan/finetune/T0.640/t06 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=("local", "slurm"),
                   help="submit the training as one submitit job of launch.train_nodes x "
                        "launch.train_tasks_per_node processes (slurm: requeued and resumed after a timeout or "
                        "preemption); default: train in this process (or this torchrun/srun world)")
    p.add_argument("--no-wait", action="store_true", help="with --executor: print the job id and return")

    p = sub.add_parser(
        "import-weights", help="use the reference implementation's weight files as pretrained replicas",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read state_dicts saved by the reference implementation (pyg_botan: node_encoder.*, "
                    "edge_encoder.*, network.edge_model.*, network.node_model.*, decoder.*) safely (tensors "
                    "only) and install them as the finished replicas of RUN_DIR's BOTAN pretraining task, one "
                    "file per replica in the order given, so that fine-tuning starts from them. The run's "
                    "model section must be the reference architecture; with model.separate_decoders=true the "
                    "reference's one decoder becomes two identical ones (nodes, edges) that fine-tuning "
                    "trains apart.",
        epilog="example: hpc-botan import-weights runs/sample shared/data/pyg_botan_sample/initial_model/model1.pth "
               "shared/data/pyg_botan_sample/initial_model/model2.pth")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("weights", nargs="+", metavar="WEIGHTS.pth")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a model.* or train.* value first, as 'train --set' does, e.g. "
                        "train.pretrain.time_index=0 for a data set with a single time point; repeatable")

    p = sub.add_parser(
        "evaluate", help="Pearson rho of the trained replicas on held-out configurations",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For every fine-tuned BOTAN task and NT-GNN task with finished replicas: predict S_i and "
                    "E_ij of the held-out configurations with each replica's validation-selected model (best.pt; "
                    "the test split never selects a model), then report Pearson rho per configuration averaged "
                    "over configurations (and pooled) on type-A particles and on A-A pairs closer than 1.35, for "
                    "each replica (median, best, worst) and for the ensemble mean of the replicas, beside the "
                    "noise ceiling sqrt(split-half reliability) of the targets.\n\n"
                    "Writes RUN_DIR/eval/metrics.json and RUN_DIR/eval/rho.csv (metrics-validation.json etc. "
                    "with --split validation).",
        epilog="example: hpc-botan evaluate runs/quick")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="test (default) or the validation part of the train split")
    p.add_argument("--model", dest="models", action="append", choices=("botan", "ntgnn"),
                   help="evaluate only this model family (repeatable; default: both)")
    p.add_argument("--task", dest="tasks", action="append", metavar="NAME", help="evaluate only this task")

    for module in COMMAND_MODULES[1:]:
        importlib.import_module(module).add_parser(sub)

    p = sub.add_parser("config", help="print a preset or config file, resolved, as YAML",
                       description="Print the resolved configuration (defaults filled in) as YAML: a starting "
                                   "point for your own versioned config file.")
    _add_config_args(p)

    p = sub.add_parser(
        "doctor", help="what this machine offers each stage; exit 1 if a configured stage cannot run here",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Report the LAMMPS found (version, accelerator packages, whether lj/smooth/linear, its /omp, "
                    "/gpu and /kk variants and the table styles exist), the accelerator the simulate stage would "
                    "use, mpi4py's MPI library and the MPI launcher, torch and its CUDA devices with the device "
                    "and backend training would use, and whether Slurm answers. Exits 1 when something a stage "
                    "of CONFIG needs is missing (LAMMPS for simulated runs, an MPI launcher for more than one "
                    "rank, Slurm with --executor slurm).",
        epilog="examples:\n  hpc-botan doctor quick\n  hpc-botan doctor paper --executor slurm "
               "--set launch.slurm.gpus_per_node=4\n  hpc-botan doctor runs/ka   (a run directory: its config.yaml)")
    p.add_argument("config", nargs="?", default="quick", metavar="CONFIG_OR_RUN_DIR",
                   help="preset, config file or run directory whose stages are checked (default: quick)")
    p.add_argument("--executor", choices=("local", "slurm", "debug"), default="local",
                   help="where the stages would run (slurm: Slurm must answer)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config value (repeatable)")
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh or tcsh)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print a completion script for hpc-botan's commands and options, generated from this "
                    "parser (shtab).",
        epilog="examples:\n  hpc-botan completion bash > ~/.local/share/bash-completion/completions/hpc-botan\n"
               "  hpc-botan completion zsh > ~/.zfunc/_hpc-botan   (with fpath+=~/.zfunc in ~/.zshrc)")
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    for child in _subcommand_parsers(parser):
        _add_verbosity(child, argparse.SUPPRESS)
    return parser


def _cmd_simulate(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.calibrate.stage import calibrate
    from hpc_botan.config import load_config
    from hpc_botan.io.rundir import RunLayout, check_run_dir_path
    from hpc_botan.launch.executors import map_tasks
    from hpc_botan.plan.configurations import configuration_tasks, pending_configurations
    from hpc_botan.simulate.stage import prepare_run, run_configuration, select_accelerator, simulation_resources

    if args.no_wait and args.executor != "slurm":
        raise UserError("--no-wait: only with --executor slurm")
    cfg = load_config(args.config, args.overrides)
    check_run_dir_path(args.out)  # before the LAMMPS probe, which takes seconds
    if cfg.simulation.calibrated_temperatures():
        # the time points of a calibrated run directory: its finished pilot's, never a new pilot here
        _, cfg = calibrate(args.out, cfg, executor=None)
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


def _cmd_analyze(args: argparse.Namespace) -> int:
    if args.analysis == "energy":
        from hpc_botan.analysis import energy_analysis, format_energy_table  # no torch, no plotting

        print(format_energy_table(energy_analysis(args.run_dir)))
        return 0
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


def _cmd_config(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.config import load_config

    sys.stdout.write(load_config(args.config, args.overrides).to_yaml())
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
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


def _cmd_targets(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.targets.stage import run_targets
    from hpc_botan.targets.world import world

    comm = world()
    try:
        index = run_targets(args.run_dir, comm, show_progress=not (args.no_progress or args.quiet))
    except UserError:
        if comm.Get_rank() != 0:
            return 2  # rank 0 reports; the others stay quiet
        raise
    if comm.Get_rank() == 0:
        print(f"targets: {index}")
    return 0


def with_test_split(cfg, n_test: int):
    """``cfg`` with the last ``n_test`` configurations of each temperature in the test split."""
    n_conf = cfg.simulation.n_configurations
    if not 0 <= n_test < n_conf:
        raise UserError(f"--n-test {n_test}: expected 0 … {n_conf - 1} (the data set has {n_conf} configurations "
                        "per temperature)")
    return dataclasses.replace(cfg, simulation=dataclasses.replace(cfg.simulation, n_train=n_conf - n_test))


def _cmd_import(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import open_run_dir
    from hpc_botan.targets.importers import importer
    from hpc_botan.targets.world import world

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
    return _cmd_targets(argparse.Namespace(run_dir=args.out, no_progress=False, quiet=args.quiet))


def _cmd_verify(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import RunLayout, load_run_config
    from hpc_botan.io.shards import verify_targets
    from hpc_botan.targets.stage import work_items

    metas = work_items(load_run_config(args.run_dir), args.run_dir)
    problems = verify_targets(RunLayout(args.run_dir).targets, metas)
    for problem in problems:
        print(f"hpc-botan: verify: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"verify: {len(metas)} configurations OK in {Path(args.run_dir) / 'targets'}")
    return 0


def _count_finished_replicas(run_dir: str) -> int:
    from hpc_botan.io.rundir import RunLayout  # imported when the command runs: --help stays fast

    return len(RunLayout(run_dir).finished_models())


def _cmd_train(args: argparse.Namespace) -> int:
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.evaluate.stage import format_table, run_evaluation
    from hpc_botan.io.rundir import load_run_config

    results = run_evaluation(args.run_dir, load_run_config(args.run_dir), split=args.split,
                             models=tuple(args.models or ("botan", "ntgnn")), task_names=args.tasks)
    print(f"evaluate ({args.split} split): Pearson rho, mean over configurations")
    print(format_table(results))
    print(f"evaluate: written to {Path(args.run_dir) / 'eval'}")
    return 0


def _cmd_import_weights(args: argparse.Namespace) -> int:
    # imported when the command runs: 'hpc-botan --help' stays fast
    from hpc_botan.io.rundir import load_run_config

    # the files before the imports of torch and the training code (minutes on a loaded node)
    load_run_config(args.run_dir)
    for path in map(Path, args.weights):
        if not path.is_file():
            raise UserError(f"{path}: no such weight file")
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path}: not a plain PyTorch state_dict (not a zip archive written by torch.save)")

    # torch and the training code: only once the files are known to be there
    from hpc_botan.io.rundir import RunLayout, run_config_with_overrides
    from hpc_botan.plan.tasks import check_training_config
    from hpc_botan.train.imported import import_reference_replicas

    run_config_with_overrides(args.run_dir, args.overrides, ("model", "train"), RunLayout.TRAINED_EPOCHS,
                              check=lambda c: check_training_config(args.run_dir, c))

    for path in import_reference_replicas(args.run_dir, args.weights):
        print(f"import-weights: {path}")
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    import shtab  # imported here: only this command needs it

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


COMMANDS = {"completion": _cmd_completion, "train": _cmd_train, "evaluate": _cmd_evaluate, "import-weights": _cmd_import_weights, "simulate": _cmd_simulate, "targets": _cmd_targets, "import": _cmd_import, "verify": _cmd_verify, "analyze": _cmd_analyze, "config": _cmd_config, "doctor": _cmd_doctor}


#: Commands that continue where an interrupted run of them stopped (the others start again).
RESUMABLE = ("simulate", "targets", "import", "train", "import-weights", "calibrate", "run")

#: Commands that write into their run directory (RUN_DIR, or --out for simulate and run).
WRITES_RUN_DIR = ("simulate", "targets", "analyze", "train", "import-weights", "evaluate", "calibrate", "baselines",
                  "report", "plot", "run")


def _quiet_storage_unraisable() -> None:
    """Drop the tracebacks that a full disk makes h5py print while it closes a file.

    h5py flushes in ``__dealloc__``, where an exception cannot propagate: Cython prints it through
    ``sys.excepthook`` and ``sys.unraisablehook``.  The write that failed first is raised, and
    reported in one line, anyway.
    """
    if getattr(sys.excepthook, "hpc_botan_quiet_storage", False):
        return  # installed by an earlier main() of this process: wrap the hooks once
    unraisable, excepthook = sys.unraisablehook, sys.excepthook

    def unraisable_hook(info):
        if storage_error(info.exc_value) is None:
            unraisable(info)

    def except_hook(kind, value, tb):
        if storage_error(value) is None:
            excepthook(kind, value, tb)

    except_hook.hpc_botan_quiet_storage = True
    sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_storage_unraisable()
    if args.quiet and args.verbose:
        print("hpc-botan: error: -q/--quiet and -v/--verbose contradict each other", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.DEBUG if args.verbose >= 2 else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.verbose:
        logging.getLogger("hpc_botan").setLevel(logging.DEBUG)
    try:
        if args.command in WRITES_RUN_DIR:
            from hpc_botan.io.rundir import check_writable_run_dir  # imported here: --help stays fast

            written = getattr(args, "run_dir", None) or getattr(args, "out", None)
            if written is not None:
                check_writable_run_dir(written)
        handler = getattr(args, "handler", None) or COMMANDS[args.command]
        return handler(args)
    except UserError as exc:
        print(f"hpc-botan: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        storage = storage_error(exc)  # a full disk or a read-only directory is the user's to fix
        if storage is None:
            raise
        print(f"hpc-botan: error: {storage}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command in RESUMABLE:
            print("hpc-botan: interrupted; re-run the same command to resume", file=sys.stderr)
        else:  # these write their outputs whole at the end (temporary name, then rename)
            print(f"hpc-botan: interrupted; {args.command} writes its outputs only when it finishes, so nothing "
                  "was written: re-run the same command to start again", file=sys.stderr)
        return 130
