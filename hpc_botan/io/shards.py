"""Target shards and their index: the file format of the targets stage (read and written only here).

``targets/shard-XXXXX.h5`` (one per MPI rank of the run that wrote it)::

    attrs: format = "hpc_botan-targets-shard", version, shard, n_shards,
           configurations (global ids it holds), complete = 1 (set last)
    /conf_000012/                      one group per configuration (global id, 6 digits)
        attrs: temperature, t_index, index (within its temperature), split ("train"/"test"), source,
               has_trajectories
        species (N,) int8 · positions0 (N, 3) f64 · box (3,) f64 · times (F,) f64
        edge_index (2, E) int64 · edge_attr (E, 3) f32 · node_mask (N,) bool · edge_mask (E,) bool
        propensity (F, N) f32 · pair_change (F, E) f32 · cage_relative (F, N) f32
        d2min (F, N) f32 (−1 where undefined: fewer than 3 neighbours)
        local_displacement (F, N, 3) f32 · fs (F,) f64
        propensity_reliability (F,) f64 · pair_change_reliability (F,) f64
        every dataset carries attr crc32 of its bytes, recorded at write time, and attrs units and
        description (:data:`DATASET_INFO`; files written before them have neither)

``source`` is where the configuration came from, relative to the run directory for simulated runs
(``simulate/T0.640/conf-00000.h5``) or within the imported data set's directory (``source.path`` of
the run's configuration) for imports; files written before this hold an absolute path
(:func:`source_path` reads both).

``targets/index.h5`` (written last, by rank 0)::

    attrs: format = "hpc_botan-targets-index", version, n_configurations, shards (file names)
    /configurations/conf_000012  external link → shard-XXXXX.h5:/conf_000012  (every array)
    /catalog  table: id, temperature, t_index, index, split (0 train, 1 test), n_nodes, n_edges, shard
    /T0.640/<name> (C_T, F, N[, 3]) virtual datasets over the shards for the per-node arrays
              (propensity, cage_relative, d2min, local_displacement, species, node_mask) and
              ids (C_T,) — all configurations of one temperature seen as one array
    every dataset carries attrs units and description, as in the shards

docs/data-format.md describes every file for readers without this package.
"""
from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable, Iterator, Sequence

import h5py
import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path, crc32
from hpc_botan.io.hdf5_files import ensure_free_space, new_hdf5_file
from hpc_botan.io.rundir import INDEX_FILE
from hpc_botan.learned_targets import DEFAULT_EDGE_TARGET, DEFAULT_NODE_TARGET, LEARNED_TARGETS, LearnedTarget
from hpc_botan.physics.configuration_targets import ConfigurationTargets

SHARD_FORMAT = "hpc_botan-targets-shard"
INDEX_FORMAT = "hpc_botan-targets-index"
VERSION = 1

