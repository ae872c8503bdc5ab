"""Trajectory files in H5MD 1.1: one file per initial configuration.

Layout (``R`` runs, ``F`` recorded time points, ``N`` particles)::

    /h5md                           version = [1, 1]; author/name; creator/name, creator/version
    /particles/run_000 … run_{R-1}  one particle group per isoconfigurational run
        position/step  (F+1,) int64         MD step, 0 first          (run_000's, hard-linked in every run)
        position/time  (F+1,) float64       τ                         (idem)
        position/value (F+1, N, 3) float64  unwrapped positions, σ; frame 0 is the t = 0 structure
                                            (inside [0, L), identical in every run)
        box/                                dimension = 3, boundary = periodic ×3   (run_000's group, hard link)
            edges/{step, time}              hard links to position/step and position/time
            edges/value (F+1, 3) float64    edge lengths, σ (the same in every frame: NVE at fixed volume)
        species/{step, time}                hard links to position/step and position/time (run_000's, hard link)
        species/value (F+1, N) enum int8    A = 0, B = 1 (HDF5 enum: the names travel with the file);
                                            the same in every frame
        id/{step, time, value}              LAMMPS atom ids, value (F+1, N) int64, as species
    /parameters                     attributes: temperature, configuration index, seeds, the resolved
                                    config (YAML) and software versions; datasets run_seeds (R,)

**Why box, species and id are time-dependent although they never change:** H5MD 1.1 allows them
as plain datasets, but MDAnalysis (``H5MDReader``, 2.11) and znh5md (0.4.8) read only
``box/edges/value`` and ``species/value`` with a frame axis.  The repeated rows cost almost nothing on
disk: species and id are stored with HDF5's shuffle + gzip filters (every HDF5 reads them), step and
time exist once (hard links), and box, species and id exist once per file (hard links from every run).
Files written before this layout (``box/edges`` (3,), ``species`` (N,), ``id`` (N,) as plain datasets)
are read by :func:`read_configuration` and every other function here all the same.

**Units:** lengths in σ (σ_AA), times in τ = σ_AA √(m/ε_AA).  The datasets carry no H5MD ``unit``
attribute: MDAnalysis refuses a unit string it does not know (RuntimeError, even with
``convert_units=False``) and knows no reduced units.  Each dimensional dataset says its unit in the
attribute ``reduced_unit`` ("sigma" or "tau") instead; read with MDAnalysis with ``convert_units=False``,
so that the numbers are the file's own (README, "Files").

**Where the run axis lives:** H5MD has no notion of an ensemble, so each run is its own particle group
``particles/run_XXX``.  znh5md opens any of them (``particles_group="run_003"``); MDAnalysis opens only
the first one (``run_000``): :func:`extract_run` writes run k alone into a file of its own for such
readers.  :func:`read_configuration` stacks the runs into an array (R, F+1, N, 3).

Files are written under a temporary name and renamed when complete; the root attribute
``hpc_botan_complete = 1`` is set last, inside the temporary file.  Every dataset carries the
attribute ``crc32`` (of its bytes, at write time); :func:`read_configuration` checks it, so a file
changed or damaged since it was written is refused, never read as data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import crc32
from hpc_botan.io.hdf5_files import new_hdf5_file
from hpc_botan.version import __version__

#: The species datatype on disk: int8 with the names of the two species (H5MD's recommended enum).
SPECIES_DTYPE = h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1")

#: Bytes per compressed chunk of the repeated per-particle rows (species, id): a few rows per chunk,
#: so that the gzip window sees the repetition and a reader of one frame decompresses little.
_ROW_CHUNK_BYTES = 1 << 18


@dataclass
class ConfigurationTrajectories:
    """The content of one trajectory file, in memory."""

    species: np.ndarray  # (N,) int8
    ids: np.ndarray  # (N,) int64
    box: np.ndarray  # (3,) float64 edge lengths, σ
    steps: np.ndarray  # (F+1,) int64, steps[0] = 0
    times: np.ndarray  # (F+1,) float64, τ
    positions: np.ndarray  # (R, F+1, N, 3) float64 unwrapped; [:, 0] = t = 0 structure
    attrs: dict[str, Any]
    run_seeds: np.ndarray  # (R,) int64


def run_group(r: int) -> str:
    return f"run_{r:03d}"


def write_configuration(path: str | Path, traj: ConfigurationTrajectories) -> None:
    """Write ``traj`` to ``path`` atomically (temporary name, then rename)."""
    n_runs, n_frames, n_atoms, _ = traj.positions.shape
    with new_hdf5_file(path) as f:
        _write_h5md_group(f)
        params = f.create_group("parameters")
        for key, value in traj.attrs.items():
            params.attrs[key] = value
        params.create_dataset("run_seeds", data=np.asarray(traj.run_seeds, dtype=np.int64))
        particles = f.create_group("particles")
        first = None
        for r in range(n_runs):
            g = particles.create_group(run_group(r))
            pos = g.create_group("position")
            if first is None:
                _checked_dataset(pos, "step", traj.steps.astype(np.int64))
                _checked_dataset(pos, "time", traj.times.astype(np.float64)).attrs["reduced_unit"] = "tau"
            else:  # every run is sampled at the same steps: one step and one time dataset in the file
                pos["step"], pos["time"] = first["position/step"], first["position/time"]
            value = _checked_dataset(pos, "value", np.asarray(traj.positions[r], dtype=np.float64),
                                     chunks=(1, n_atoms, 3))
            value.attrs["reduced_unit"] = "sigma"
            if first is None:
                box = g.create_group("box")
                box.attrs["dimension"] = np.int32(3)
                box.attrs["boundary"] = np.array([b"periodic"] * 3)
                edges = np.broadcast_to(np.asarray(traj.box, dtype=np.float64), (n_frames, 3))
                _time_dependent(box, "edges", pos, edges).attrs["reduced_unit"] = "sigma"
                species = np.broadcast_to(np.asarray(traj.species, dtype=np.int8), (n_frames, n_atoms))
                _time_dependent(g, "species", pos, species, dtype=SPECIES_DTYPE, **_row_storage(species))
                ids = np.broadcast_to(np.asarray(traj.ids, dtype=np.int64), (n_frames, n_atoms))
                _time_dependent(g, "id", pos, ids, **_row_storage(ids))
                first = g
            else:  # hard links: one copy on disk
                for name in ("box", "species", "id"):
                    g[name] = first[name]
        f.attrs["hpc_botan_complete"] = 1
    # built in memory, written and renamed at the end of the block (io.hdf5_files: a full disk is one error)


def _write_h5md_group(f: h5py.File) -> None:
    h5md = f.create_group("h5md")
    h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
    h5md.create_group("author").attrs["name"] = "hpc_botan user"
    creator = h5md.create_group("creator")
    creator.attrs["name"] = "hpc_botan"
    creator.attrs["version"] = __version__


def _checked_dataset(group: h5py.Group, name: str, data: np.ndarray, **kwargs) -> h5py.Dataset:
    """Create ``group[name]`` from ``data`` with its checksum attribute."""
    data = np.ascontiguousarray(data)
    ds = group.create_dataset(name, data=data, **kwargs)
    ds.attrs["crc32"] = crc32(data)
    return ds


def _time_dependent(parent: h5py.Group, name: str, position: h5py.Group, value: np.ndarray,
                    **kwargs) -> h5py.Dataset:
    """The H5MD time-dependent element ``parent/name`` sampled with ``position``: step and time are
    hard links to position's (H5MD allows elements sampled together to share them); its value dataset."""
    element = parent.create_group(name)
    element["step"], element["time"] = position["step"], position["time"]
    return _checked_dataset(element, "value", value, **kwargs)


