"""Gather what :mod:`hpc_botan.pipeline.plan` computes with: the resolved config, the cluster's array
limit, one measured LAMMPS speed, the training groups and the networks' sizes."""
from __future__ import annotations

import logging

import numpy as np
import torch

from hpc_botan.calibrate.stage import pilot_config, provisional_config
from hpc_botan.config import Config
from hpc_botan.launch.executors import max_array_size
from hpc_botan.model.build import build_model
from hpc_botan.pipeline.plan import (
    Plan,
    PlanRow,
    array_chunk_count,
    simulate_rows,
    targets_row,
    training_rows,
)
from hpc_botan.plan.tasks import training_groups, training_tasks
from hpc_botan.simulate.speed_probe import probe_speed
from hpc_botan.simulate.stage import partitions_for, simulation_resources

log = logging.getLogger("hpc_botan.plan")


def network_parameters(cfg: Config, n_outputs: int) -> int:
    """Trainable parameters of the run's network with ``n_outputs`` output columns."""
    return sum(p.numel() for p in build_model(cfg, torch.device("cpu"), n_outputs).parameters())


def build_plan(cfg: Config, *, executor: str = "slurm", steps_per_second: float | None = None,
               probe: bool = True) -> Plan:
    """The plan of ``cfg``: measures the speed here unless ``steps_per_second`` is given (or ``probe`` is off)."""
    run_cfg = provisional_config(cfg)
    s = run_cfg.simulation
    restart_bytes = None
    res = simulation_resources(run_cfg)
    if steps_per_second is not None:
        speed, source = steps_per_second, f"{steps_per_second:,.0f} steps/s (given with --steps-per-second)"
    elif probe:
        t = min(s.temperatures)
        measured = probe_speed(run_cfg, t)
        speed, restart_bytes = measured.steps_per_second, measured.restart_bytes
        source = f"{measured.describe()} at T = {t:g}, measured just now"
        if res.gpus and measured.accelerator not in ("gpu", "kokkos"):
            # the jobs will run the GPU styles: a CPU figure would be priced as GPU-hours
            res = type(res)(cpus=res.cpus, gpus=0)
            source += (f"; the jobs request {simulation_resources(run_cfg).gpus} GPU(s) each, but this machine "
                       "ran LAMMPS on its CPU: the hours are core-hours of that CPU speed (give the GPU nodes' "
                       "speed with --steps-per-second)")
    else:
        speed, source = None, "not measured (times and requeues: hpc-botan plan)"
    partitions = partitions_for(run_cfg, s.n_runs)
    if restart_bytes is None:  # positions, velocities, images, ids and types: about 80 bytes a particle
        restart_bytes = 80 * s.n_particles
    rows: list[PlanRow] = []
    chunk_size = max_array_size(cfg.launch) if executor == "slurm" else 10**9
    chunks: dict[str, int] = {}
    if cfg.simulation.calibrated_temperatures():
        pilot = pilot_config(cfg)
        rows += simulate_rows(pilot, "calibrate", speed, restart_bytes, partitions_for(pilot, pilot.simulation.n_runs),
                              res.cpus, res.gpus)
        chunks["calibrate"] = array_chunk_count(len(pilot.simulation.temperatures) * pilot.simulation.n_configurations,
                                                chunk_size)
    if run_cfg.source.format == "simulate":
        rows += simulate_rows(run_cfg, "simulate", speed, restart_bytes, partitions, res.cpus, res.gpus)
        chunks["simulate"] = array_chunk_count(len(s.temperatures) * s.n_configurations, chunk_size)
    rows.append(targets_row(run_cfg, cfg.launch.targets_ranks))
    times = {t: np.asarray(s.time_points[t]) for t in s.temperatures}
    groups = training_groups(training_tasks(run_cfg, times))
    n_out = max(len(v) for v in times.values()) if run_cfg.train.mode == "multi_time" else 1
    n_params = {"pretrain": network_parameters(run_cfg, 1), "train": network_parameters(run_cfg, n_out)}
    train = training_rows(run_cfg, groups, n_params)
    rows += train
    chunks["train"] = sum(array_chunk_count(r.jobs, chunk_size) for r in train if r.stage == "train")
    rows.append(PlanRow("finish", None, 1, note="evaluation, baselines, figures, report"))
    return Plan(rows=rows, chunks=chunks, max_array_size=chunk_size if executor == "slurm" else 0, speed=speed,
                speed_source=source, max_requeues=cfg.launch.slurm.max_requeues)
