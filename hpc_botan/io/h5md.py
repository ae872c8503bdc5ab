"""Trajectory files in H5MD 1.1: one file per initial configuration.

Layout (``R`` runs, ``F`` recorded time points, ``N`` particles)::

    /h5md                         version = [1, 1]; author/name; creator/name, creator/version
    /particles/run_000 … run_{R-1}  one particle group per isoconfigurational run
        box/                      dimension = 3, boundary = periodic ×3; edges (3,) σ
        species  (N,) int8        0 = A, 1 = B      (hard link, shared by all runs)
        id       (N,) int64       LAMMPS atom ids   (hard link)
        position/step  (F+1,) int64     MD step, 0 first
        position/time  (F+1,) float64   τ
        position/value (F+1, N, 3) float64  unwrapped positions, σ; frame 0 is the
                                  t = 0 structure (inside [0, L), identical in every run)
    /parameters                   attributes: temperature, configuration index, seeds,
                                  the resolved config (YAML) and software versions;
                                  datasets run_seeds (R,)

**Where the run axis lives:** H5MD has no notion of an ensemble, so each run is its own
particle group ``particles/run_XXX`` (any H5MD reader can open one run as an ordinary
trajectory); :func:`read_configuration` stacks them into an array (R, F+1, N, 3).

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
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        h5md.create_group("author").attrs["name"] = "hpc_botan user"
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "hpc_botan"
        creator.attrs["version"] = __version__
        params = f.create_group("parameters")
        for key, value in traj.attrs.items():
            params.attrs[key] = value
        params.create_dataset("run_seeds", data=np.asarray(traj.run_seeds, dtype=np.int64))
        particles = f.create_group("particles")
        shared_species = shared_ids = None
        for r in range(n_runs):
            g = particles.create_group(run_group(r))
            box = g.create_group("box")
            box.attrs["dimension"] = np.int32(3)
            box.attrs["boundary"] = np.array([b"periodic"] * 3)
            _checked_dataset(box, "edges", np.asarray(traj.box, dtype=np.float64))
            if shared_species is None:
                shared_species = _checked_dataset(g, "species", traj.species.astype(np.int8))
                shared_ids = _checked_dataset(g, "id", traj.ids.astype(np.int64))
            else:  # hard links: one copy on disk
                g["species"] = shared_species
                g["id"] = shared_ids
            pos = g.create_group("position")
            _checked_dataset(pos, "step", traj.steps.astype(np.int64))
            _checked_dataset(pos, "time", traj.times.astype(np.float64))
            _checked_dataset(pos, "value", np.asarray(traj.positions[r], dtype=np.float64), chunks=(1, n_atoms, 3))
        f.attrs["hpc_botan_complete"] = 1
    # built in memory, written and renamed at the end of the block (io.hdf5_files: a full disk is one error)


def _checked_dataset(group: h5py.Group, name: str, data: np.ndarray, **kwargs) -> h5py.Dataset:
    """Create ``group[name]`` from ``data`` with its checksum attribute."""
    ds = group.create_dataset(name, data=data, **kwargs)
    ds.attrs["crc32"] = crc32(data)
    return ds


def _read_checked(ds: h5py.Dataset, path: Path) -> np.ndarray:
    """The dataset's array, after comparing it with its recorded checksum (if it has one)."""
    data = ds[()]
    if "crc32" in ds.attrs and int(ds.attrs["crc32"]) != crc32(data):
        raise UserError(f"{path}: {ds.name} does not match the checksum recorded when it was written (the file "
                        "was changed or damaged since); delete it and re-run 'hpc-botan simulate' to redo it")
    return data


def read_configuration(path: str | Path) -> ConfigurationTrajectories:
    """Read a file written by :func:`write_configuration`; :class:`UserError` if it is not one.

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
                species=_read_checked(first["species"], path),
                ids=_read_checked(first["id"], path),
                box=_read_checked(first["box/edges"], path),
                steps=_read_checked(first["position/step"], path),
                times=_read_checked(first["position/time"], path),
                positions=positions,
                attrs=dict(f["parameters"].attrs),
                run_seeds=f["parameters/run_seeds"][()],
            )
    except (OSError, KeyError, IndexError) as exc:
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
            if n_atoms is not None and f["particles"][groups[0]]["species"].shape != (n_atoms,):
                return False
            return True
    except (OSError, KeyError, IndexError):
        return False


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