def _row_storage(rows: np.ndarray) -> dict[str, Any]:
    """Chunks and filters for (F+1, N) rows that repeat: shuffle + gzip makes the copies almost free."""
    n_frames, n_atoms = rows.shape
    per_chunk = max(1, min(n_frames, _ROW_CHUNK_BYTES // max(1, n_atoms * rows.itemsize)))
    return {"chunks": (per_chunk, n_atoms), "compression": "gzip", "shuffle": True}


def _read_checked(ds: h5py.Dataset, path: Path) -> np.ndarray:
    """The dataset's array, after comparing it with its recorded checksum (if it has one)."""
    data = ds[()]
    if "crc32" in ds.attrs and int(ds.attrs["crc32"]) != crc32(data):
        raise UserError(f"{path}: {ds.name} does not match the checksum recorded when it was written (the file "
                        "was changed or damaged since); delete it and re-run 'hpc-botan simulate' to redo it")
    return data


def _constant_element(group: h5py.Group, name: str, path: Path) -> np.ndarray:
    """A quantity that does not change in time: the plain dataset ``group/name`` (the layout before
    box, species and id became time-dependent) or frame 0 of the time-dependent ``group/name/value``,
    checked to be the same in every frame."""
    item = group[name]
    if isinstance(item, h5py.Dataset):
        return _read_checked(item, path)
    value = _read_checked(item["value"], path)
    if value.shape[0] == 0 or not (value == value[:1]).all():
        raise UserError(f"{path}: {item.name}/value is not the same in every frame (not an hpc_botan trajectory "
                        "file, or a damaged one); delete it and re-run 'hpc-botan simulate' to redo it")
    return value[0]


def read_configuration(path: str | Path) -> ConfigurationTrajectories:
    """Read a file written by :func:`write_configuration` (this layout or the one before, with plain
    box, species and id datasets); :class:`UserError` if it is not one.

    Datasets with a recorded checksum are checked against it (files of older versions have none).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("hpc_botan_complete") != 1:
                raise UserError(f"{path}: incomplete trajectory file")
            particles = f["particles"]
            names = sorted(particles)
            first = particles[names[0]]
            positions = np.stack([_read_checked(particles[n]["position/value"], path) for n in names])
            return ConfigurationTrajectories(
                species=_constant_element(first, "species", path).astype(np.int8),  # astype: no enum dtype
                ids=_constant_element(first, "id", path).astype(np.int64),
                box=_constant_element(first["box"], "edges", path).astype(np.float64),
                steps=_read_checked(first["position/step"], path),
                times=_read_checked(first["position/time"], path),
                positions=positions,
                attrs=dict(f["parameters"].attrs),
                run_seeds=f["parameters/run_seeds"][()],
            )
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise UserError(f"{path}: not a readable hpc_botan H5MD trajectory file ({exc})") from None


def read_parameters(path: str | Path) -> dict[str, Any]:
    """The ``/parameters`` attributes of a trajectory file (temperature, seeds, accelerator, …), without the data."""
    try:
        with h5py.File(path, "r") as f:
            return dict(f["parameters"].attrs)
    except (OSError, KeyError) as exc:
        raise UserError(f"{path}: not a readable hpc_botan H5MD trajectory file ({exc})") from None


def is_complete(path: str | Path, *, n_runs: int | None = None, n_atoms: int | None = None) -> bool:
    """True if ``path`` is a finished trajectory file (optionally with the expected sizes)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("hpc_botan_complete") != 1:
                return False
            groups = list(f["particles"])
            if n_runs is not None and len(groups) != n_runs:
                return False
            # position/value (F+1, N, 3) is the same in both layouts
            if n_atoms is not None and f["particles"][groups[0]]["position/value"].shape[1:] != (n_atoms, 3):
                return False
            return True
    except (OSError, KeyError, IndexError):
        return False


def extract_run(path: str | Path, run: int, out: str | Path) -> Path:
    """Write run ``run`` of the trajectory file ``path`` alone into the H5MD file ``out`` (atomically),
    for readers that open only the first particle group (MDAnalysis).

    ``out`` holds ``/h5md``, ``/particles/run_XXX`` (the group as it is in ``path``: positions (F+1, N, 3)
    σ, box, species, id) and ``/parameters`` with that run's seed only (``run_seeds`` (1,), attribute
    ``extracted_run``); it is itself a complete one-run trajectory file.  Returns ``out``.
    """
    path, out = Path(path), Path(out)
    name = run_group(run)
    if out.exists() or out.is_symlink():   # never over an input, a trajectory of the run or a link
        raise UserError(f"{out}: exists; not overwritten (extract the run to a new file)")
    try:
        src = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable hpc_botan H5MD trajectory file ({exc})") from None
    with src:
        if src.attrs.get("hpc_botan_complete") != 1 or "particles" not in src:
            raise UserError(f"{path}: incomplete trajectory file")
        runs = sorted(src["particles"])
        if name not in runs:
            raise UserError(f"{path}: no run {run}; the file has runs 0 … {len(runs) - 1}")
        seeds = src["parameters/run_seeds"][()] if "parameters/run_seeds" in src else np.zeros(len(runs), np.int64)
        with new_hdf5_file(out) as f:
            src.copy(src["h5md"], f, name="h5md")
            f.create_group("particles")
            src.copy(src["particles"][name], f["particles"], name=name)  # the run's box, species, id come along
            params = f.create_group("parameters")
            for key, value in src["parameters"].attrs.items():
                params.attrs[key] = value
            params.attrs["extracted_run"] = run
            params.create_dataset("run_seeds", data=np.asarray(seeds[run:run + 1], dtype=np.int64))
            f.attrs["hpc_botan_complete"] = 1
    return out


def read_provenance(path: str | Path, keys: Sequence[str]) -> dict[str, str]:
    """The entries ``keys`` of a trajectory file's ``/parameters``, attributes or datasets, that it has, as
    text (versions, seeds: the provenance rows of a report).

    Raises OSError when the file cannot be read.
    """
    out = {}
    with h5py.File(path, "r") as f:
        params = f.get("parameters")
        if params is None:
            return out
        for key in keys:
            if key in params.attrs or key in params:
                value = params.attrs[key] if key in params.attrs else params[key][()]
                out[key] = value.decode() if isinstance(value, bytes) else str(value)
    return out
