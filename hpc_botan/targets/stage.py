"""The targets stage under MPI: configurations balanced over ranks, one shard per rank, one index.

    mpirun -n K hpc-botan targets RUN_DIR      (or plain ``hpc-botan targets RUN_DIR``: one rank)

Rank r computes the r-th contiguous block of configurations and writes only
``targets/shard-{r:05d}.h5`` (temporary name, then rename).  When every rank has finished,
rank 0 writes ``targets/index.h5``.  A shard that is complete, valid and holds exactly the
block a rank would compute is reused, so re-running after an interruption redoes only
missing shards.  The PyPI h5py has no parallel HDF5, hence files per rank, not one file.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from hpc_botan.config import Config
from hpc_botan.errors import UserError, storage_error
from hpc_botan.io import h5md
from hpc_botan.io.durable import exclusive_lock, remove_stale_temporaries
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.io.shards import (
    ConfigurationMeta,
    StoredConfiguration,
    shard_configurations,
    shard_files,
    shard_name,
    stored_configurations,
    verify_shard,
    write_index,
    write_shard,
)
from hpc_botan.physics.configuration_targets import ConfigurationTargets, compute_targets
from hpc_botan.plan.configurations import configuration_tasks, simulated, trajectory_path
from hpc_botan.plan.mpi_world import SingleProcess, world
from hpc_botan.plan.targets import targets_complete
from hpc_botan.plan.world import resolve_launcher
from hpc_botan.stage import Resources, Stage
from hpc_botan.targets.importers import importer

log = logging.getLogger("hpc_botan.targets")


def configuration_metas(cfg: Config, run_dir: str | Path) -> dict[int, ConfigurationMeta]:
    """Every configuration of a simulated run, by global id (its job-array index)."""
    s = cfg.simulation
    return {
        k: ConfigurationMeta(id=k, temperature=t.temperature, t_index=t.t_index, index=t.index,
                             split="train" if t.index < s.n_train else "test",
                             source=str(trajectory_path(run_dir, t)),
                             # the shard records it relative to the run directory: a moved run stays whole
                             recorded_source=trajectory_path(run_dir, t).relative_to(run_dir).as_posix())
        for k, t in enumerate(configuration_tasks(cfg))
    }


def rank_block(ids: list[int], rank: int, size: int) -> list[int]:
    """The contiguous block of ``ids`` that ``rank`` of ``size`` handles (sizes differ by ≤ 1)."""
    return [int(x) for x in np.array_split(np.asarray(ids, dtype=np.int64), size)[rank]]


def implausible_displacement(positions: np.ndarray, times: np.ndarray, temperature: float, box: np.ndarray
                             ) -> tuple[int, float, float] | None:
    """The first frame in which some particle moved farther than any liquid can, or None.

    positions (R, F+1, N, 3) unwrapped, σ, frame 0 = t = 0; times (F+1,) τ; box (3,) σ.  The bound at
    time t is max(L_min, 10·√(3T)·t): no displacement up to the shortest box edge is refused (the
    usual scale of "garbage"), and beyond it a particle would have to fly at ten times the thermal
    speed √(3T) (unit masses) for the whole interval.  Returns (frame, distance σ, bound σ).
    """
    disp = np.linalg.norm(positions[:, 1:] - positions[:, :1], axis=-1).max(axis=(0, 2))  # (F,)
    bound = np.maximum(float(np.min(box)), 10.0 * np.sqrt(3.0 * temperature) * np.asarray(times[1:], dtype=float))
    bad = np.flatnonzero(disp > bound)
    if bad.size == 0:
        return None
    k = int(bad[0])
    return k + 1, float(disp[k]), float(bound[k])


def load_checked_trajectory(meta: ConfigurationMeta, cfg: Config) -> h5md.ConfigurationTrajectories:
    """Read a trajectory file and check it against the run's configuration (one-line errors)."""
    where = f"{meta.source} (configuration {meta.id})"
    s = cfg.simulation
    if not h5md.is_complete(meta.source):
        raise UserError(f"{where}: missing or incomplete trajectory file; run 'hpc-botan simulate' first")
    traj = h5md.read_configuration(meta.source)
    n_runs, n_frames, n, _ = traj.positions.shape
    if n_runs != s.n_runs:
        raise UserError(f"{where}: {n_runs} runs, the configuration asks for {s.n_runs}")
    if n != s.n_particles or traj.species.shape != (n,):
        raise UserError(f"{where}: {n} particles, the configuration asks for {s.n_particles}")
    expected_times = np.asarray(s.time_points[meta.temperature])
    if n_frames - 1 != expected_times.size or not np.allclose(traj.times[1:], expected_times, rtol=1e-6):
        raise UserError(f"{where}: time points {traj.times[1:].tolist()} differ from the configuration's")
    box = np.full(3, (s.n_particles / s.density) ** (1 / 3))
    if not np.allclose(traj.box, box, rtol=1e-9):
        raise UserError(f"{where}: box {traj.box.tolist()} does not match density {s.density}")
    if not np.isfinite(traj.positions).all():
        raise UserError(f"{where}: NaN or inf positions; delete the file and re-run 'hpc-botan simulate' to redo it "
                        "(a LAMMPS run that blew up: check simulation.timestep)")
    far = implausible_displacement(traj.positions, traj.times, meta.temperature, traj.box)
    if far is not None:
        frame, distance, bound = far
        raise UserError(f"{where}: a particle moves {distance:.3g} σ by t = {traj.times[frame]:g} τ, more than "
                        f"physically possible ({bound:.3g} σ: the box edge, or 10 thermal speeds × t); the "
                        "positions are corrupted: delete the file and re-run 'hpc-botan simulate'")
    if (traj.positions[:, 0] != traj.positions[0, 0]).any():
        raise UserError(f"{where}: runs do not share the same t = 0 structure")
    return traj


