"""One launcher for a laptop and a Slurm cluster: submitit executors over picklable stage functions.

``executor = "local"``  subprocesses on this machine, at most ``launch.local_parallelism`` at once;
``executor = "slurm"``  a Slurm job array (one task per item, ``launch.slurm.*`` parameters);
``executor = "debug"``  in this process, one item after the other (for debugging with pdb).

Only this package knows about Slurm.  submitit keeps its pickles and each task's stdout/
stderr under ``folder`` (``%j`` is the job id), which is where to look when a task fails.
"""
from __future__ import annotations

import functools
import getpass
import logging
import re
import shutil
import signal
import subprocess
import threading
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
#: Slurm's default MaxArraySize (array indices 0 … 1000), used when scontrol does not answer
DEFAULT_MAX_ARRAY_SIZE = 1001


class RequeueableJob(submitit.helpers.Checkpointable):
    """A submitit callable that Slurm may stop and requeue; its checkpoint is the same call again.

    submitit checkpoints from its handler of the time-limit signal, then runs ``scontrol requeue``,
    and Slurm answers a requeue by sending SIGTERM to every process of the job, scontrol included.
    A scontrol killed before it exits makes submitit's ``check_call`` raise inside the interrupted
    task, so a requeued task also looks failed (seen on the CI cluster).  The checkpoint therefore
    ignores SIGTERM first: scontrol inherits the ignored signal, and the task exits right after.
    """

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return super().checkpoint(*args, **kwargs)


class Resumable(RequeueableJob):
    """``fn(*args)`` as a job that Slurm may stop and requeue: submitit requeues a job at its time
    limit only if its callable can checkpoint, and every stage of hpc_botan resumes by itself from
    its run directory, so the checkpoint is the same call again."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*args, **kwargs)
        ignore_stop_signal()
        return result

    def __repr__(self) -> str:
        return f"Resumable({getattr(self.fn, '__qualname__', self.fn)!r})"


def ignore_stop_signal() -> None:
    """Ignore Slurm's time-limit warning (submitit's preemption signal, USR2 by default) from now on.

    Called once a job's work is done: a warning that arrives while submitit writes the result, or
    while Python exits (which puts back the default action, termination, for signals it handled),
    would otherwise kill a finished task with status 140, and Slurm would count it as failed, so
    that the jobs after it never start (seen on the CI cluster).  Nothing is left to checkpoint.
    """
    if threading.current_thread() is threading.main_thread():  # signal.signal works only there
        signal.signal(submitit.JobEnvironment._usr_sig(), signal.SIG_IGN)


@dataclass(frozen=True)
class ArrayChunk:
    """Tasks ``start`` … ``stop - 1`` of a split array, submitted as one array indexed 0 … stop - start - 1,
    of which at most ``parallelism`` run at once."""

    start: int
    stop: int
    parallelism: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def split_array(n_tasks: int, max_array_size: int, parallelism: int) -> list[ArrayChunk]:
    """Split ``n_tasks`` into arrays of at most ``max_array_size`` tasks (Slurm's MaxArraySize bounds
    the indices, 0 … MaxArraySize − 1), sharing ``parallelism`` running tasks between them.

    Shares are proportional to the chunks' sizes (largest remainders first), each at least 1 and
    at most its size, so the total is ``min(parallelism, n_tasks)`` unless there are more chunks
    than ``parallelism`` (then every chunk runs one task at a time).  Pure; tested by construction.
    """
    if n_tasks <= 0:
        return []
    if max_array_size < 1 or parallelism < 1:
        raise ValueError(f"max_array_size {max_array_size} and parallelism {parallelism} must be >= 1")
    bounds = [(a, min(a + max_array_size, n_tasks)) for a in range(0, n_tasks, max_array_size)]
    total = min(parallelism, n_tasks)
    exact = [total * (b - a) / n_tasks for a, b in bounds]
    shares = [max(1, min(b - a, int(x))) for (a, b), x in zip(bounds, exact)]
    spare = total - sum(shares)
    for k in sorted(range(len(bounds)), key=lambda k: exact[k] - int(exact[k]), reverse=True) * 2:
        if spare <= 0:
            break
        if shares[k] < bounds[k][1] - bounds[k][0]:
            shares[k] += 1
            spare -= 1
    return [ArrayChunk(a, b, p) for (a, b), p in zip(bounds, shares)]


def _scontrol_config() -> dict[str, str]:
    """``scontrol show config`` as key → value; empty if Slurm does not answer."""
    try:
        proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_scontrol_config(proc.stdout) if proc.returncode == 0 else {}


def parse_scontrol_config(text: str) -> dict[str, str]:
    """The ``Key = value`` lines of ``scontrol show config`` (pure)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


