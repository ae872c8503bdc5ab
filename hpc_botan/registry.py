"""The stages of a run, in the order they run: the one list that ``hpc-botan run`` (here and on
Slurm), ``hpc-botan status`` and the report iterate.

    calibrate → simulate → targets → train (pretraining, then the (T, t) grid) → evaluate → baselines
    → figures → report

Each entry is a :class:`hpc_botan.stage.Stage`; to add a stage, write its subclass beside the
stage's work and list an instance here.  ``calibrate`` (only where the time points are
``calibrated``) is a ``resolve`` stage: it turns the configuration as given into the run's own
before the other stages are planned.
"""
from __future__ import annotations

from hpc_botan.baselines.stage import BaselinesStage
from hpc_botan.calibrate.stage import CalibrateStage
from hpc_botan.errors import UserError
from hpc_botan.evaluate.stage import EvaluateStage
from hpc_botan.plots.figures import FiguresStage
from hpc_botan.report.html import ReportStage
from hpc_botan.simulate.stage import SimulateStage
from hpc_botan.stage import Stage
from hpc_botan.targets.stage import TargetsStage
from hpc_botan.train.stage import TrainStage

_BEFORE_REPORT: tuple[Stage, ...] = (CalibrateStage(), SimulateStage(), TargetsStage(), TrainStage(),
                                     EvaluateStage(), BaselinesStage(), FiguresStage())
#: The names of the stages, in order.
STAGE_NAMES: tuple[str, ...] = (*(s.name for s in _BEFORE_REPORT), ReportStage.name)
#: The stages, in order (the report lists the timings of all of them).
STAGES: tuple[Stage, ...] = (*_BEFORE_REPORT, ReportStage(STAGE_NAMES))


def stage_named(name: str) -> Stage:
    """The stage called ``name``."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise UserError(f"no stage {name!r}; the stages are {', '.join(STAGE_NAMES)}")
