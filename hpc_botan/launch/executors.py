"""One launcher for a laptop and a Slurm cluster: submitit executors over picklable stage functions.

``executor = "local"``  subprocesses on this machine, at most ``launch.local_parallelism`` at once;
``executor = "slurm"``  a Slurm job array (one task per item, ``launch.slurm.*`` parameters);
``executor = "debug"``  in this process, one item after the other (for debugging with pdb).

Only this package knows about Slurm.  submitit keeps its pickles and each task's stdout/
stderr under ``folder`` (``%j`` is the job id), which is where to look when a task fails.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import submitit
from tqdm import tqdm

from hpc_botan.config import LaunchConfig
from hpc_botan.errors import UserError
from hpc_botan.stage import Resources

log = logging.getLogger("hpc_botan.launch")

EXECUTORS = ("local", "slurm", "debug")


def slurm_parameters(launch: LaunchConfig, resources: Resources, name: str, nodes: int = 1,
                     tasks_per_node: int = 1, after: Sequence[str] = ()) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for a Slurm job or array (pure; tested by construction).

    CPUs and GPUs are exactly ``resources`` (what this stage uses, see
    :func:`hpc_botan.pipeline.run.stage_resources`); the rest comes from ``launch.slurm``.

    ``after``: job ids (an array's id stands for all its tasks) that must all finish successfully
    before this job starts; if one of them fails, Slurm cancels this job too
    (``kill-on-invalid-dep``) instead of leaving it pending for ever.
    """
    s = launch.slurm
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": s.time_min,
        "nodes": nodes,
        "tasks_per_node": tasks_per_node,
        "cpus_per_task": resources.cpus,
        "slurm_array_parallelism": s.array_parallelism,
        "slurm_signal_delay_s": s.signal_delay_s,
    }
    if resources.gpus:
        params["gpus_per_node"] = resources.gpus
    if s.partition:
        params["slurm_partition"] = s.partition
    if s.mem_gb is not None:
        params["mem_gb"] = s.mem_gb
    if s.setup:
        params["slurm_setup"] = list(s.setup)
    extra = dict(s.additional_parameters)
    if after:
        extra["dependency"] = "afterok:" + ":".join(str(j) for j in after)
        extra["kill-on-invalid-dep"] = "yes"
    if extra:
        params["slurm_additional_parameters"] = extra
    return params


def make_executor(kind: str, folder: str | Path, launch: LaunchConfig, resources: Resources, name: str,
                  nodes: int = 1, tasks_per_node: int = 1, after: Sequence[str] = ()):
    """A submitit executor of ``kind`` writing its files under ``folder`` (one node unless told).

    ``after`` (Slurm only): job ids this job waits for, see :func:`slurm_parameters`.
    """
    if kind not in EXECUTORS:
        raise UserError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {kind!r}")
    folder = Path(folder) / "%j"
    if kind == "slurm":
        if shutil.which("sbatch") is None:
            raise UserError("--executor slurm: no sbatch on PATH (run on a Slurm login node, or use --executor local)")
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=launch.slurm.max_requeues)
        executor.update_parameters(**slurm_parameters(launch, resources, name, nodes, tasks_per_node, after))
        return executor
    if kind == "debug":
        return _DebugExecutor(submitit.AutoExecutor(folder=folder, cluster="debug"))
    executor = submitit.AutoExecutor(folder=folder, cluster="local")
    executor.update_parameters(name=name, timeout_min=60 * 24 * 7, tasks_per_node=tasks_per_node)
    return executor


@dataclass(frozen=True)
class _RefusedTask:
    """What a task of the debug executor returns instead of raising a :class:`UserError`."""

    message: str