#: name → (dtype, shape pattern); N nodes, E edges, F time points
ARRAYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "species": ("int8", ("N",)),
    "positions0": ("float64", ("N", "3")),
    "box": ("float64", ("3",)),
    "times": ("float64", ("F",)),
    "edge_index": ("int64", ("2", "E")),
    "edge_attr": ("float32", ("E", "3")),
    "node_mask": ("bool", ("N",)),
    "edge_mask": ("bool", ("E",)),
    "propensity": ("float32", ("F", "N")),
    "pair_change": ("float32", ("F", "E")),
    "cage_relative": ("float32", ("F", "N")),
    "d2min": ("float32", ("F", "N")),
    "local_displacement": ("float32", ("F", "N", "3")),
    "fs": ("float64", ("F",)),
    "propensity_reliability": ("float64", ("F",)),
    "pair_change_reliability": ("float64", ("F",)),
}
#: name → (units, description) stored as the attrs ``units`` and ``description`` of each dataset.
#: Reduced Lennard-Jones units: lengths in σ (σ_AA), times in τ, "1" for dimensionless values and indices.
DATASET_INFO: dict[str, tuple[str, str]] = {
    "species": ("1", "particle species: 0 = A, 1 = B"),
    "positions0": ("sigma", "particle positions of the t = 0 structure, wrapped into [0, box)"),
    "box": ("sigma", "edge lengths of the orthorhombic periodic box"),
    "times": ("tau", "the time points t > 0 at which the targets are given (axis F)"),
    "edge_index": ("1", "directed graph edges (row 0 source i, row 1 destination j): every pair closer than "
                        "2.0 sigma at t = 0, both directions, sorted by (i, j)"),
    "edge_attr": ("sigma", "edge vector r_j - r_i at t = 0 (minimum image)"),
    "node_mask": ("1", "particles on which S_i is scored (type A)"),
    "edge_mask": ("1", "edges on which E_ij is scored (A-A pairs with |r_ij(0)| < 1.35 sigma)"),
    "propensity": ("sigma", "propensity S_i(t) = <|r_i(t) - r_i(0)|> over the isoconfigurational runs"),
    "pair_change": ("sigma", "pair-distance change E_ij(t) = <|r_ij(t)| - |r_ij(0)|> over the runs (minimum image)"),
    "cage_relative": ("sigma", "cage-relative displacement R_i(t): <|dr_i - mean of dr_j over the first shell|> "
                               "over the runs"),
    "d2min": ("sigma^2", "Falk-Langer non-affine displacement <D2min_i(t)> over the first shell (|r_ij(0)| < "
                         "1.35 sigma), averaged over the runs; -1 where undefined (fewer than 3 neighbours)"),
    "local_displacement": ("sigma", "displacement vector averaged over the first shell (|r_ij(0)| < 1.35 sigma) "
                                    "and the runs"),
    "fs": ("1", "self-intermediate scattering function F_s(k = 2 pi / sigma, t) of the A particles, run average"),
    "propensity_reliability": ("1", "split-half reliability (Spearman-Brown) of S_i on the node mask; its square "
                                    "root is the highest reachable Pearson rho"),
    "pair_change_reliability": ("1", "split-half reliability (Spearman-Brown) of E_ij on the edge mask; its square "
                                     "root is the highest reachable Pearson rho"),
}
#: the index's own datasets: the catalog (one unit per field) and the ids of a temperature group
CATALOG_INFO = ("id: 1; temperature: epsilon/k_B; t_index: 1; index: 1; split: 1; n_nodes: 1; n_edges: 1; shard: 1",
                "one row per configuration: global id, temperature, temperature index, index within its "
                "temperature, split (0 train, 1 test), nodes N, edges E, position of its shard in the attr shards")
IDS_INFO = ("1", "global ids of this temperature's configurations; row k of every dataset of this group is "
                 "configuration ids[k]")


def describe_dataset(ds: h5py.Dataset, name: str, *, stacked: bool = False) -> None:
    """Give ``ds`` its attrs ``units`` and ``description`` (of target ``name``; ``stacked``: a row per configuration)."""
    units, description = DATASET_INFO[name]
    if stacked:
        description = f"one row per configuration of this temperature (ids): {description}"
    ds.attrs["units"] = units
    ds.attrs["description"] = description


#: arrays that need the runs' trajectories; absent when a group's attr has_trajectories is 0
FROM_TRAJECTORIES = ("pair_change", "cage_relative", "d2min", "local_displacement", "fs",
                     "propensity_reliability", "pair_change_reliability")
#: per-node arrays exposed as one virtual dataset per temperature in the index
NODE_ARRAYS = ("species", "node_mask", "propensity", "cage_relative", "d2min", "local_displacement")


@dataclass(frozen=True)
class ConfigurationMeta:
    """Where a configuration comes from and which split it belongs to."""

    id: int              # global id, position in the run's configuration list
    temperature: float
    t_index: int
    index: int           # within its temperature
    split: str           # "train" or "test"
    source: str          # trajectory or imported file (a path that this machine can read)
    #: ``source`` as the shard records it: relative to the run directory (simulated runs) or within
    #: the imported data set's directory; "" records ``source`` itself
    recorded_source: str = ""

    @property
    def stored_source(self) -> str:
        """The ``source`` attribute of this configuration's group in a shard."""
        return self.recorded_source or self.source


def _is_absolute(recorded: str) -> bool:
    return PurePosixPath(recorded).is_absolute() or PureWindowsPath(recorded).is_absolute()


