"""DeepMind's glassy-dynamics data (the NT-GNN paper): one pickled dict per configuration.

Keys: ``positions`` (N, 3), ``types`` (N,), ``box`` (3,) (NPT runs: L differs per file),
``time`` (169,) log-spaced times, ``time_indices`` (10,) per-file indices where the
run-averaged scattering function reaches 0.9, 0.8, …, 0.1, 1/e,
``trajectory_start_velocities`` (30 × (N, 3)), ``trajectory_target_positions``
(10 × 30 × (N, 3), unwrapped), ``metadata`` {temperature, pressure, fluid}.

Pickles from strangers can run code, so they are read with an unpickler that only builds
plain containers, numbers, strings and numpy arrays; anything else is refused.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hpc_botan.config import Config, config_from_dict
from hpc_botan.errors import UserError
from hpc_botan.io.shards import ConfigurationMeta

SUFFIXES = (".pickle", ".pkl")
KEYS = ("positions", "types", "box", "time", "time_indices", "trajectory_target_positions", "metadata")

#: (module, name) pairs the unpickler may build: numpy's array and scalar reconstruction only.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only plain containers and numpy arrays)")


def load_plain_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only plain containers, numbers, strings and numpy arrays."""
    try:
        with open(path, "rb") as fh:
            return _PlainUnpickler(fh).load()
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: {exc}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: not a readable pickle ({exc})") from None


def scan(source: str | Path) -> list[Path]:
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source}: not a directory")
    files = sorted(p for p in source.iterdir() if p.suffix in SUFFIXES)
    if not files:
        raise UserError(f"{source}: no DeepMind pickles (*.pickle, *.pkl); wrong format?")
    return files


def _read(path: Path) -> dict[str, Any]:
    data = load_plain_pickle(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a dict, got {type(data).__name__}")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise UserError(f"{path}: missing key {missing[0]!r} (expected {', '.join(KEYS)})")
    return data


def _array(data: dict[str, Any], key: str, path: Path, dtype, ndim: int) -> np.ndarray:
    """``data[key]`` as an ``ndim``-dimensional array of ``dtype``; a one-line error if it is not one."""
    try:
        value = np.asarray(data[key])
        if value.dtype.kind not in "biuf" or (dtype is int and value.dtype.kind == "f"
                                               and not np.all(np.mod(value, 1) == 0)):
            raise TypeError
        value = value.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{path}: {key}: expected numbers, got {type(data[key]).__name__}") from None
    if value.ndim != ndim or value.size == 0:
        raise UserError(f"{path}: {key}: expected a non-empty {ndim}-dimensional array, got shape {value.shape}")
    return value


def _times(data: dict[str, Any], path: Path) -> np.ndarray:
    time, idx = _array(data, "time", path, float, 1), _array(data, "time_indices", path, int, 1)
    if idx.min() < 0 or idx.max() >= time.size:
        raise UserError(f"{path}: time_indices outside the {time.size} times")
    return time[idx]


def _temperature(data: dict[str, Any], path: Path) -> float:
    try:
        return round(float(data["metadata"]["temperature"]), 4)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: metadata has no temperature") from None


def describe(source: str | Path, density: float | None = None) -> Config:
    """Configuration describing the pickles (``density`` ignored: every file has its box)."""
    files = scan(source)
    by_temp: dict[float, list[tuple[Path, dict]]] = {}
    for path in files:
        data = _read(path)
        by_temp.setdefault(_temperature(data, path), []).append((path, data))
    counts = {t: len(v) for t, v in by_temp.items()}
    if len(set(counts.values())) != 1:
        raise UserError(f"{source}: different numbers of configurations per temperature {counts}")
    temps = sorted(by_temp)
    first_path, first = by_temp[temps[0]][0]
    n = int(_array(first, "types", first_path, int, 1).shape[0])
    boxes = [_array(d, "box", p, float, 1) for v in by_temp.values() for p, d in v]
    if any(b.shape != (3,) or not np.isfinite(b).all() or (b <= 0).any() for b in boxes):
        raise UserError(f"{source}: a box is not three positive edges")
    mean_density = float(np.mean([n / np.prod(b) for b in boxes]))
    n_runs = int(_array(first, "trajectory_target_positions", first_path, float, 4).shape[1])
    n_conf = next(iter(counts.values()))
    # time points differ per file (they are where F_s reaches given values); each configuration
    # stores its own, the configuration records the first file's as nominal values
    time_points = {t: [float(x) for x in _times(v[0][1], v[0][0])] for t, v in by_temp.items()}
    tau = {t: time_points[t][-1] for t in temps}  # the last index is where F_s = 1/e
    return config_from_dict({
        "source": {"format": "deepmind", "path": str(Path(source).resolve())},
        "simulation": {"n_particles": n, "density": mean_density, "temperatures": temps,
                       "n_configurations": n_conf, "n_train": n_conf, "n_runs": n_runs,
                       "time_points": {t: sorted(v) for t, v in time_points.items()}, "tau_alpha": tau},
    }, f"import of {source}")


def configurations(cfg: Config) -> dict[int, tuple[ConfigurationMeta, Callable]]:
    files = scan(cfg.source.path)
    temps = {path: _temperature(_read(path), path) for path in files}
    out, gid = {}, 0
    for t_index, temp in enumerate(cfg.simulation.temperatures):
        for index, path in enumerate(p for p in files if temps[p] == temp):
            meta = ConfigurationMeta(id=gid, temperature=temp, t_index=t_index, index=index,
                                     split="train" if index < cfg.simulation.n_train else "test", source=str(path),
                                     recorded_source=path.name)
            out[gid] = (meta, _loader(path))
            gid += 1
    return out


def _loader(path: Path) -> Callable:
    def load():
        data = _read(path)
        positions0 = _array(data, "positions", path, np.float64, 2)
        species = _array(data, "types", path, int, 1).astype(np.int8)
        box = _array(data, "box", path, np.float64, 1)
        n = species.shape[0]
        targets = _array(data, "trajectory_target_positions", path, np.float64, 4)  # (F, R, N, 3)
        times = _times(data, path)
        if positions0.shape != (n, 3) or box.shape != (3,) or targets.ndim != 4 or targets.shape[2:] != (n, 3) \
                or targets.shape[0] != times.size:
            raise UserError(f"{path}: shapes positions {positions0.shape}, box {box.shape}, "
                            f"trajectory_target_positions {targets.shape}, {times.size} time indices do not fit")
        if not (np.isfinite(positions0).all() and np.isfinite(targets).all()):
            raise UserError(f"{path}: NaN or inf positions")
        order = np.argsort(times)
        runs = np.ascontiguousarray(targets[order].transpose(1, 0, 2, 3))  # (R, F, N, 3)
        positions0 = np.mod(positions0, box)
        return positions0, species, box, runs, times[order]
    return load
