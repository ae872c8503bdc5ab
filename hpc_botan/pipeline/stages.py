"""The stages of ``hpc-botan run``: what each one is, when it is finished, and how long it took.

    simulate → targets → train (pretrain, then the (T, t) grid) → evaluate → baselines → figures → report

Every stage is resumable by itself (finished work is skipped inside it), so the pipeline only
needs to know which stages are *entirely* finished, to avoid even starting them (and, on Slurm,
to avoid submitting their jobs).  The checks read the run directory only.

Timings: each successful execution of a stage (or of one part of it, e.g. one element of the
training job array) writes ``RUN_DIR/pipeline/timings/<stage>[.<part>].json`` with its start,
end and duration; the report adds them up.  A killed attempt writes nothing, so the figures
are those of the attempts that completed.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io_utils import write_text_atomic

log = logging.getLogger("hpc_botan.pipeline")

#: The stages in the order they run.
STAGES = ("simulate", "targets", "train", "evaluate", "baselines", "figures", "report")
TIMINGS_DIR = Path("pipeline") / "timings"


# --------------------------------------------------------------------------- timings

@contextlib.contextmanager
def timed_stage(run_dir: str | Path, stage: str, part: str = "", executor: str = "local") -> Iterator[None]:
    """Record the wall time of the block as a timing of ``stage`` (only if the block succeeds)."""
    started = time.time()
    yield
    finished = time.time()
    name = f"{stage}.{part}" if part else stage
    record = {"stage": stage, "part": part, "started": started, "finished": finished,
              "seconds": finished - started, "host": socket.gethostname(), "executor": executor}
    write_text_atomic(Path(run_dir) / TIMINGS_DIR / f"{name.replace('/', '_')}.json", json.dumps(record))


def stage_timings(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Stage → {"seconds": summed over parts, "wall": last end − first start, "parts": n}."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(run_dir) / TIMINGS_DIR).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            rec = {k: rec[k] for k in ("stage", "started", "finished", "seconds")} | {"host": rec.get("host", "?")}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a timing is informative only; never fail a report over one
        s = out.setdefault(rec["stage"], {"seconds": 0.0, "started": rec["started"], "finished": rec["finished"],
                                          "parts": 0, "hosts": set()})
        s["seconds"] += rec["seconds"]
        s["started"] = min(s["started"], rec["started"])
        s["finished"] = max(s["finished"], rec["finished"])
        s["parts"] += 1
        s["hosts"].add(rec.get("host", "?"))
    for s in out.values():
        s["wall"] = s["finished"] - s["started"]
        s["hosts"] = sorted(s["hosts"])
    return out


# --------------------------------------------------------------------------- completion checks

def simulated(cfg: Config) -> bool:
    """Whether the run's trajectories come from the simulate stage (not an imported data set)."""
    return cfg.source.format == "simulate"


def pending_configurations(run_dir: str | Path, cfg: Config) -> list[int]:
    """Job-array indices of the configurations whose trajectory file is not complete."""
    from hpc_botan.simulate import h5md
    from hpc_botan.simulate.stage import configuration_tasks, trajectory_path

    s = cfg.simulation
    return [k for k, task in enumerate(configuration_tasks(cfg))
            if not h5md.is_complete(trajectory_path(run_dir, task), n_runs=s.n_runs, n_atoms=s.n_particles)]


def targets_complete(run_dir: str | Path, cfg: Config) -> bool:
    """Whether ``targets/index.h5`` is complete and holds every configuration of the run."""
    index = Path(run_dir) / "targets" / "index.h5"
    if not index.is_file():
        return False
    try:
        with h5py.File(index, "r") as f:
            complete = f.attrs.get("complete") == 1
            n = int(f.attrs.get("n_configurations", -1))
    except OSError:
        return False
    expected = cfg.simulation.n_configurations * len(cfg.simulation.temperatures)
    return bool(complete) and (n == expected or not simulated(cfg))


def planned_times(run_dir: str | Path, cfg: Config) -> dict[float, np.ndarray]:
    """Temperature → time points (τ): from the targets index when it exists, else from the config."""
    from hpc_botan.train.stage import temperatures_and_times

    index = Path(run_dir) / "targets" / "index.h5"
    if targets_complete(run_dir, cfg):
        return temperatures_and_times(index)
    s = cfg.simulation
    return {float(t): np.asarray(s.time_points[t], dtype=np.float64) for t in sorted(s.temperatures)}


