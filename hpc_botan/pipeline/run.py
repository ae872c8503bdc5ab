"""``hpc-botan run``: the whole job, here or as a chain of Slurm jobs.

First the ``resolve`` stages turn the configuration into the run's (:func:`resolve_config`;
calibrated time points: the pilot measures τα).  Locally (:func:`run_local`) the stages then run one
after the other: the simulations as
``launch.local_parallelism`` subprocesses, the targets under ``mpirun -n launch.targets_ranks``,
the training in this process, then evaluation, baselines, figures and the report.

On Slurm (:func:`submit_slurm`) every unfinished stage becomes jobs that wait for the previous
ones (``--dependency=afterok``; a failed job cancels the jobs after it):

    simulate   job array, one task per unfinished configuration
    targets    one job of launch.targets_ranks CPUs running the MPI targets stage
    pretrain   one training job (launch.train_nodes x launch.train_tasks_per_node processes)
    train      job array over the (T, t) grid, each element such a multi-process training job
    finish     evaluation, baselines, figures, report

Resuming is the same command again: finished stages are not started (or submitted), and the
stages skip their finished parts (trajectory files, shards, replicas with ``final.pt``, and
replicas continue from their checkpoints).  The ids of submitted jobs are kept in
``RUN_DIR/pipeline/slurm-jobs.json`` so that a second ``run`` does not race jobs still queued.
"""
from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import submitit
from submitit.core.utils import FailedSubmissionError
from tqdm import tqdm

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.durable import exclusive_lock, write_text_atomic
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.io.timings import timed_stage
from hpc_botan.launch.executors import (
    Resumable,
    array_ids,
    cancel_jobs,
    check_submit_limit,
    job_result,
    make_executor,
    map_tasks,
    max_array_size,
    split_array,
)
from hpc_botan.launch.training_job import TrainingJob
from hpc_botan.pipeline.job_bodies import job_logging, run_stage_part
from hpc_botan.pipeline.plan import summary_line
from hpc_botan.pipeline.planning import build_plan
from hpc_botan.plan.tasks import planned_tasks, training_split
from hpc_botan.registry import STAGES
from hpc_botan.stage import Resources, Stage
from hpc_botan.train.stage import TrainStage

log = logging.getLogger("hpc_botan.pipeline")