def work_items(cfg: Config, run_dir: str | Path) -> dict[int, tuple[ConfigurationMeta, Callable]]:
    """Every configuration of a run: global id → (meta, loader returning compute_targets' inputs)."""
    if cfg.source.format != "simulate":
        return importer(cfg.source.format).configurations(cfg)

    def loader(meta: ConfigurationMeta) -> Callable:
        def load():
            traj = load_checked_trajectory(meta, cfg)
            return traj.positions[0, 0], traj.species, traj.box, traj.positions[:, 1:], traj.times[1:]
        return load

    return {k: (meta, loader(meta)) for k, meta in configuration_metas(cfg, run_dir).items()}


def check_target_inputs(positions0, species, box, runs, times, where: str) -> None:
    """Refuse inputs of :func:`compute_targets` that are not what it needs, in one line naming ``where``.

    positions0 (N, 3) finite σ, species (N,) integers 0 or 1, box (3,) finite > 0 σ, runs
    (R, F, N, 3) finite σ, times (F,) finite > 0 τ: what an importer hands over from a file
    someone else wrote (a NaN or a 0-d array would otherwise end in a traceback).
    """
    arrays = {"positions": positions0, "species": species, "box": box, "runs": runs, "times": times}
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or not (np.issubdtype(value.dtype, np.number)):
            raise UserError(f"{where}: {name} is not a numeric array")
    n = species.shape[0] if species.ndim == 1 else -1
    if species.ndim != 1 or positions0.shape != (n, 3) or box.shape != (3,) or runs.ndim != 4 \
            or runs.shape[2:] != (n, 3) or times.shape != (runs.shape[1],):
        raise UserError(f"{where}: shapes positions {positions0.shape}, species {species.shape}, box {box.shape}, "
                        f"runs {runs.shape}, times {times.shape}; expected (N, 3), (N,), (3,), (R, F, N, 3), (F,)")
    if not np.isin(species, (0, 1)).all():
        raise UserError(f"{where}: species other than 0 (A) and 1 (B)")
    for name in ("positions", "box", "runs", "times"):
        if not np.isfinite(arrays[name]).all():
            raise UserError(f"{where}: NaN or inf {name}")
    if (box <= 0).any() or (times <= 0).any():
        raise UserError(f"{where}: box edges and times must be positive (box {box.tolist()})")