def planned_tasks(run_dir: str | Path, cfg: Config, models: tuple[str, ...] = ("botan", "ntgnn")) -> list:
    """Every training task of the run (:class:`hpc_botan.train.trainer.TrainingTask`), in order."""
    from hpc_botan.train.stage import training_tasks

    return training_tasks(cfg, planned_times(run_dir, cfg), models)


def task_finished(run_dir: str | Path, cfg: Config, task) -> bool:
    """Whether every replica of ``task`` has its ``final.pt``."""
    return all((task.replica_dir(run_dir, r) / "final.pt").is_file() for r in range(cfg.train.n_replicas))


def training_groups(tasks: list) -> list[tuple[str, list[str]]]:
    """The training work as (label, task names) groups that may run at the same time.

    Group 0 is the pretraining (every fine-tuning starts from it); then one group per
    (temperature, time point) with its BOTAN fine-tuning and its NT-GNN task (in multi_time mode,
    one group per temperature).  On Slurm each
    group after the first is one element of the training job array.
    """
    from hpc_botan.train.stage import task_tag

    groups: dict[str, list[str]] = {}
    for task in tasks:
        # botan/finetune/T…/t… and ntgnn/T…/t… share the label T…/t…
        label = ("pretrain" if task.name.startswith("botan/pretrain/")
                 else task_tag(task.temperature, task.time_index if not task.time_indices else None))
        groups.setdefault(label, []).append(task.name)
    return list(groups.items())


# --------------------------------------------------------------------------- stage bodies

def run_targets_mpi(run_dir: str | Path, cfg: Config) -> Path:
    """The targets stage under ``mpirun -n K`` on this node (K = ``launch.targets_ranks``, at most one
    rank per configuration) as a child process of this one; in this process when K = 1.

    Returns the path of ``targets/index.h5``.
    """
    from hpc_botan.simulate.lammps_runner import resolve_launcher
    from hpc_botan.targets.stage import configuration_metas, run_targets

    n_conf = len(configuration_metas(cfg, run_dir))
    ranks = max(1, min(cfg.launch.targets_ranks, n_conf))
    if ranks == 1:
        from mpi4py import MPI

        return run_targets(run_dir, MPI.COMM_SELF)
    command = [*resolve_launcher(cfg.lammps.mpirun), "-n", str(ranks), sys.executable, "-m", "hpc_botan", "-q",
               "targets", str(run_dir)]
    log.info("targets: %s", " ".join(command))
    # The ranks run on this node.  Inside a Slurm job step, MPICH's mpirun would otherwise start its
    # proxy with a nested srun, which waits for ever for the CPUs that the step itself holds.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_LAUNCHER": "fork", "HYDRA_BOOTSTRAP": "fork"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise UserError(f"lammps.mpirun: {command[0]} not found (the targets stage runs under it with "
                        f"launch.targets_ranks = {ranks}; set launch.targets_ranks=1 to run without MPI)") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        reason = next((ln.split("error: ", 1)[1] for ln in reversed(lines) if "hpc-botan: error: " in ln),
                      lines[-1] if lines else f"exit code {proc.returncode}")
        raise UserError(f"targets ({' '.join(command[:3])} …): {reason}")
    return Path(run_dir) / "targets" / "index.h5"


def run_finish(run_dir: str | Path, cfg: Config, stages: tuple[str, ...] = ("evaluate", "baselines", "figures",
                                                                              "report"),
               executor: str = "local") -> Path | None:
    """Evaluation, baselines, figures and report, in this process; returns the report path."""
    from hpc_botan.baselines.stage import run_baselines
    from hpc_botan.evaluate.stage import run_evaluation
    from hpc_botan.plots.figures import report_figures, write_all_figures
    from hpc_botan.report.html import write_report

    report = figures = None
    if "evaluate" in stages:
        with timed_stage(run_dir, "evaluate", executor=executor):
            run_evaluation(run_dir, cfg)
    if "baselines" in stages:
        with timed_stage(run_dir, "baselines", executor=executor):
            run_baselines(run_dir, cfg)
    if "figures" in stages:
        with timed_stage(run_dir, "figures", executor=executor):
            figures = report_figures(write_all_figures(run_dir))
    if "report" in stages:
        with timed_stage(run_dir, "report", executor=executor):
            report = write_report(run_dir, figures)
    return report

