"""The reference implementation's npz files (pyg_botan), one per (configuration, time point).

File names ``isoconfig_N{N}T{T:.2f}_{id}_tc{kk:02d}.npz`` hold ``types`` int8 (N,),
``initial_positions`` (N, 3) in [0, L) and ``positions`` (R, N, 3) unwrapped at time point
``kk`` (1-based index into the published time points of that temperature).  The box is not
stored: L = (N / density)^(1/3) with density 1.2 unless told otherwise.
"""
from __future__ import annotations

import re
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from hpc_botan.config import Config, config_from_dict
from hpc_botan.errors import UserError
from hpc_botan.io.shards import ConfigurationMeta
from hpc_botan.physics.time_points import PUBLISHED_TAU_ALPHA, PUBLISHED_TIMES

NAME = re.compile(r"^isoconfig_N(\d+)T(\d+\.\d+)_(\d+)_tc(\d+)\.npz$")


def scan(source: str | Path) -> dict[tuple[float, int], dict[int, Path]]:
    """Files of ``source`` by (temperature, configuration id) → {time-point number: path}."""
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source}: not a directory")
    found: dict[tuple[float, int], dict[int, Path]] = defaultdict(dict)
    for path in sorted(source.iterdir()):
        m = NAME.match(path.name)
        if m:
            found[(float(m.group(2)), int(m.group(3)))][int(m.group(4))] = path
    if not found:
        raise UserError(f"{source}: no pyg-botan files (isoconfig_N<N>T<T>_<id>_tc<kk>.npz); wrong format?")
    return dict(found)


def _read(path: Path) -> dict[str, np.ndarray]:
    keys = ("types", "initial_positions", "positions")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise UserError(f"{path}: missing array {missing[0]!r} (expected {', '.join(keys)})")
            arrays = {k: data[k] for k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from None
    if any(not np.issubdtype(a.dtype, np.number) for a in arrays.values()):
        raise UserError(f"{path}: arrays of dtypes {[str(a.dtype) for a in arrays.values()]}; expected numbers")
    n = arrays["types"].shape[0] if arrays["types"].ndim == 1 else -1
    if n < 0 or arrays["initial_positions"].shape != (n, 3) or arrays["positions"].ndim != 3 or \
            arrays["positions"].shape[1:] != (n, 3):
        raise UserError(f"{path}: shapes {[a.shape for a in arrays.values()]} are not (N,), (N, 3), (R, N, 3)")
    return arrays


def describe(source: str | Path, density: float = 1.2) -> Config:
    """The run configuration that describes the files of ``source`` (all of them training data)."""
    found = scan(source)
    temps = sorted({t for t, _ in found})
    ids = {t: sorted(i for tt, i in found if tt == t) for t in temps}
    counts = {len(v) for v in ids.values()}
    if len(counts) != 1:
        raise UserError(f"{source}: different numbers of configurations per temperature {ids}")
    first = _read(next(iter(next(iter(found.values())).values())))
    time_points = {}
    for t in temps:
        kks = sorted({kk for (tt, _), files in found.items() if tt == t for kk in files})
        if t not in PUBLISHED_TIMES:
            raise UserError(f"{source}: temperature {t} has no published time points (known: {sorted(PUBLISHED_TIMES)})")
        bad = [kk for kk in kks if not 1 <= kk <= len(PUBLISHED_TIMES[t])]
        if bad:
            raise UserError(f"{source}: time-point numbers {bad} outside 1 … {len(PUBLISHED_TIMES[t])} at T = {t}")
        time_points[t] = [PUBLISHED_TIMES[t][kk - 1] for kk in kks]
    n_conf = counts.pop()
    return config_from_dict({
        "source": {"format": "pyg-botan", "path": str(Path(source).resolve())},
        "simulation": {
            "n_particles": int(first["types"].shape[0]), "density": density, "temperatures": temps,
            "n_configurations": n_conf, "n_train": n_conf, "n_runs": int(first["positions"].shape[0]),
            "time_points": time_points, "tau_alpha": {t: PUBLISHED_TAU_ALPHA[t] for t in temps},
        },
    }, f"import of {source}")


def configurations(cfg: Config) -> dict[int, tuple[ConfigurationMeta, Callable]]:
    """Every configuration of an imported run: global id → (meta, loader)."""
    s = cfg.simulation
    found = scan(cfg.source.path)
    out = {}
    gid = 0
    for t_index, temp in enumerate(s.temperatures):
        conf_ids = sorted(i for t, i in found if t == temp)
        kks = [PUBLISHED_TIMES[temp].index(x) + 1 for x in s.time_points[temp]]
        for index, conf in enumerate(conf_ids):
            files = found[(temp, conf)]
            meta = ConfigurationMeta(id=gid, temperature=temp, t_index=t_index, index=index,
                                     split="train" if index < s.n_train else "test",
                                     source=str(files[min(files)]), recorded_source=files[min(files)].name)
            out[gid] = (meta, _loader(files, kks, s.density, s.time_points[temp], f"configuration {conf} at T = {temp}"))
            gid += 1
    return out


def _loader(files: dict[int, Path], kks: list[int], density: float, times: list[float], what: str) -> Callable:
    def load():
        missing = [kk for kk in kks if kk not in files]
        if missing:
            raise UserError(f"{what}: no file for time points {missing} (tc{missing[0]:02d})")
        frames = []
        ref = None
        for kk in kks:
            arrays = _read(files[kk])
            if ref is None:
                ref = arrays
            elif not (np.array_equal(arrays["types"], ref["types"])
                      and np.array_equal(arrays["initial_positions"], ref["initial_positions"])):
                raise UserError(f"{files[kk]}: types or initial positions differ from {files[kks[0]]}")
            elif arrays["positions"].shape != ref["positions"].shape:
                raise UserError(f"{files[kk]}: {arrays['positions'].shape[0]} runs, {files[kks[0]]} has "
                                f"{ref['positions'].shape[0]}")
            if not np.isfinite(arrays["positions"]).all():
                raise UserError(f"{files[kk]}: NaN or inf positions")
            frames.append(arrays["positions"])
        n = ref["types"].shape[0]
        box = np.full(3, (n / density) ** (1.0 / 3.0))
        runs = np.stack(frames, axis=1)  # (R, F, N, 3)
        return ref["initial_positions"], ref["types"].astype(np.int8), box, runs, np.asarray(times, dtype=float)

    return load