def _compute(items: list[tuple[ConfigurationMeta, Callable | StoredConfiguration]]
             ) -> Iterator[tuple[ConfigurationMeta, ConfigurationTargets | StoredConfiguration]]:
    for meta, load in items:
        if isinstance(load, StoredConfiguration):  # finished in an earlier shard: copied as it is
            yield meta, load
            continue
        loaded = load()  # compute_targets' inputs, or finished targets (data sets without trajectories)
        if not isinstance(loaded, ConfigurationTargets):
            check_target_inputs(*loaded, where=f"{meta.source} (configuration {meta.id})")
        targets = loaded if isinstance(loaded, ConfigurationTargets) else compute_targets(*loaded)
        for name in ("propensity", "pair_change", "cage_relative", "local_displacement"):
            values = getattr(targets, name, None)
            if values is not None and not np.isfinite(values).all():
                raise UserError(f"{meta.source} (configuration {meta.id}): non-finite {name} targets; the input "
                                "is broken (check it, or re-run 'hpc-botan simulate' / the import)")
        log.info("configuration %d: %d nodes, %d edges", meta.id, targets.species.size, targets.edge_index.shape[1])
        yield meta, targets


#: Hard links to the shards of the previous layout while a run with another number of ranks
#: rewrites them: every rank can still copy a finished configuration from them (removed at the end).
PREVIOUS_SHARDS = ".previous-shards"


def _on_every_rank(comm, work: Callable[[], object], rank_does_work: bool = True):
    """Run ``work`` (on this rank if ``rank_does_work``), then end every rank alike.

    Returns ``work``'s result.  If it raised on any rank, every rank raises :class:`UserError` with
    the first failing rank's message, so no rank is left waiting in a later collective.  A bug (any
    other exception) is logged with its traceback on its rank and named by type in the message.
    """
    result, error = None, None
    if rank_does_work:
        try:
            result = work()
        except UserError as exc:
            error = str(exc)
        except Exception as exc:
            storage = storage_error(exc)  # a full disk: the user's to fix, no traceback
            if storage is not None:
                error = str(storage)
            else:
                log.exception("rank %d failed", comm.Get_rank())
                error = f"rank {comm.Get_rank()}: {type(exc).__name__}: {exc}"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise UserError(errors[0])
    return result


def _link_previous_shards(targets_dir: Path) -> None:
    """Keep every complete shard reachable under PREVIOUS_SHARDS (hard link, or copy where links fail)."""
    keep = targets_dir / PREVIOUS_SHARDS
    if keep.is_symlink() or (keep.exists() and not keep.is_dir()):
        raise UserError(f"{keep}: not a folder that hpc_botan made (a symbolic link or a file); the targets stage "
                        "keeps earlier shards there itself: remove it, then re-run")
    keep.mkdir(exist_ok=True)
    kept = {os.stat(p).st_ino for p in keep.glob("*.h5")}
    for shard in shard_files(targets_dir).values():
        if os.stat(shard).st_ino in kept or shard_configurations(shard) is None:
            continue
        target = keep / f"{shard.stem}.{os.stat(shard).st_ino}.h5"
        try:
            os.link(shard, target)
        except OSError:  # a file system without hard links
            shutil.copy2(shard, target)


def run_targets(run_dir: str | Path, comm=None, *, show_progress: bool = False) -> Path:
    """Compute the targets of every configuration of ``run_dir`` on the ranks of ``comm``.

    Returns the path of ``index.h5``.  Every rank returns or raises the same
    :class:`UserError` (naming the file and configuration of the first failure, or the failing
    rank and its exception).  A configuration that any complete shard already holds (whichever
    rank, and with how many ranks, wrote it) is copied, not recomputed.  ``show_progress``: a
    progress bar of rank 0's configurations (the ranks' blocks are of equal size).
    """
    if comm is None:
        comm = world()
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    items = work_items(cfg, run_dir)
    metas = {k: meta for k, (meta, _) in items.items()}
    rank, size = comm.Get_rank(), comm.Get_size()
    if size > len(metas):
        raise UserError(f"{size} MPI ranks for {len(metas)} configurations: use at most {len(metas)} ranks")
    targets_dir = RunLayout(run_dir).targets
    targets_dir.mkdir(parents=True, exist_ok=True)
    mine = rank_block(sorted(metas), rank, size)
    shard = targets_dir / shard_name(rank)
    _on_every_rank(comm, lambda: _link_previous_shards(targets_dir), rank_does_work=rank == 0)

    def my_shard() -> tuple[int, int]:
        """(configurations copied from earlier shards, computed) of this rank's block."""
        if shard_configurations(shard) == mine and not verify_shard(shard):
            log.info("rank %d: %s is complete, skipped", rank, shard.name)
            return 0, 0
        stored = stored_configurations(sorted((targets_dir / PREVIOUS_SHARDS).glob("*.h5")),
                                       {k: metas[k] for k in mine})
        work = [(metas[k], stored[k]) if k in stored else items[k] for k in mine]
        with exclusive_lock(targets_dir / f".{shard.name}.lock", f"{shard}"):
            for stale in remove_stale_temporaries(shard):
                log.info("rank %d: removed %s, left by a writer that was killed", rank, stale.name)
            progress = tqdm(_compute(work), total=len(work), unit="conf", disable=not (show_progress and rank == 0),
                            desc="targets" if size == 1 else f"targets (rank 0 of {size})")
            write_shard(shard, rank, size, progress)
        log.info("rank %d: wrote %s (%d configurations: %d computed, %d copied from earlier shards)", rank,
                 shard.name, len(mine), len(mine) - len(stored), len(stored))
        return len(stored), len(mine) - len(stored)

    counts = comm.allgather(_on_every_rank(comm, my_shard))

    def index() -> Path:
        path = write_index(targets_dir, [shard_name(k) for k in range(size)], metas)
        # shards of an earlier run with more ranks are no longer part of the data set
        stale = [p for rank, p in shard_files(targets_dir).items() if rank >= size]
        for p in stale:
            p.unlink()
        shutil.rmtree(targets_dir / PREVIOUS_SHARDS, ignore_errors=True)
        copied, computed = (sum(c[i] for c in counts) for i in (0, 1))
        if stale or copied:
            log.warning("targets: shards rewritten for %d rank(s): %d configuration(s) copied from the shards of an "
                        "earlier run, %d computed, %d old shard file(s) removed", size, copied, computed, len(stale))
        return path

    _on_every_rank(comm, index, rank_does_work=rank == 0)
    return RunLayout(run_dir).index


