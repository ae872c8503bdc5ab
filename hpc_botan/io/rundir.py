"""A run directory is a run's identity: it holds the resolved configuration and every stage's files.

``config.yaml`` is written when a run directory is first used.  A later command with a
configuration that differs in anything but the ``launch`` section is refused, so that
files from two different experiments never mix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hpc_botan.config import Config, apply_overrides, config_from_dict, read_yaml_file, require_resolved_time_points
from hpc_botan.errors import UserError
from hpc_botan.io.durable import write_text_atomic

CONFIG_NAME = "config.yaml"
#: The pilot run that calibrates the time points (hpc_botan.calibrate): a run directory of its own,
#: written before the run's config.yaml exists (the run's time points are measured there).
PILOT_DIR = "pilot"
#: A pilot made with other settings is renamed ``pilot.superseded-N`` (N = 1, 2, …), never deleted.
SUPERSEDED_PILOT_PREFIX = PILOT_DIR + ".superseded-"
#: The folders of a run directory that its stages write (nothing else may be written there).
STAGE_FOLDERS = ("simulate", "targets", "train", "eval", "baselines", "figures", "report", "pipeline", "analysis")
#: The targets index: which configurations are stored in which shard (io/shards.py).
INDEX_FILE = "index.h5"


@dataclass(frozen=True)
class ReplicaLayout:
    """The files of one trained replica, ``RUN_DIR/train/<task>/replica-XX``."""

    dir: Path

    @property
    def checkpoint(self) -> Path:
        """The latest training state (model, optimiser, position, RNG): what a resume continues from."""
        return self.dir / "checkpoint.pt"

    @property
    def best(self) -> Path:
        """The weights selected on validation."""
        return self.dir / "best.pt"

    @property
    def final(self) -> Path:
        """The weights after the last epoch; its presence marks the replica finished."""
        return self.dir / "final.pt"

    @property
    def metrics(self) -> Path:
        """One row per epoch: losses, validation ρ, seconds, learning rate."""
        return self.dir / "metrics.csv"

    @property
    def lock(self) -> Path:
        return self.dir / ".train.lock"

    @property
    def tensorboard(self) -> Path:
        return self.dir / "tensorboard"

    def files(self) -> tuple[Path, ...]:
        """Every file a training writes atomically (their killed writers' temporaries are removed)."""
        return self.checkpoint, self.best, self.final, self.metrics

    def model_file(self) -> Path | None:
        """What the replica predicts with: ``best.pt`` where validation selected one, else ``final.pt``;
        None while it is unfinished."""
        if not self.final.is_file():
            return None
        return self.best if self.best.is_file() else self.final


@dataclass(frozen=True)
class RunLayout:
    """Every path of a run directory, named once: nothing else spells them.

    ``RunLayout(run_dir).index`` is ``run_dir/targets/index.h5``; the stages write only inside
    :data:`STAGE_FOLDERS` and the run's identity is ``config.yaml``.
    """

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def pilot(self) -> Path:
        return self.root / PILOT_DIR

    # simulate: one HDF5 trajectory file per (temperature, configuration), LAMMPS work and logs
    @property
    def simulate(self) -> Path:
        return self.root / "simulate"

    def trajectory(self, name: str) -> Path:
        """The trajectories of configuration ``name`` (e.g. ``T0.440/c00003``)."""
        return self.simulate / f"{name}.h5"

    def simulation_work(self, name: str) -> Path:
        return self.simulate / "work" / name

    def simulation_logs(self, name: str) -> Path:
        return self.simulate / "logs" / name

    def simulation_lock(self, name: str) -> Path:
        return self.simulate / "work" / f"{name}.lock"

    def jobs(self, stage: str) -> Path:
        """The submitit folder of a stage's Slurm or local jobs (its logs and pickled job specs)."""
        return self.root / stage / "submitit"

    # targets: sharded HDF5 and their index
    @property
    def targets(self) -> Path:
        return self.root / "targets"

    @property
    def index(self) -> Path:
        return self.targets / INDEX_FILE

    # train: one folder per task, one per replica in it
    @property
    def train(self) -> Path:
        return self.root / "train"

    def task(self, name: str) -> Path:
        return self.train / name

    def replica(self, task: str, replica: int) -> ReplicaLayout:
        return ReplicaLayout(self.task(task) / f"replica-{replica:02d}")

    #: What locks a run's model and train settings (a glob under the run): any trained epoch.
    TRAINED_EPOCHS = "train/**/metrics.csv"

    def replicas(self, under: str = "") -> list[ReplicaLayout]:
        """Every replica directory of every task (or of the tasks under ``train/<under>``), sorted."""
        base = self.train / under if under else self.train
        return [ReplicaLayout(d) for d in sorted(base.glob("**/replica-*")) if d.is_dir()]

    def finished_models(self, under: str = "") -> list[Path]:
        """Every finished replica's ``final.pt`` (of the tasks under ``train/<under>``)."""
        return [r.final for r in self.replicas(under) if r.final.is_file()]

    # eval: scores of the networks and the baselines
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def metrics(self) -> Path:
        return self.eval / "metrics.json"

    @property
    def baselines(self) -> Path:
        return self.eval / "baselines.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def figures_index(self) -> Path:
        """What the figures stage drew: one entry per figure (name, files, caption or why it was skipped)."""
        return self.figures / "index.json"

    @property
    def report(self) -> Path:
        return self.root / "report" / "report.html"

    @property
    def pipeline(self) -> Path:
        return self.root / "pipeline"

    @property
    def slurm_jobs(self) -> Path:
        """The job ids of the Slurm chain that 'hpc-botan run --executor slurm' submitted, per stage."""
        return self.pipeline / "slurm-jobs.json"

    @property
    def timings(self) -> Path:
        """One JSON record per finished stage or job: its wall time (the cost plan's measurements)."""
        return self.pipeline / "timings"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The key path of the first difference between two nested mappings (with both values), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return sub
            found = first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    return None if a == b else f"{path} ({a!r} here, {b!r} in the run directory)"


def load_run_config(run_dir: str | Path) -> Config:
    """The configuration stored in ``run_dir/config.yaml``."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{path}: not found; is {run_dir} a run directory (made by 'hpc-botan simulate')?")
    cfg = config_from_dict(read_yaml_file(path), str(path))
    try:
        require_resolved_time_points(cfg, "a run directory")  # only hand-made ones can hold 'calibrated'
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return cfg


def check_writable_run_dir(run_dir: str | Path) -> None:
    """Refuse, before any work, an existing run directory that this user cannot write (one line).

    Every stage writes into its run directory (results, locks, logs): failing at the end of the
    work, or with a PermissionError traceback, helps nobody.
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not os.access(run_dir, os.W_OK | os.X_OK):
        raise UserError(f"{run_dir}: not writable by this user (read-only or someone else's run directory); "
                        "every stage writes there: copy it, or ask its owner")


def check_run_dir_path(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path if it is, or can become, a directory; else a one-line :class:`UserError`."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: is a file, not a directory; --out names the run directory to create or resume")
    blocking = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"{run_dir}: cannot be created, {blocking} is a file")
    return run_dir