def source_path(recorded: str, base: str | Path) -> Path:
    """The file that a group's ``source`` attribute names: ``base`` (the run directory of a simulated
    run, the imported directory ``source.path`` of an import) joined with a relative value; an absolute
    value (shards written before sources were stored relative) as it is."""
    return Path(recorded) if _is_absolute(recorded) else Path(base) / recorded


def same_source(recorded: str, meta: ConfigurationMeta) -> bool:
    """Whether a stored ``source`` attribute names ``meta``'s file (an absolute one, of an older shard
    or another machine, by its file name: a moved run still matches)."""
    if _is_absolute(recorded) or _is_absolute(meta.stored_source):
        return PurePosixPath(recorded.replace("\\", "/")).name == Path(meta.source).name
    return recorded == meta.stored_source


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.h5"


#: The name of a shard file: ``shard-`` and the writing rank's five (or more) digits.
_SHARD_NAME = re.compile(r"^shard-(\d{5,})\.h5$")


def shard_files(directory: Path) -> dict[int, Path]:
    """The shard files in ``directory`` by rank; other files (``shard-abc.h5``, a ``.bak.h5``) are not shards."""
    found = {}
    for path in directory.glob("shard-*.h5"):
        match = _SHARD_NAME.match(path.name)
        if match and not path.is_symlink() and path.is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def group_name(conf_id: int) -> str:
    return f"conf_{conf_id:06d}"


def _arrays(t: ConfigurationTargets) -> dict[str, np.ndarray]:
    values = {name: getattr(t, name) for name in ARRAYS}
    if t.d2min is not None:
        values["d2min"] = np.where(np.isfinite(t.d2min), t.d2min, -1.0)
    return {name: np.asarray(v, dtype=ARRAYS[name][0]) for name, v in values.items() if v is not None}


@dataclass(frozen=True)
class StoredConfiguration:
    """A configuration's finished group in an existing shard, to be copied instead of recomputed."""

    shard: Path


def stored_configurations(paths: Iterable[str | Path], metas: dict[int, ConfigurationMeta]
                          ) -> dict[int, StoredConfiguration]:
    """The configurations of ``metas`` that complete shards among ``paths`` already hold, checked.

    A group counts only if its attributes describe the same configuration (temperature, time-point
    set, index, split, source file name) and :func:`check_group` finds nothing wrong (every checksum included).
    """
    found: dict[int, StoredConfiguration] = {}
    for path in paths:
        ids = shard_configurations(path)
        if not ids:
            continue
        with h5py.File(path, "r") as f:
            for cid in ids:
                meta = metas.get(cid)
                if meta is None or cid in found or group_name(cid) not in f:
                    continue
                g = f[group_name(cid)]
                same = (np.isclose(g.attrs["temperature"], meta.temperature) and int(g.attrs["t_index"]) == meta.t_index
                        and int(g.attrs["index"]) == meta.index and g.attrs["split"] == meta.split
                        and same_source(str(g.attrs["source"]), meta))
                if same and not check_group(g, f"{path}:{group_name(cid)}"):
                    found[cid] = StoredConfiguration(Path(path))
    return found


def write_shard(path: str | Path, shard: int, n_shards: int,
                items: Iterable[tuple[ConfigurationMeta, ConfigurationTargets | StoredConfiguration]]) -> list[int]:
    """Write one shard atomically; returns the configuration ids it holds.

    ``items`` may be a generator: each configuration is written as soon as it is computed, so
    memory holds one configuration at a time; a :class:`StoredConfiguration` is copied from its
    shard as it is (arrays, attributes, checksums).  If it raises, no shard file is left behind.
    """
    ids = []
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": SHARD_FORMAT, "version": VERSION, "shard": shard, "n_shards": n_shards})
            for meta, targets in items:
                if isinstance(targets, StoredConfiguration):
                    with h5py.File(targets.shard, "r") as src:
                        group = src[group_name(meta.id)]
                        ensure_free_space(tmp, sum(d.nbytes for d in group.values() if isinstance(d, h5py.Dataset)), path)
                        src.copy(group, f, name=group_name(meta.id))
                    _update_copied_group(f[group_name(meta.id)], meta)
                    ids.append(meta.id)
                    continue
                arrays = _arrays(targets)
                ensure_free_space(tmp, sum(a.nbytes for a in arrays.values()), path)  # h5py crashes on a full disk
                g = f.create_group(group_name(meta.id))
                g.attrs.update({"temperature": meta.temperature, "t_index": meta.t_index, "index": meta.index,
                                "split": meta.split, "source": meta.stored_source,
                                "has_trajectories": int(targets.pair_change is not None)})
                for name, array in arrays.items():
                    ds = g.create_dataset(name, data=array)
                    ds.attrs["crc32"] = crc32(array)
                    describe_dataset(ds, name)
                ids.append(meta.id)
            f.attrs["configurations"] = np.asarray(ids, dtype=np.int64)
            f.attrs["complete"] = 1
    return ids