class _ReturningUserErrors:
    """``fn`` for the debug executor: a user mistake comes back as a value, so that submitit's
    debugger (kept for real bugs) does not open on it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except UserError as exc:
            return _RefusedTask(str(exc))


class _DebugExecutor:
    """submitit's debug executor (tasks run here, pdb on an unexpected exception), minus pdb on UserError."""

    def __init__(self, inner):
        self._inner = inner

    def submit(self, fn, *args, **kwargs):
        return self._inner.submit(_ReturningUserErrors(fn), *args, **kwargs)

    def map_array(self, fn, *iterables):
        return self._inner.map_array(_ReturningUserErrors(fn), *iterables)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def wait_for_jobs(jobs: list, desc: str) -> list[Any]:
    """Wait for ``jobs`` with a progress bar; raise :class:`UserError` naming the first failure."""
    results: list[Any] = [None] * len(jobs)
    done: set[int] = set()
    with tqdm(total=len(jobs), desc=desc, unit="job") as bar:
        while len(done) < len(jobs):
            for k, job in enumerate(jobs):
                if k not in done and job.done():
                    done.add(k)
                    bar.update(1)
                    results[k] = job_result(job)
            if len(done) < len(jobs):
                time.sleep(1.0)
    return results


_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.*)$")


def job_result(job) -> Any:
    """The job's result; a failure becomes one :class:`UserError` line with the task's own message."""
    try:
        # a job of several tasks (e.g. distributed training) reports through its first task
        result = job.results()[0] if getattr(job, "num_tasks", 1) > 1 else job.result()
        if isinstance(result, _RefusedTask):
            raise UserError(result.message)
        return result
    except UserError:
        raise
    except Exception as exc:  # submitit wraps the task's exception with its traceback as text
        lines = [ln.strip() for ln in str(exc).splitlines()]
        errors = [m for m in map(_ERROR_LINE.match, lines) if m]
        if errors:
            kind, text = errors[-1].groups()
            reason = text if kind in ("UserError", "ConfigError", "LammpsError") else f"{kind}: {text}"
        else:
            reason = next((ln for ln in lines if ln), type(exc).__name__)
        try:
            where = f" (submitit logs: {job.paths.stderr})"
        except Exception:
            where = ""
        raise UserError(f"job {job.job_id} failed: {reason}{where}") from None


def map_tasks(fn: Callable[..., Any], args: Sequence[tuple], *, kind: str, folder: str | Path,
              launch: LaunchConfig, resources: Resources, name: str, wait: bool = True,
              after: Sequence[str] = ()) -> list[Any]:
    """Run ``fn(*a)`` for every ``a`` in ``args`` with executor ``kind``.

    Returns the results (``wait=True``) or the submitit jobs (``wait=False``).  On Slurm
    one job array is submitted (after the jobs ``after``); locally at most ``launch.local_parallelism`` tasks run at
    once; with ``debug`` they run here in order.
    """
    if not args:
        return []
    executor = make_executor(kind, folder, launch, resources, name, after=after)
    if kind == "debug":
        results = []
        for a in tqdm(args, desc=name, unit="job"):
            results.append(job_result(executor.submit(fn, *a)))
        return results
    if kind == "slurm":
        try:
            jobs = executor.map_array(fn, *zip(*args))
        except Exception as exc:  # submitit's FailedSubmissionError carries sbatch's complaint
            reason = " ".join(str(exc).split())
            raise UserError(f"sbatch refused the job array: {reason[-400:]} (launch.slurm.* in the config)") from None
        log.info("submitted Slurm job array %s (%d tasks)", jobs[0].job_id.split("_")[0], len(jobs))
        return wait_for_jobs(jobs, name) if wait else jobs
    # local: a rolling window of at most local_parallelism subprocesses
    results: list[Any] = [None] * len(args)
    running: dict[int, Any] = {}
    queue = list(enumerate(args))
    with tqdm(total=len(args), desc=name, unit="job") as bar:
        try:
            while queue or running:
                while queue and len(running) < launch.local_parallelism:
                    k, a = queue.pop(0)
                    running[k] = executor.submit(fn, *a)
                for k in [k for k, job in running.items() if job.done()]:
                    results[k] = job_result(running.pop(k))
                    bar.update(1)
                time.sleep(0.5)
        except BaseException:
            for job in running.values():
                job.cancel()
            raise
    return results