def holds_only_pilots(run_dir: Path) -> bool:
    """Whether every entry of the existing directory ``run_dir`` is a calibration pilot (current or superseded)."""
    return all(p.name == PILOT_DIR or p.name.startswith(SUPERSEDED_PILOT_PREFIX) for p in run_dir.iterdir())


def set_pilot_aside(run_dir: Path) -> Path:
    """Rename ``run_dir/pilot`` to the first free ``run_dir/pilot.superseded-N``; return the new path.

    A rename within one directory is atomic: the old pilot is either where it was or whole under its
    new name, and nothing simulated is deleted.
    """
    n = 1
    while (target := run_dir / f"{SUPERSEDED_PILOT_PREFIX}{n}").exists():
        n += 1
    (run_dir / PILOT_DIR).rename(target)
    return target


def open_run_dir(run_dir: str | Path, cfg: Config) -> Path:
    """Create ``run_dir`` for ``cfg``, or check that an existing one belongs to ``cfg``.

    The ``launch`` section of the stored configuration is updated (a run may be resumed on
    another machine); any other difference raises :class:`UserError` naming the first key.
    ``cfg`` must have resolved time points (``calibrated`` ones are measured first, by
    :func:`hpc_botan.calibrate.stage.calibrate`); a directory holding only the pilot run of
    that calibration (and the pilots it superseded) counts as new.
    """
    require_resolved_time_points(cfg, "a run directory")
    run_dir = check_run_dir_path(run_dir)
    path = run_dir / CONFIG_NAME
    if path.exists():
        stored = load_run_config(run_dir)
        diff = first_difference(cfg.identity(), stored.identity())
        if diff:
            raise UserError(
                f"{path}: this run directory holds a different configuration (differs at {diff}); "
                "use another --out, or the same configuration to resume"
            )
    elif run_dir.exists() and not holds_only_pilots(run_dir):
        raise UserError(f"{run_dir}: exists, is not empty and has no {CONFIG_NAME}; refusing to write into it")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, cfg.to_yaml())
    return run_dir


def run_config_with_overrides(run_dir: str | Path, overrides: list[str], sections: tuple[str, ...],
                              locked_by: str, check: Callable[[Config], None] | None = None) -> Config:
    """The stored configuration with ``--set`` overrides of ``sections`` applied and saved.

    Changing those sections is allowed only while nothing under ``run_dir`` matches the glob
    ``locked_by`` (no results that depend on them yet); afterwards an override that changes
    anything is refused.  ``check(cfg)`` (raising :class:`UserError`) validates the new
    configuration against the run's data before it is stored: a refused setting is never written.
    """
    run_dir = Path(run_dir)
    stored = load_run_config(run_dir)
    if not overrides:
        return stored
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key.split(".", 1)[0] not in sections:
            raise UserError(f"--set {item}: only {', '.join(s + '.*' for s in sections)} may be set here")
    cfg = config_from_dict(apply_overrides(stored.to_dict(), overrides), "--set")
    if cfg.identity() != stored.identity():
        if check is not None:
            check(cfg)
        evidence = next(run_dir.glob(locked_by), None)
        if evidence is not None:
            diff = first_difference(cfg.identity(), stored.identity())
            raise UserError(f"{evidence}: results exist for the stored configuration; --set changes {diff}; "
                            "use a new run directory")
        write_text_atomic(run_dir / CONFIG_NAME, cfg.to_yaml())
    return cfg