def _update_copied_group(g: h5py.Group, meta: ConfigurationMeta) -> None:
    """A group copied from an older shard: its source as recorded now, units and descriptions where it had none
    (attributes only: the arrays and their checksums stay as they were)."""
    g.attrs["source"] = meta.stored_source
    for name, ds in g.items():
        if name in DATASET_INFO and isinstance(ds, h5py.Dataset) and "units" not in ds.attrs:
            describe_dataset(ds, name)


def shard_configurations(path: str | Path) -> list[int] | None:
    """The configuration ids of a complete shard, or None if it is missing, incomplete or foreign."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != SHARD_FORMAT or f.attrs.get("complete") != 1:
                return None
            return [int(x) for x in f.attrs["configurations"]]
    except (OSError, KeyError):
        return None


def check_group(g: h5py.Group, where: str, *, checksums: bool = True) -> list[str]:
    """Problems of one configuration group (empty list if none)."""
    problems = []
    sizes: dict[str, int] = {"2": 2, "3": 3}
    has_trajectories = int(g.attrs.get("has_trajectories", 1))
    for name, (dtype, pattern) in ARRAYS.items():
        if name not in g and not has_trajectories and name in FROM_TRAJECTORIES:
            continue
        if name not in g:
            problems.append(f"{where}/{name}: missing")
            continue
        ds = g[name]
        if ds.dtype != np.dtype(dtype):
            problems.append(f"{where}/{name}: dtype {ds.dtype}, expected {dtype}")
            continue
        if len(ds.shape) != len(pattern):
            problems.append(f"{where}/{name}: shape {ds.shape}, expected {pattern}")
            continue
        for size, sym in zip(ds.shape, pattern):
            if sizes.setdefault(sym, size) != size:
                problems.append(f"{where}/{name}: shape {ds.shape} disagrees with {sym} = {sizes[sym]}")
        data = ds[()]
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            problems.append(f"{where}/{name}: NaN or inf values")
        if checksums and int(ds.attrs.get("crc32", -1)) != crc32(data):
            problems.append(f"{where}/{name}: checksum mismatch (recorded {ds.attrs.get('crc32')}, now {crc32(data)})")
    if not problems:
        n = sizes["N"]
        ei = g["edge_index"][()]
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            problems.append(f"{where}/edge_index: node ids outside 0 … {n - 1}")
    return problems


def verify_shard(path: str | Path) -> list[str]:
    """Problems of one shard file (empty list if it is complete and valid)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != SHARD_FORMAT:
                return [f"{path}: not a hpc_botan targets shard"]
            if f.attrs.get("complete") != 1:
                return [f"{path}: incomplete (no completion mark)"]
            listed = [group_name(int(x)) for x in f.attrs["configurations"]]
            problems = []
            if sorted(listed) != sorted(k for k in f if k.startswith("conf_")):
                problems.append(f"{path}: groups do not match the configurations attribute")
            for name in listed:
                if name in f:
                    problems += check_group(f[name], f"{path}:{name}")
            return problems
    except OSError as exc:
        return [f"{path}: unreadable HDF5 ({exc})"]