@functools.lru_cache(maxsize=1)
def cluster_max_array_size() -> int:
    """The cluster's MaxArraySize (``scontrol show config``); Slurm's default if it cannot be read."""
    value = _scontrol_config().get("MaxArraySize", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    log.warning("could not read MaxArraySize from 'scontrol show config'; assuming Slurm's default %d "
                "(set launch.slurm.max_array_size)", DEFAULT_MAX_ARRAY_SIZE)
    return DEFAULT_MAX_ARRAY_SIZE


def max_array_size(launch: LaunchConfig) -> int:
    """The largest array hpc_botan submits: ``launch.slurm.max_array_size``, else the cluster's MaxArraySize."""
    return launch.slurm.max_array_size or cluster_max_array_size()


def parse_max_submit(text: str) -> int | None:
    """The smallest positive number in ``sacctmgr -nP`` output (one limit per line or field); None if none."""
    values = [int(v) for v in re.split(r"[|\s]+", text) if v.isdigit() and int(v) > 0]
    return min(values) if values else None


def submit_limit(launch: LaunchConfig) -> int | None:
    """How many jobs (array tasks count one each) this user may have queued: ``launch.slurm.max_submit_jobs``,
    else the smallest MaxSubmitJobs of the user's associations and QOS (``sacctmgr``); None if unknown."""
    if launch.slurm.max_submit_jobs is not None:
        return launch.slurm.max_submit_jobs
    user = getpass.getuser()
    limits = []
    for cmd in (["sacctmgr", "-nP", "show", "assoc", f"where user={user}", "format=MaxSubmit"],
                ["sacctmgr", "-nP", "show", "qos", "format=MaxSubmitPU"]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0:
            limits.append(parse_max_submit(proc.stdout))
    known = [x for x in limits if x]
    return min(known) if known else None


def queued_job_count() -> int:
    """This user's jobs in the queue now (array tasks one each); 0 if squeue does not answer."""
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(proc.stdout.split()) if proc.returncode == 0 else 0


def check_submit_limit(launch: LaunchConfig, n_jobs: int) -> None:
    """:class:`UserError`, before anything is submitted, if ``n_jobs`` more would pass the user's MaxSubmitJobs."""
    limit = submit_limit(launch)
    if limit is None:
        return
    queued = queued_job_count()
    if queued + n_jobs > limit:
        raise UserError(f"this submission is {n_jobs} Slurm jobs (array tasks count one each) and {queued} of yours "
                        f"are queued already: more than your MaxSubmitJobs = {limit}; nothing was submitted (wait for "
                        "queued jobs or ask for a higher limit; 'hpc-botan plan CONFIG --executor slurm' counts the "
                        "jobs of each stage)")


def slurm_parameters(launch: LaunchConfig, resources: Resources, name: str, nodes: int = 1,
                     tasks_per_node: int = 1, after: Sequence[str] = ()) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for a Slurm job or array (pure; tested by construction).

    CPUs and GPUs are exactly ``resources`` (what this stage uses, see
    :func:`hpc_botan.pipeline.run.stage_resources`); the rest comes from ``launch.slurm``.

    ``after``: job ids (an array's id stands for all its tasks) that must all finish successfully
    before this job starts.  ``kill-on-invalid-dep`` is off: a task that requeues itself at its time
    limit passes through a state that Slurm takes for a failure, and with it on Slurm cancels
    everything after the first requeue (measured on Slurm 24.11, tests/pipeline/test_rehearsal.py).
    If a job really fails, the waiting ``hpc-botan run`` cancels the rest of the chain; after
    ``--no-wait`` the jobs after it stay pending (DependencyNeverSatisfied) until scancelled, and
    the next ``run`` says so.
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
        extra["kill-on-invalid-dep"] = "no"
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
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                         slurm_max_num_timeout=launch.slurm.max_requeues)
        parameters = slurm_parameters(launch, resources, name, nodes, tasks_per_node, after)
        log.debug("slurm: %s: %s", name, parameters)
        executor.update_parameters(**parameters)
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


def array_ids(jobs: Sequence[Any]) -> list[str]:
    """The distinct job ids of ``jobs`` (array tasks ``123_4`` → ``123``), in submission order."""
    return list(dict.fromkeys(str(j.job_id).split("_")[0] for j in jobs))


def submit_array(executor, launch: LaunchConfig, fn: Callable[..., Any], args: Sequence[tuple]) -> list[Any]:
    """Submit ``fn(*a)`` for every ``a`` of ``args`` as Slurm job arrays that any Slurm accepts.

    One array per :func:`split_array` chunk (at most :func:`max_array_size` tasks each, sharing
    ``launch.slurm.array_parallelism``); the jobs come back in the order of ``args``.  If an sbatch
    fails, the arrays submitted before it are cancelled and :class:`UserError` says why.
    """
    chunks = split_array(len(args), max_array_size(launch), launch.slurm.array_parallelism)
    jobs: list[Any] = []
    try:
        for chunk in chunks:
            executor.update_parameters(slurm_array_parallelism=chunk.parallelism)
            jobs += executor.map_array(fn, *zip(*args[chunk.start:chunk.stop]))
    except Exception as exc:  # submitit's FailedSubmissionError carries sbatch's complaint
        cancel_jobs(array_ids(jobs))
        reason = " ".join(str(exc).split())
        raise UserError(f"sbatch refused the job array: {reason[-400:]} (launch.slurm.* in the config)") from None
    ids = array_ids(jobs)
    log.info("submitted Slurm job array%s %s (%d tasks)", "s" if len(ids) > 1 else "", ", ".join(ids), len(jobs))
    return jobs


def cancel_jobs(ids: Sequence[str]) -> None:
    """scancel ``ids`` (finished ones are unaffected); a warning if scancel cannot be run."""
    if not ids:
        return
    try:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        log.warning("could not cancel job(s) %s; cancel them by hand (scancel)", " ".join(ids))


def map_tasks(fn: Callable[..., Any], args: Sequence[tuple], *, kind: str, folder: str | Path,
              launch: LaunchConfig, resources: Resources, name: str, wait: bool = True,
              after: Sequence[str] = ()) -> list[Any]:
    """Run ``fn(*a)`` for every ``a`` in ``args`` with executor ``kind``.

    Returns the results (``wait=True``) or the submitit jobs (``wait=False``).  On Slurm
    job arrays are submitted (:func:`submit_array`, after the jobs ``after``), whose tasks requeue
    themselves at their time limit; locally at most ``launch.local_parallelism`` tasks run at
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
        jobs = submit_array(executor, launch, Resumable(fn), args)
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
