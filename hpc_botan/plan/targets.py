"""The run's targets index: where it is, which temperatures and time points it holds, and whether it is complete.
"""
from __future__ import annotations

from pathlib import Path

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout
from hpc_botan.io.shards import (
    complete_index_size,
    index_times,
)
from hpc_botan.plan.configurations import simulated


def index_path(run_dir: str | Path) -> Path:
    path = RunLayout(run_dir).index
    if not path.is_file():
        raise UserError(f"{path}: not found; run 'hpc-botan targets {run_dir}' (or import a data set) first")
    return path


#: Temperature → time points of a targets index (the name the training code has always used).
temperatures_and_times = index_times


def targets_complete(run_dir: str | Path, cfg: Config) -> bool:
    """Whether ``targets/index.h5`` is complete and holds every configuration of the run."""
    n = complete_index_size(RunLayout(run_dir).index)
    expected = cfg.simulation.n_configurations * len(cfg.simulation.temperatures)
    return n is not None and (n == expected or not simulated(cfg))
