"""What a run will cost before anything is submitted: MD steps, hours, jobs, array chunks, requeues, disk.

``hpc-botan plan CONFIG`` prints one row per stage and temperature; ``hpc-botan run --executor
slurm`` prints :func:`summary_line` before it submits.  Everything here is arithmetic on the
config, the cluster's limits and one measured speed (:mod:`hpc_botan.simulate.speed_probe`):

* simulate: a task is one configuration: preparation (melt + quench + NVT, one LAMMPS run) then
  ``n_runs`` isoconfigurational runs to the last time point, ``partitions`` of them at once
  (:func:`hpc_botan.simulate.stage.partitions_for`).  Its time is steps / measured speed.
* requeues: a job runs ``launch.slurm.time_min`` minutes, less the ``signal_delay_s`` warning,
  and a requeued one loses at most one restart interval per run in progress; the attempts a task
  needs follow (:func:`requeues_needed`).
* disk: the sizes of the arrays each stage writes (H5MD trajectories, target shards from
  :data:`hpc_botan.io.shards.ARRAYS`, checkpoints), restarts at the peak of the simulate stage.

The pilot of calibrated time points (``calibrate``) is planned like a small simulate stage; the
production times then use the config's *estimated* τα (the pilot replaces it by the measured one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hpc_botan.config import Config
from hpc_botan.io.shards import ARRAYS
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF

#: bytes of one float64 coordinate
_F64 = 8
#: what a checkpointed replica keeps: checkpoint.pt (weights + Adam's two moments), best.pt, final.pt
CHECKPOINT_COPIES = 5


@dataclass(frozen=True)
class PlanRow:
    """One stage at one temperature (``temperature`` None: the stage as a whole)."""

    stage: str
    temperature: float | None
    jobs: int
    md_steps_per_task: int | None = None
    hours_per_task: float | None = None
    resource_hours: float | None = None
    resource: str = "core"
    requeues_per_task: int | None = None
    disk_bytes: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Plan:
    rows: list[PlanRow]
    chunks: dict[str, int]
    max_array_size: int
    speed: float | None
    speed_source: str
    max_requeues: int

    @property
    def jobs(self) -> int:
        return sum(r.jobs for r in self.rows)

    @property
    def disk_bytes(self) -> float:
        return sum(r.disk_bytes for r in self.rows)


def preparation_steps(cfg: Config, temperature: float) -> int:
    """MD steps of one preparation: melt + quench + NVT for ``equilibration_tau_alpha`` τα."""
    s = cfg.simulation
    return (round(s.melt_time / s.timestep) + round(s.quench_time / s.timestep)
            + round(s.equilibration_tau_alpha * s.tau_alpha[temperature] / s.timestep))


def run_steps(cfg: Config, temperature: float) -> int:
    """MD steps of one isoconfigurational run: to the last recorded time point."""
    s = cfg.simulation
    return round(max(s.time_points[temperature]) / s.timestep)


def task_seconds(prep_steps: int, steps_per_run: int, n_runs: int, partitions: int, speed: float) -> float:
    """Wall time (s) of one simulate task at ``speed`` steps/s per run (runs ``partitions`` at a time)."""
    return (prep_steps + math.ceil(n_runs / partitions) * steps_per_run) / speed


def requeues_needed(task_s: float, time_min: int, signal_delay_s: int, lost_s: float) -> int | None:
    """Requeues one task needs: attempts of ``time_min`` minutes, each ending ``signal_delay_s`` early and
    losing up to ``lost_s`` (one restart interval) of work; None if an attempt cannot make progress."""
    useful = time_min * 60 - signal_delay_s - lost_s
    if useful <= 0:
        return None
    return max(0, math.ceil(task_s / useful) - 1)


def trajectory_bytes(n_runs: int, n_frames: int, n_particles: int) -> int:
    """One configuration's H5MD file: every run's positions at t = 0 and at the ``n_frames`` time points."""
    return n_runs * (n_frames + 1) * n_particles * 3 * _F64 + n_particles * 16


def edges_per_particle(density: float, cutoff: float = GRAPH_CUTOFF) -> float:
    """Directed graph edges per particle: the particles within ``cutoff`` of one at ``density`` (g(r) ≈ 1
    on average over the sphere; 40.2 at ρ = 1.2, against 40.6 measured on the shared sample)."""
    return density * 4.0 / 3.0 * math.pi * cutoff ** 3


def shard_bytes(n_particles: int, n_edges: int, n_frames: int) -> int:
    """One configuration's target arrays (:data:`hpc_botan.io.shards.ARRAYS`), before HDF5's overhead."""
    sizes = {"N": n_particles, "E": n_edges, "F": n_frames, "2": 2, "3": 3}
    return int(sum(np.dtype(dtype).itemsize * math.prod(sizes[d] for d in shape) for dtype, shape in ARRAYS.values()))


def array_chunk_count(n_tasks: int, max_array_size: int) -> int:
    return math.ceil(n_tasks / max_array_size) if n_tasks else 0


def simulate_rows(cfg: Config, stage: str, speed: float | None, restart_bytes: int | None,
                  partitions: int, cpus: int, gpus: int) -> list[PlanRow]:
    """The rows of a simulate stage (the production one, or the pilot as ``calibrate``); hours are
    GPU-hours if ``gpus`` (per task), else core-hours of ``cpus`` cores per task."""
    s = cfg.simulation
    sl = cfg.launch.slurm
    rows = []
    for t in s.temperatures:
        prep, run = preparation_steps(cfg, t), run_steps(cfg, t)
        steps = prep + s.n_runs * run
        hours = requeues = resource_hours = None
        if speed:
            seconds = task_seconds(prep, run, s.n_runs, partitions, speed)
            hours = seconds / 3600
            lost = s.restart_every_steps / speed if s.restart_every_steps else max(prep, run) / speed
            requeues = requeues_needed(seconds, sl.time_min, sl.signal_delay_s, lost)
            resource_hours = hours * s.n_configurations * (gpus or cpus)
        disk = s.n_configurations * trajectory_bytes(s.n_runs, len(s.time_points[t]), s.n_particles)
        rows.append(PlanRow(stage, t, s.n_configurations, steps, hours, resource_hours, "GPU" if gpus else "core",
                            requeues, disk))
    if restart_bytes:
        running = min(sl.array_parallelism, s.n_configurations * len(s.temperatures))
        peak = running * partitions * 2 * restart_bytes
        rows.append(PlanRow(stage, None, 0, disk_bytes=peak,
                            note=f"restarts at the peak ({running} tasks x {partitions} run(s) x 2 files); removed "
                                 "as runs finish"))
    return rows


def targets_row(cfg: Config, cpus: int) -> PlanRow:
    s = cfg.simulation
    n_edges = round(edges_per_particle(s.density) * s.n_particles)
    disk = sum(s.n_configurations * shard_bytes(s.n_particles, n_edges, len(s.time_points[t])) for t in s.temperatures)
    return PlanRow("targets", None, 1, disk_bytes=disk, resource="core",
                   note=f"one MPI job of {cpus} rank(s); ~{n_edges:,} edges per graph")


def training_rows(cfg: Config, groups: Sequence[tuple[str, list[str]]], n_parameters: dict[str, int]) -> list[PlanRow]:
    """One row per wave: the pretraining job, then the (T, t) job array; disk of the checkpoints."""
    n_tasks = {label: len(names) for label, names in groups}
    per_replica = CHECKPOINT_COPIES * 4 * cfg.train.n_replicas
    rows = []
    pre = [label for label, _ in groups if label == "pretrain"]
    rest = [label for label, _ in groups if label != "pretrain"]
    n_proc = cfg.launch.train_nodes * cfg.launch.train_tasks_per_node
    resource = "GPU" if cfg.launch.slurm.gpus_per_node else "core"
    for name, labels in (("pretrain", pre), ("train", rest)):
        if not labels:
            continue
        disk = sum(n_tasks[label] for label in labels) * per_replica * n_parameters.get(name, 0)
        rows.append(PlanRow(name, None, len(labels), disk_bytes=disk, resource=resource,
                            note=f"{n_proc} process(es) per job, {cfg.train.n_replicas} replica(s) per task"))
    return rows


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _hours(h: float | None) -> str:
    if h is None:
        return "—"
    if h < 1:
        return f"{h * 60:.3g} min"
    if h < 48:
        return f"{h:.3g} h"
    return f"{h / 24:.3g} d"


def format_plan(plan: Plan) -> str:
    """The plan as a Markdown table (``hpc-botan plan``'s output, quoted by README) and its totals."""
    head = ("| stage | T | jobs | MD steps per task | time per task | core/GPU-hours | requeues per task | disk |",
            "|---|---|---|---|---|---|---|---|")
    lines = list(head)
    for r in plan.rows:
        t = "all" if r.temperature is None else f"{r.temperature:g}"
        steps = "—" if r.md_steps_per_task is None else f"{r.md_steps_per_task:.3g}"
        hours = "—" if r.resource_hours is None else f"{r.resource_hours:,.3g} {r.resource}-h"
        requeues = "—" if r.requeues_per_task is None else str(r.requeues_per_task)
        if r.requeues_per_task is not None and r.requeues_per_task > plan.max_requeues:
            requeues += f" (> max_requeues {plan.max_requeues})"
        note = f" {r.note}" if r.note else ""
        jobs = str(r.jobs) if r.jobs else "—"
        lines.append(f"| {r.stage} | {t} | {jobs} | {steps} | {_hours(r.hours_per_task)} | {hours} | {requeues} | "
                     f"{format_bytes(r.disk_bytes)}{note} |")
    chunks = ", ".join(f"{stage} {n}" for stage, n in plan.chunks.items() if n)
    lines += ["", f"{plan.jobs:,} Slurm jobs (array tasks count one each); job arrays of at most "
                  f"{plan.max_array_size} tasks: {chunks or 'none'}; disk {format_bytes(plan.disk_bytes)} in all.",
              f"Speed: {plan.speed_source}."]
    too_many = [r for r in plan.rows if r.requeues_per_task is not None and r.requeues_per_task > plan.max_requeues]
    if too_many:
        lines.append(f"Warning: {', '.join(f'{r.stage} at T = {r.temperature:g}' for r in too_many)} need(s) more "
                     f"requeues than launch.slurm.max_requeues = {plan.max_requeues}: raise it, or "
                     "launch.slurm.time_min, or lammps.mpi_ranks (ensemble partitions)")
    return "\n".join(lines)


def summary_line(plan: Plan, jobs: int | None = None) -> str:
    """One line for ``hpc-botan run --executor slurm`` before it submits (``jobs``: those it submits now,
    finished stages left out; default: the whole plan's)."""
    sim = [r for r in plan.rows if r.stage == "simulate" and r.temperature is not None]
    cost = ""
    if sim and all(r.resource_hours is not None for r in sim):
        hours = sum(r.resource_hours or 0.0 for r in sim)
        requeues = max(r.requeues_per_task or 0 for r in sim)
        cost = f", simulate ≈ {hours:,.3g} {sim[0].resource}-hours with up to {requeues} requeue(s) per task"
    jobs = plan.jobs if jobs is None else jobs
    arrays = sum(plan.chunks.values())
    return (f"plan: {jobs:,} Slurm job(s) to submit; the whole run: {arrays} job array(s) of at most "
            f"{plan.max_array_size} tasks{cost}, disk ≈ {format_bytes(plan.disk_bytes)} "
            "('hpc-botan plan CONFIG' for hours and requeues per stage)")