#: Slurm states in which a job will never write its result.
DEAD_STATES = {"BOOT_FAIL", "CANCELLED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}
#: What :func:`_squeue_states` reports for a pending job whose dependency failed: with
#: ``kill-on-invalid-dep=no`` (a requeue must not cancel the jobs after it) Slurm keeps such a job
#: pending for ever, so the wait must treat it as dead.
NEVER_STARTS = "PENDING(DependencyNeverSatisfied)"
#: States squeue still lists for a job whose work is over (Slurm is cleaning up after it).
ENDING_STATES = {"COMPLETING"}
#: The submitit folder of the finishing job (evaluation, baselines, figures, report).
FINISH_FOLDER = "eval"


# --------------------------------------------------------------------------- job bodies (picklable)

class PipelineTrainingJob(TrainingJob):
    """A :class:`TrainingJob` for one group of tasks that records its time (first rank only)."""

    def __init__(self, run_dir: str | Path, task_names: list[str], label: str):
        super().__init__(run_dir, ("botan", "ntgnn"), task_names)
        self.label = label

    def __call__(self) -> list[str]:
        if submitit.JobEnvironment().global_rank != 0:
            return super().__call__()
        with timed_stage(self.run_dir, "train", part=self.label, executor="slurm"):
            return super().__call__()


def finish_job(run_dir: str, stages: Sequence[Stage]) -> str:
    """The finishing stages (evaluation, baselines, figures, report) in order inside one job;
    returns the report path."""
    executor = job_logging()
    cfg = load_run_config(run_dir)
    for stage in stages:
        with timed_stage(run_dir, stage.name, executor=executor):
            stage.run(Path(run_dir), cfg, show_progress=False)
    return str(RunLayout(run_dir).report)


# --------------------------------------------------------------------------- local

def resolving_stages(cfg: Config) -> list[Stage]:
    """The registry's ``resolve`` stages that ``cfg`` (as given) needs (calibrated time points: the pilot)."""
    return [stage for stage in STAGES if stage.launch == "resolve" and stage.applies(cfg)]


def resolve_config(run_dir: str | Path, cfg: Config, executor: str | None) -> tuple[Path, Config]:
    """``cfg`` resolved by the registry's ``resolve`` stages, in order, and the run directory they opened
    for it (``run_dir`` and ``cfg`` as they are where none applies: the directory is not opened).

    ``executor`` runs their jobs (``None``: only finished work is used, or they refuse).
    """
    run_dir = Path(run_dir)
    for stage in STAGES:
        if stage.launch == "resolve" and stage.applies(cfg):
            run_dir, cfg = stage.resolve(run_dir, cfg, executor=executor)
    return run_dir, cfg


def provisional_config(cfg: Config) -> Config:
    """``cfg`` as the ``resolve`` stages will probably resolve it: to plan the run before they ran."""
    for stage in resolving_stages(cfg):
        cfg = stage.provisional(cfg)
    return cfg


def run_local(run_dir: str | Path, cfg: Config, *, show_progress: bool = True,
              stages: Sequence[Stage] = STAGES) -> Path:
    """Every unfinished stage in turn, on this machine; returns the report path.

    The ``resolve`` stages come first (calibrated time points: the pilot runs here,
    :class:`hpc_botan.calibrate.stage.CalibrateStage`); the others get the resolved configuration.
    """
    run_dir, cfg = resolve_config(run_dir, cfg, executor="local")
    check_training_world(cfg)
    with pipeline_lock(run_dir):
        refuse_if_jobs_queued(run_dir)
        return _run_local_stages(run_dir, cfg, show_progress, stages)


def stages_to_run(run_dir: Path, cfg: Config, stages: Sequence[Stage]) -> list[tuple[Stage, list[str]]]:
    """The stages with work left, each with its unfinished parts, in order.

    The finishing stages (evaluation, baselines, figures, report) run on every ``run``, finished or
    not: they take minutes, their inputs may have changed under them (more replicas, a new
    version), and they are what a user reads; ``hpc-botan status`` says whether they are current.
    The ``resolve`` stages are not among them: :func:`resolve_config` ran them before.
    """
    out = []
    for stage in stages:
        if stage.launch == "resolve" or not stage.applies(cfg):  # resolved before (resolve_config)
            continue
        parts = [""] if stage.launch == "finish" else stage.parts(run_dir, cfg)
        if parts:
            out.append((stage, parts))
        else:
            log.info("run: %s finished earlier, skipped", stage.name)
    return out


def _run_local_stages(run_dir: Path, cfg: Config, show_progress: bool, stages: Sequence[Stage]) -> Path:
    todo = stages_to_run(run_dir, cfg, stages)
    for stage, _ in todo:
        stage.check(run_dir, cfg)
        stage.check_local(run_dir, cfg)
    for stage, parts in todo:
        if stage.launch == "array":
            log.info("run: %s %d part(s)", stage.name, len(parts))
            map_tasks(run_stage_part, [(stage, str(run_dir), p) for p in parts], kind="local",
                      folder=RunLayout(run_dir).jobs(stage.name), launch=cfg.launch, resources=stage.resources(cfg),
                      name=stage.name)
        else:
            log.info("run: %s%s", stage.name, f" ({len(parts)} part(s))" if parts != [""] else "")
            with timed_stage(run_dir, stage.name):
                stage.run(run_dir, cfg, show_progress=show_progress)
    return RunLayout(run_dir).report


# --------------------------------------------------------------------------- Slurm

@dataclass
class SubmittedStage:
    """The jobs of one stage of a submitted chain."""

    stage: str
    jobs: list[Any] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [str(j.job_id) for j in self.jobs]

    @property
    def dependency_ids(self) -> list[str]:
        """The ids later jobs wait for: each array's id (a split array has several), else the job ids."""
        return array_ids(self.jobs)


def submit_slurm(run_dir: str | Path, cfg: Config, stages: Sequence[Stage] = STAGES) -> list[SubmittedStage]:
    """Submit every unfinished stage as Slurm jobs chained by dependencies; returns them in order.

    ``array`` stages become a job array, ``job`` stages one job, the ``distributed`` training one
    multi-process job array per wave (pretraining, then the grid), and the ``finish`` stages one
    job at the end.  The ids are recorded in ``pipeline/slurm-jobs.json`` after every stage, so an
    interrupted submission is still known to the next ``run``; on any failure (or Ctrl-C) the
    jobs submitted so far are cancelled.
    """
    run_dir, cfg = resolve_config(run_dir, cfg, executor=None)  # from a finished pilot, or refused
    check_training_world(cfg)
    la = cfg.launch
    chain: list[SubmittedStage] = []

    def after() -> list[str]:
        return chain[-1].dependency_ids if chain else []

    def executor(folder: str, name: str, resources: Resources, nodes: int = 1, tasks_per_node: int = 1):
        return make_executor("slurm", RunLayout(run_dir).jobs(folder), la, resources, name, nodes=nodes,
                             tasks_per_node=tasks_per_node, after=after())

    def submitted(stage: SubmittedStage) -> None:
        chain.append(stage)
        write_text_atomic(RunLayout(run_dir).slurm_jobs, json.dumps({s.stage: s.ids for s in chain}, indent=1))

    with pipeline_lock(run_dir):
        refuse_if_jobs_queued(run_dir)
        todo = stages_to_run(run_dir, cfg, stages)
        for stage, _ in todo:
            stage.check(run_dir, cfg)
        finishing = [stage for stage, _ in todo if stage.launch == "finish"]
        n_jobs = chain_job_count(run_dir, cfg, todo)
        log.info("%s", summary_line(build_plan(cfg, probe=False), n_jobs))
        check_submit_limit(la, n_jobs)
        try:
            for stage, parts in todo:
                name = f"hpc-botan-{stage.name}"
                if stage.launch == "array":
                    submitted(SubmittedStage(stage.name, map_tasks(
                        run_stage_part, [(stage, str(run_dir), p) for p in parts], kind="slurm",
                        folder=RunLayout(run_dir).jobs(stage.name), launch=la, resources=stage.resources(cfg),
                        name=name, wait=False, after=after())))
                elif stage.launch == "job":
                    ex = executor(stage.name, name, stage.resources(cfg))
                    submitted(SubmittedStage(stage.name, [ex.submit(Resumable(run_stage_part), stage, str(run_dir))]))
                elif stage.launch == "distributed":
                    assert isinstance(stage, TrainStage), "only training is launched as distributed jobs"
                    groups = stage.unfinished_groups(run_dir, cfg)
                    for wave in stage.waves(parts):
                        ex = executor(stage.name, name, stage.resources(cfg), la.train_nodes, la.train_tasks_per_node)
                        jobs = []
                        # job arrays over the (T, t) grid, split like every array (split_array)
                        for chunk in split_array(len(wave), max_array_size(la), la.slurm.array_parallelism):
                            ex.update_parameters(slurm_array_parallelism=chunk.parallelism)
                            with ex.batch():
                                jobs += [ex.submit(PipelineTrainingJob(str(run_dir), groups[label], label))
                                         for label in wave[chunk.start:chunk.stop]]
                        submitted(SubmittedStage("pretrain" if wave == ["pretrain"] else stage.name, jobs))
            if finishing:
                cpus = max(stage.resources(cfg).cpus for stage in finishing)
                ex = executor(FINISH_FOLDER, "hpc-botan-finish", Resources(cpus=cpus))
                submitted(SubmittedStage("finish", [ex.submit(Resumable(finish_job), str(run_dir), tuple(finishing))]))
        except FailedSubmissionError as exc:  # carries sbatch's complaint
            cancel(chain)
            raise UserError(f"sbatch refused a job: {' '.join(str(exc).split())[-400:]} (launch.slurm.* in the "
                            "config)") from None
        except BaseException:  # a user mistake, Ctrl-C, a bug: no half chain stays queued
            cancel(chain)
            raise
    for s in chain:
        log.info("submitted %s: %s", s.stage, ", ".join(s.ids) if len(s.ids) <= 4 else
                 f"job array(s) {', '.join(s.dependency_ids)} ({len(s.ids)} tasks)")
    return chain


def chain_job_count(run_dir: Path, cfg: Config, todo: list[tuple[Stage, list[str]]]) -> int:
    """How many Slurm jobs :func:`submit_slurm` submits for ``todo`` (each array task counts one)."""
    n = 0
    for stage, parts in todo:
        if stage.launch == "array":
            n += len(parts)
        elif stage.launch == "job":
            n += 1
        elif stage.launch == "distributed":
            n += sum(len(wave) for wave in stage.waves(parts))
    return n + (1 if any(stage.launch == "finish" for stage, _ in todo) else 0)


def stage_resources(cfg: Config, stages: Sequence[Stage] = STAGES) -> dict[str, Resources]:
    """What each Slurm job of the chain requests: GPUs only where a stage uses them.

    simulate: ``lammps.mpi_ranks × lammps.omp_threads`` cores (+ ``lammps.gpus`` on GPU nodes);
    targets: ``launch.targets_ranks`` cores (MPI, CPU only); train: per process
    ``launch.slurm.cpus_per_task`` cores and ``launch.slurm.gpus_per_node`` GPUs; finish
    (evaluation, baselines, figures, report, in one job): 1 core.
    """
    out = {stage.name: stage.resources(cfg) for stage in stages if stage.launch not in ("resolve", "finish")}
    finishing = [stage.resources(cfg) for stage in stages if stage.launch == "finish"]
    out["finish"] = Resources(cpus=max(r.cpus for r in finishing), gpus=max(r.gpus for r in finishing))
    return out


def check_run_plan(run_dir: str | Path, cfg: Config) -> None:
    """Refuse, before the first stage, settings that would fail hours in.

    The training tasks are planned from the time points the run will have (the config's, or the
    targets of an imported data set): ``train.time_indices``, the pretraining temperature and time
    index, hold-out temperatures and the joint mode are checked; so are the training world and
    whether each temperature leaves enough training configurations for one optimiser step.
    """
    planned_tasks(run_dir, cfg)
    check_training_world(cfg)
    tr = cfg.train
    if cfg.source.format == "simulate":
        n_train = cfg.simulation.n_train
        fit, _ = training_split(n_train, tr)
        per_step = tr.data_parallel * max(tr.batch_graphs, tr.ntgnn.batch_graphs if tr.ntgnn.enabled else 1)
        if len(fit) < per_step:
            raise UserError(f"simulation.n_train = {n_train} leaves {len(fit)} configuration(s) per temperature to "
                            f"train on after train.validation_fraction = {tr.validation_fraction:g}, fewer than one "
                            f"optimiser step needs ({tr.data_parallel} data-parallel rank(s) x {per_step // tr.data_parallel}"
                            " graph(s)); raise n_train or lower the batch")


def check_training_world(cfg: Config) -> None:
    """Refuse, before anything runs, a training launch that cannot form its R x D world."""
    la = cfg.launch
    n_proc = la.train_nodes * la.train_tasks_per_node
    if n_proc % cfg.train.data_parallel:
        raise UserError(f"launch: {n_proc} training processes (train_nodes x train_tasks_per_node) are not a "
                        f"multiple of train.data_parallel = {cfg.train.data_parallel}")


def pipeline_lock(run_dir: Path):
    """Held while a ``run`` works on (or submits for) ``run_dir``: two at once would race."""
    return exclusive_lock(RunLayout(run_dir).pipeline / ".run.lock", f"{run_dir} (another 'hpc-botan run')")


def _squeue_states(job_ids: list[str], all_states: bool) -> dict[str, str] | None:
    """Job id → Slurm state for the jobs squeue still knows (:data:`NEVER_STARTS` for a job whose
    dependency failed); None when squeue itself failed."""
    if not job_ids:
        return {}
    cmd = ["squeue", "-h", "-r", "-o", "%i %T %r", "-j", ",".join(job_ids)] + (["-t", "all"] if all_states else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        return None  # e.g. the controller did not answer: nothing is known
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            never = parts[1] == "PENDING" and parts[2:] == ["DependencyNeverSatisfied"]
            states[parts[0]] = NEVER_STARTS if never else parts[1]
    return states


def _live_jobs(job_ids: list[str]) -> dict[str, str] | None:
    """The jobs of ``job_ids`` that are queued or still running (not merely completing)."""
    states = _squeue_states(job_ids, all_states=False)
    if states is None:
        return None
    return {i: s for i, s in states.items() if s not in ENDING_STATES}


def wait_until_left_queue(chain: list[SubmittedStage], timeout: float = 120.0, poll_seconds: float = 1.0) -> None:
    """Return once no job of ``chain`` is queued or running any more (at most ``timeout`` s).

    A job's result file is written by the job itself, a moment before its process ends and
    Slurm takes it off the queue; a ``run`` that returned in that moment would leave a re-run
    refused by :func:`refuse_if_jobs_queued`.
    """
    ids = [str(job.job_id) for s in chain for job in s.jobs]
    deadline = time.time() + timeout
    while True:
        live = _live_jobs(ids)
        if live is not None and not live:
            return
        if time.time() > deadline:
            log.warning("job(s) %s are still listed by squeue after they finished", " ".join(sorted(live or ids)))
            return
        time.sleep(poll_seconds)


def refuse_if_jobs_queued(run_dir: Path) -> None:
    """Refuse to start while jobs of an earlier ``run`` on this directory are queued or running."""
    path = RunLayout(run_dir).slurm_jobs
    if not path.is_file():
        return
    try:
        ids = [i for ids in json.loads(path.read_text()).values() for i in ids]
    except ValueError:
        return
    live = _live_jobs(ids)  # None: no Slurm reachable from here, nothing to race
    never = sorted(i for i, state in (live or {}).items() if state == NEVER_STARTS)
    if never:
        # left by a run that stopped waiting: they would wait for ever and race nothing
        log.info("cancelling job(s) %s of an earlier run: a job they depend on failed", " ".join(never))
        cancel_jobs(never)
        live = {i: s for i, s in live.items() if s != NEVER_STARTS}
    if live:
        shown = ", ".join(sorted(live)[:5]) + (" …" if len(live) > 5 else "")
        raise UserError(f"{path}: job(s) {shown} of an earlier 'hpc-botan run' are still queued or running; wait "
                        "for them (squeue --me) or scancel them, then re-run")


def cancel(chain: list[SubmittedStage]) -> None:
    """scancel every job of ``chain`` (those already finished are unaffected)."""
    cancel_jobs(sorted({i for s in chain for i in s.dependency_ids}))


def wait_for_chain(chain: list[SubmittedStage], poll_seconds: float = 2.0, max_poll_seconds: float = 60.0,
                   grace_seconds: float = 30.0) -> Any:
    """Wait for every job of ``chain`` in order; return the last job's result.

    A failed job, one that Slurm reports as ended without a result (cancelled, timed out
    without requeue, node failure), or one that can never start because a job it depends on
    failed, for ``grace_seconds``, cancels the rest of the chain and raises :class:`UserError`.  When squeue itself fails (a busy controller) nothing is
    concluded.  The poll interval grows from ``poll_seconds`` to ``max_poll_seconds``.
    """
    jobs = [(s.stage, job) for s in chain for job in s.jobs]
    result = None
    with tqdm(total=len(jobs), desc="run", unit="job") as bar:
        for stage, job in jobs:
            bar.set_description(f"run: {stage}")
            gone_since = None
            interval = poll_seconds
            while not job.done():
                time.sleep(interval)
                interval = min(interval * 1.5, max_poll_seconds)
                states = _squeue_states([str(job.job_id)], all_states=True)
                if states is None:
                    continue
                state = states.get(str(job.job_id))
                if state in DEAD_STATES or state in (None, NEVER_STARTS):
                    gone_since = gone_since or time.time()
                    # the result file may land a moment after the state changes
                    if time.time() - gone_since > grace_seconds and not job.done():
                        cancel(chain)
                        if state == NEVER_STARTS:
                            raise UserError(f"{stage} job {job.job_id} can never start: a job it depends on "
                                            f"failed (squeue -j {job.job_id} -o %E names it; its log is in "
                                            "that stage's submitit folder); re-run the same command to resume")
                        raise UserError(f"{stage} job {job.job_id} ended without a result (Slurm state "
                                        f"{state or 'gone'}; logs: {job.paths.stderr}); re-run the same command "
                                        "to resume")
                else:
                    gone_since = None
            try:
                result = job_result(job)
            except UserError:
                cancel(chain)
                raise
            bar.update(1)
    return result
