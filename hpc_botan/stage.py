"""What a stage of a run is: the interface every stage implements, and what one of its jobs needs.

A stage reads the run directory and writes into it; it never hands objects to the next stage,
so any stage can run in another process, on another node, days later.  Every stage knows by
itself what of it is finished (:meth:`Stage.parts` lists only the unfinished parts) and skips
finished work when it runs again.  The stages of a run, in order, are the registry
(:data:`hpc_botan.registry.STAGES`); ``hpc-botan run`` (here or on Slurm), ``hpc-botan status``
and the report iterate it.  Adding a stage means writing one subclass (in the module of the
stage's work) and listing an instance there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hpc_botan.config import Config

#: How ``hpc-botan run`` launches a stage's parts:
#:   resolve      before every other stage, in the process of ``hpc-botan run``: :meth:`Stage.resolve`
#:                turns the configuration as given into the run's configuration (e.g. calibrated time
#:                points measured in a pilot run) and opens the run directory for it; the other stages
#:                are planned, checked and run with the resolved one.  On Slurm it must be finished
#:                already (its own command submits its jobs).
#:   array        every part on its own (local: parallel subprocesses; Slurm: one job array)
#:   job          the whole stage at once (local: in this process; Slurm: one job)
#:   distributed  waves of parts (:meth:`Stage.waves`), each part a multi-process training job
#:   finish       with the other ``finish`` stages, in order, in one process (Slurm: one job)
LAUNCH_KINDS = ("resolve", "array", "job", "distributed", "finish")


@dataclass(frozen=True)
class Resources:
    """What one job of a stage needs: CPU cores and GPUs on one node."""

    cpus: int = 1
    gpus: int = 0


class Stage:
    """One stage of a run.  Subclasses set :attr:`name` and :attr:`launch` and implement the rest.

    Instances hold no state (they are pickled into Slurm jobs by reference to their class).
    """

    #: the stage's name: its folder of timings, its line in the report, its ``hpc-botan`` subcommand
    name: ClassVar[str] = ""
    #: one of :data:`LAUNCH_KINDS`
    launch: ClassVar[str] = "job"
    #: what the stage does, one line (``hpc-botan status``, the report)
    summary: ClassVar[str] = ""

    def applies(self, cfg: Config) -> bool:
        """Whether this run has the stage at all (an imported data set is not simulated)."""
        return True

    def absent_because(self, cfg: Config) -> str:
        """Why the run does not have the stage, when :meth:`applies` is false (``hpc-botan status``)."""
        return f"{cfg.source.format} data set"

    def parts(self, run_dir: Path, cfg: Config) -> list[str]:
        """The unfinished parts, in order (``[""]``: the stage is one piece; ``[]``: finished)."""
        return [] if self.done(run_dir, cfg) else [""]

    def waves(self, parts: list[str]) -> list[list[str]]:
        """The parts as groups that run one after the other (each group's parts at the same time)."""
        return [parts] if parts else []

    def done(self, run_dir: Path, cfg: Config) -> bool:
        """Whether everything the stage writes is there and complete (reads the run directory only)."""
        raise NotImplementedError

    def check(self, run_dir: Path, cfg: Config) -> None:
        """Refuse (:class:`~hpc_botan.errors.UserError`), before any part starts or is submitted, what
        would fail in every part."""

    def check_local(self, run_dir: Path, cfg: Config) -> None:
        """The same for this machine, when the stage is about to run here (e.g. a missing LAMMPS)."""

    def resources(self, cfg: Config) -> Resources:
        """What one job (one part) of the stage requests on Slurm."""
        return Resources(cpus=1)

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Any:
        """Do one part (``""``: the whole stage), skipping whatever of it is finished already."""
        raise NotImplementedError

    # ``resolve`` stages only (see :data:`LAUNCH_KINDS`): they run before the others are planned.

    def resolve(self, run_dir: str | Path, cfg: Config, executor: str | None) -> tuple[Path, Config]:
        """Resolve ``cfg`` (as given, :meth:`applies` true) into the run's configuration; returns the run
        directory, opened for it, and the resolved configuration, which :meth:`applies` no longer to.

        ``executor`` runs the stage's jobs (local, slurm, debug); ``None`` uses finished work only
        (and refuses, with :class:`~hpc_botan.errors.UserError`, where there is none).
        """
        raise NotImplementedError(f"{self.name} is not a 'resolve' stage")

    def provisional(self, cfg: Config) -> Config:
        """``cfg`` as :meth:`resolve` will probably resolve it (estimates, not validated): to plan and check
        the other stages before it ran."""
        return cfg

    def __repr__(self) -> str:
        return f"<stage {self.name}>"