def run_targets_mpi(run_dir: str | Path, cfg: Config, show_progress: bool = False) -> Path:
    """The targets stage under ``mpirun -n K`` on this node (K = ``launch.targets_ranks``, at most one
    rank per configuration) as a child process of this one; in this process when K = 1.

    Returns the path of ``targets/index.h5``.
    """
    n_conf = len(configuration_metas(cfg, run_dir))
    ranks = max(1, min(cfg.launch.targets_ranks, n_conf))
    if ranks == 1:
        return run_targets(run_dir, SingleProcess(), show_progress=show_progress)  # no MPI start-up for one rank
    command = [*resolve_launcher(cfg.lammps.mpirun), "-n", str(ranks), sys.executable, "-m", "hpc_botan", "-q",
               "targets", str(run_dir), "--no-progress"]   # its stderr is captured
    log.info("targets: %s", " ".join(command))
    # The ranks run on this node.  Inside a Slurm job step, MPICH's mpirun would otherwise start its
    # proxy with a nested srun, which waits for ever for the CPUs that the step itself holds.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_LAUNCHER": "fork", "HYDRA_BOOTSTRAP": "fork"}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise UserError(f"lammps.mpirun: {command[0]} not found (the targets stage runs under it with "
                        f"launch.targets_ranks = {ranks}; set launch.targets_ranks=1 to run without MPI)") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        reason = next((ln.split("error: ", 1)[1] for ln in reversed(lines) if "hpc-botan: error: " in ln),
                      lines[-1] if lines else f"exit code {proc.returncode}")
        raise UserError(f"targets ({' '.join(command[:3])} …): {reason}")
    return RunLayout(run_dir).index


class TargetsStage(Stage):
    """S_i, E_ij and the other targets of every configuration, under MPI; shards and their index."""

    name = "targets"
    launch = "job"
    summary = "per-particle and per-pair targets under MPI (targets/shard-*.h5 and index.h5)"

    def done(self, run_dir: Path, cfg: Config) -> bool:
        return targets_complete(run_dir, cfg)

    def resources(self, cfg: Config) -> Resources:
        return Resources(cpus=cfg.launch.targets_ranks)  # MPI ranks on one node, no GPU

    def check(self, run_dir: Path, cfg: Config) -> None:
        if not simulated(cfg):  # the targets of an imported data set come from 'hpc-botan import' only
            raise UserError(f"{Path(run_dir) / 'targets' / 'index.h5'}: missing or incomplete; this run directory "
                            f"holds an imported data set ({cfg.source.format}); re-run its 'hpc-botan import' first")

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Path:
        self.check(run_dir, cfg)
        return run_targets_mpi(run_dir, cfg, show_progress)