def write_index(targets_dir: str | Path, shards: list[str], metas: dict[int, ConfigurationMeta]) -> Path:
    """Write ``index.h5`` over ``shards`` (file names in ``targets_dir``) atomically.

    Raises :class:`UserError` if a configuration is missing or appears twice.
    """
    targets_dir = Path(targets_dir)
    where: dict[int, str] = {}
    shapes: dict[int, dict[str, Any]] = {}
    for name in shards:
        with h5py.File(targets_dir / name, "r") as f:
            for cid in f.attrs["configurations"]:
                cid = int(cid)
                if cid in where:
                    raise UserError(f"configuration {cid} is in both {where[cid]} and {name}")
                where[cid] = name
                g = f[group_name(cid)]
                shapes[cid] = {k: g[k].shape if k in g else None for k in NODE_ARRAYS}
                shapes[cid]["n_edges"] = g["edge_index"].shape[1]
    missing = sorted(set(metas) - set(where))
    if missing:
        raise UserError(f"{targets_dir}: configurations {missing[:10]} are in no shard")
    path = targets_dir / INDEX_FILE
    ids = sorted(metas)
    with new_hdf5_file(path) as f:
        f.attrs.update({"format": INDEX_FORMAT, "version": VERSION, "n_configurations": len(ids),
                        "shards": np.array(shards, dtype=h5py.string_dtype())})
        confs = f.create_group("configurations")
        for cid in ids:
            confs[group_name(cid)] = h5py.ExternalLink(where[cid], "/" + group_name(cid))
        catalog = np.array(
            [(cid, metas[cid].temperature, metas[cid].t_index, metas[cid].index,
              0 if metas[cid].split == "train" else 1, shapes[cid]["species"][0], shapes[cid]["n_edges"],
              shards.index(where[cid])) for cid in ids],
            dtype=[("id", "i8"), ("temperature", "f8"), ("t_index", "i8"), ("index", "i8"), ("split", "i1"),
                   ("n_nodes", "i8"), ("n_edges", "i8"), ("shard", "i8")])
        table = f.create_dataset("catalog", data=catalog)
        table.attrs["units"], table.attrs["description"] = CATALOG_INFO
        for t_index in sorted({m.t_index for m in metas.values()}):
            members = [cid for cid in ids if metas[cid].t_index == t_index]
            group = f.create_group(f"T{metas[members[0]].temperature:.3f}")
            members_ds = group.create_dataset("ids", data=np.array(members, dtype=np.int64))
            members_ds.attrs["units"], members_ds.attrs["description"] = IDS_INFO
            for name in NODE_ARRAYS:
                shape = shapes[members[0]][name]
                if shape is None or any(shapes[c][name] != shape for c in members):
                    continue  # absent or different sizes: reachable through /configurations only
                dtype = ARRAYS[name][0]
                layout = h5py.VirtualLayout(shape=(len(members), *shape), dtype=dtype)
                for row, cid in enumerate(members):
                    layout[row] = h5py.VirtualSource(where[cid], f"/{group_name(cid)}/{name}", shape=shape)
                describe_dataset(group.create_virtual_dataset(name, layout, fillvalue=0), name, stacked=True)
        f.attrs["complete"] = 1
    return path


@contextlib.contextmanager
def readable_targets(index_path: str | Path, what: str = "the targets") -> Iterator[None]:
    """Turn h5py's failures while reading through ``index_path`` into one-line :class:`UserError`.

    A shard that was truncated, deleted or overwritten after the index was written surfaces as
    KeyError or OSError deep inside h5py; the user needs the file and what to do about it.
    """
    try:
        yield
    except (KeyError, OSError) as exc:
        detail = " ".join(str(exc).split())
        raise UserError(f"{index_path}: cannot read {what} ({detail}); 'hpc-botan verify RUN_DIR' names the broken "
                        "shard, and re-running 'hpc-botan targets' (or the import) rewrites it") from None


def index_times(index_path: str | Path) -> dict[float, np.ndarray]:
    """Temperature → its time points (F,) in τ, as stored in a targets index."""
    out: dict[float, np.ndarray] = {}
    with readable_targets(index_path, "the time points"), h5py.File(index_path, "r") as f:
        catalog = f["catalog"][()]
        for t in sorted(set(float(x) for x in catalog["temperature"])):
            first = int(catalog["id"][np.isclose(catalog["temperature"], t)][0])
            out[t] = f["configurations"][group_name(first)]["times"][()]
    return out


