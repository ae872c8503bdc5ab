"""What a job of a stage runs: picklable functions that import little.

Every Slurm array task unpickles its callable, which imports the callable's module; a stage part
defined next to the pipeline would import the whole pipeline (torch, the training code) in each
of the paper's 1500 simulate tasks, seconds of start-up each before any work, and before submitit
has installed its handler for the time-limit signal.  This module imports only the run directory
and timing helpers; the stage object brings its own module (the simulate stage: no torch).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.timings import timed_stage
from hpc_botan.stage import Stage


def job_logging() -> str:
    """Log lines with times in a job's output; returns the executor the job runs under."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return "slurm" if "SLURM_JOB_ID" in os.environ else "local"


def run_stage_part(stage: Stage, run_dir: str, part: str = "") -> Any:
    """One part of ``stage`` (``""``: all of it) in a job or a local subprocess, timed."""
    executor = job_logging()
    with timed_stage(run_dir, stage.name, part=part, executor=executor):
        return stage.run(Path(run_dir), load_run_config(run_dir), part, show_progress=False)
