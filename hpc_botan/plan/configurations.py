"""The configurations of a run: one per (temperature, index), temperature-major (list position = job-array
index), where each one's trajectories are stored, and which of them are still to simulate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hpc_botan.config import Config
from hpc_botan.io import h5md
from hpc_botan.io.rundir import RunLayout


@dataclass(frozen=True)
class ConfigurationTask:
    """One initial configuration: temperature ``temperatures[t_index]``, number ``index`` there."""

    t_index: int
    temperature: float
    index: int

    @property
    def name(self) -> str:
        return f"T{self.temperature:.3f}/conf-{self.index:05d}"


def configuration_tasks(cfg: Config) -> list[ConfigurationTask]:
    """All configurations of a run, temperature-major; list position = job-array index."""
    s = cfg.simulation
    return [ConfigurationTask(ti, t, i) for ti, t in enumerate(s.temperatures) for i in range(s.n_configurations)]


def trajectory_path(run_dir: str | Path, task: ConfigurationTask) -> Path:
    return RunLayout(run_dir).trajectory(task.name)


def simulated(cfg: Config) -> bool:
    """Whether the run's trajectories come from the simulate stage (not an imported data set)."""
    return cfg.source.format == "simulate"


def pending_configurations(run_dir: str | Path, cfg: Config) -> list[int]:
    """Job-array indices of the configurations whose trajectory file is not complete."""
    s = cfg.simulation
    return [k for k, task in enumerate(configuration_tasks(cfg))
            if not h5md.is_complete(trajectory_path(run_dir, task), n_runs=s.n_runs, n_atoms=s.n_particles)]