def read_configuration(index_path: str | Path, conf_id: int, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Arrays (and attributes under ``"attrs"``) of one configuration through the index."""
    index_path = Path(index_path)
    with readable_targets(index_path, f"configuration {conf_id}"), h5py.File(index_path, "r") as f:
        g = f["configurations"][group_name(conf_id)]
        out: dict[str, Any] = {name: g[name][()] for name in (names or ARRAYS) if name in g}
        out["attrs"] = dict(g.attrs)
    return out


def verify_targets(targets_dir: str | Path, expected_ids: Iterable[int]) -> list[str]:
    """Every problem of a targets directory: the index, every shard it lists, every configuration.

    Checks shapes, dtypes, NaN/inf, the checksums recorded at write time, that the index
    resolves every configuration and that each expected configuration is present exactly once.
    """
    targets_dir = Path(targets_dir)
    index = targets_dir / INDEX_FILE
    expected = sorted(int(x) for x in expected_ids)
    try:
        with h5py.File(index, "r") as f:
            if f.attrs.get("format") != INDEX_FORMAT or f.attrs.get("complete") != 1:
                return [f"{index}: not a complete hpc_botan targets index"]
            shards = [s.decode() if isinstance(s, bytes) else str(s) for s in f.attrs["shards"]]
            catalog = f["catalog"][()]
            groups = sorted(f["configurations"])
            vds = [(name, ds) for t in f if t.startswith("T") for name, ds in f[t].items()]
            problems = []
            ids = [int(x) for x in catalog["id"]]
            if len(set(ids)) != len(ids):
                problems.append(f"{index}: a configuration is listed more than once")
            if sorted(set(ids)) != expected:
                missing, extra = sorted(set(expected) - set(ids)), sorted(set(ids) - set(expected))
                problems.append(f"{index}: configurations missing {missing[:10]} / unexpected {extra[:10]}")
            if groups != [group_name(i) for i in sorted(ids)]:
                problems.append(f"{index}: /configurations does not match the catalog")
            for name in groups:
                try:
                    f["configurations"][name].attrs.get("split")
                except (KeyError, OSError) as exc:
                    problems.append(f"{index}:/configurations/{name}: link does not resolve ({exc})")
            for name, ds in vds:
                try:
                    ds[0]
                except OSError as exc:
                    problems.append(f"{index}: virtual dataset {name} unreadable ({exc})")
    except OSError as exc:
        return [f"{index}: missing or unreadable ({exc}); run 'hpc-botan targets' first"]
    seen: dict[int, str] = {}
    for shard in shards:
        problems += verify_shard(targets_dir / shard)
        for cid in shard_configurations(targets_dir / shard) or []:
            if cid in seen:
                problems.append(f"configuration {cid} is in both {seen[cid]} and {shard}")
            seen[cid] = shard
    return problems


def read_fs_curves(index_path: str | Path) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
    """F_s(k = 2π, t) per configuration from a targets index (for imported data sets without trajectories).

    Returns:
        (temperature → times (F,) in τ, temperature → F_s (C, F) of the C configurations that carry ``fs``).
        Empty dicts when no configuration has an ``fs`` array.
    """
    times: dict[float, np.ndarray] = {}
    rows: dict[float, list[np.ndarray]] = {}
    with h5py.File(index_path, "r") as f:
        catalog = f["catalog"][()]
        for cid, temp in zip(catalog["id"], catalog["temperature"]):
            g = f["configurations"][group_name(int(cid))]
            if "fs" not in g:
                continue
            temp = float(temp)
            t = g["times"][()]
            if temp in times and not np.allclose(times[temp], t):
                continue  # a configuration on another time grid cannot be averaged with the others
            times.setdefault(temp, t)
            rows.setdefault(temp, []).append(g["fs"][()])
    return times, {temp: np.array(r) for temp, r in rows.items()}


def complete_index_size(index_path: str | Path) -> int | None:
    """The number of configurations of a complete targets index; None if it is missing or incomplete."""
    index_path = Path(index_path)
    if not index_path.is_file():
        return None
    try:
        with h5py.File(index_path, "r") as f:
            if f.attrs.get("complete") != 1:
                return None
            return int(f.attrs.get("n_configurations", -1))
    except OSError:
        return None


def index_summary(index_path: str | Path) -> tuple[int, int]:
    """(configurations, shards) that a targets index names; raises OSError when it cannot be read."""
    with h5py.File(index_path, "r") as f:
        return int(f.attrs.get("n_configurations", 0)), len(f.attrs.get("shards", []))


def read_catalog(index_path: str | Path) -> np.ndarray:
    """The ``/catalog`` table of a targets index (one row per configuration; fields in the module docstring)."""
    with h5py.File(index_path, "r") as f:
        return f["catalog"][()]


def read_complete_catalog(index_path: str | Path) -> np.ndarray:
    """The catalog of a complete targets index; a one-line UserError for anything else."""
    index_path = Path(index_path)
    try:
        with h5py.File(index_path, "r") as f:
            if f.attrs.get("format") != INDEX_FORMAT or f.attrs.get("complete") != 1:
                raise UserError(f"{index_path}: not a complete hpc_botan targets index")
            return f["catalog"][()]
    except OSError as exc:
        raise UserError(f"{index_path}: cannot open ({exc}); run 'hpc-botan targets' first") from None


class IndexReader:
    """A targets index opened once per process for many reads (the training data loader's view).

    Picklable: a copy in a forked or spawned worker opens its own handle on first use.
    """

    def __init__(self, index_path: str | Path):
        self.index_path = Path(index_path)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.index_path, "r")  # a forked worker opens its own handle
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        return {"index_path": self.index_path, "_file": None, "_pid": None}

    def training_arrays(self, conf_id: int, time_indices: Sequence[int], node: LearnedTarget | None = None,
                        edge: LearnedTarget | None = None) -> dict[str, Any]:
        """What a network trains on for one configuration, at the time indices given (negative: from the end).

        ``node`` / ``edge``: the learned targets of the node and edge outputs (default S_i and E_ij).
        Returns numpy arrays: ``species`` (N,), ``edge_index`` (2, E), ``edge_attr`` (E, 3),
        ``y_node`` (K, N), ``y_edge`` (K, E) (zeros where the data set has no edge targets,
        ``has_edges`` False), ``node_mask`` (N,), ``edge_mask`` (E,), ``times`` (K,), and the split-half
        reliabilities ``node_reliability``, ``edge_reliability`` (K,) (NaN where none is recorded).
        """
        node = node or LEARNED_TARGETS[DEFAULT_NODE_TARGET]
        edge = edge or LEARNED_TARGETS[DEFAULT_EDGE_TARGET]
        with readable_targets(self.index_path, f"configuration {conf_id}"):
            g = self._handle()["configurations"][group_name(int(conf_id))]
            n_times = g["times"].shape[0]
            cols = [t if t >= 0 else n_times + t for t in time_indices]
            if any(not 0 <= c < n_times for c in cols):
                raise UserError(f"time_indices {list(time_indices)}: this configuration has {n_times} time points")
            has_edges = edge.array in g  # data sets without trajectories have S_i only
            if node.array not in g:
                raise UserError(f"configuration {conf_id}: the data set has no {node.array} ({node.symbol}, "
                                f"train.node_target: {node.label}); it is computed from trajectories")
            n_edges = g["edge_index"].shape[1]
            out = {name: g[name][()] for name in ("species", "edge_index", "edge_attr", "node_mask", "edge_mask")}
            # only the trained rows are read (HDF5 selects increasing, distinct rows; the order is restored after)
            rows = sorted(set(cols))
            order = [rows.index(c) for c in cols]

            def trained(name: str) -> np.ndarray:
                return g[name][rows][order]

            out["y_node"] = trained(node.array)
            out["y_edge"] = trained(edge.array) if has_edges else np.zeros((len(cols), n_edges), np.float32)
            out["times"] = trained("times")
            for key, name in (("node_reliability", node.reliability), ("edge_reliability", edge.reliability)):
                out[key] = trained(name) if name and name in g else np.full(len(cols), np.nan)
            out["has_edges"] = has_edges
            return out
