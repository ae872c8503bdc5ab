"""GlassBench npz files (3D Kob–Andersen), one per configuration: ``N{N}T{T}_{id}.npz``.

Arrays: ``types`` (N,), ``initial_positions`` (N, 3) wrapped to [−L/2, L/2),
``initial_positions_inherent`` (unused here), ``md_prop`` the propensity S_i at the 10
published time points ((10, N) or (N, 10)), and, in test files, other models' predictions
(ignored).  There are no trajectories, so only S_i is imported (no E_ij, no noise ceiling).
The box is not stored: L = (N / density)^(1/3).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np

from hpc_botan.config import Config, config_from_dict
from hpc_botan.errors import UserError
from hpc_botan.io.shards import ConfigurationMeta
from hpc_botan.physics.configuration_targets import targets_without_trajectories
from hpc_botan.physics.time_points import PUBLISHED_TAU_ALPHA, PUBLISHED_TIMES

NAME = re.compile(r"^N(\d+)T(\d+(?:\.\d+)?)_(\d+)\.npz$")
KEYS = ("types", "initial_positions", "md_prop")


def scan(source: str | Path) -> dict[tuple[float, int], Path]:
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source}: not a directory")
    found = {}
    for path in sorted(source.iterdir()):
        m = NAME.match(path.name)
        if m:
            found[(round(float(m.group(2)), 4), int(m.group(3)))] = path
    if not found:
        raise UserError(f"{source}: no GlassBench files (N<N>T<T>_<id>.npz); wrong format?")
    return found


def _read(path: Path, n_times: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in KEYS if k not in data.files]
            if missing:
                raise UserError(f"{path}: missing array {missing[0]!r} (expected {', '.join(KEYS)})")
            arrays = {k: data[k] for k in KEYS}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable npz file ({exc})") from None
    n = arrays["types"].shape[0]
    prop = arrays["md_prop"]
    if prop.shape == (n, n_times) and n != n_times:
        prop = prop.T
    if arrays["initial_positions"].shape != (n, 3) or prop.shape != (n_times, n):
        raise UserError(f"{path}: shapes types {arrays['types'].shape}, initial_positions "
                        f"{arrays['initial_positions'].shape}, md_prop {arrays['md_prop'].shape}; expected (N,), "
                        f"(N, 3), ({n_times}, N)")
    if not (np.isfinite(arrays["initial_positions"]).all() and np.isfinite(prop).all()):
        raise UserError(f"{path}: NaN or inf values")
    arrays["md_prop"] = prop
    return arrays


def describe(source: str | Path, density: float = 1.2) -> Config:
    found = scan(source)
    temps = sorted({t for t, _ in found})
    counts = {t: sum(1 for tt, _ in found if tt == t) for t in temps}
    if len(set(counts.values())) != 1:
        raise UserError(f"{source}: different numbers of configurations per temperature {counts}")
    unknown = [t for t in temps if t not in PUBLISHED_TIMES]
    if unknown:
        raise UserError(f"{source}: temperatures {unknown} have no published time points")
    first = _read(next(iter(found.values())), len(PUBLISHED_TIMES[temps[0]]))
    n_conf = next(iter(counts.values()))
    return config_from_dict({
        "source": {"format": "glassbench", "path": str(Path(source).resolve())},
        "simulation": {
            "n_particles": int(first["types"].shape[0]), "density": density, "temperatures": temps,
            "n_configurations": n_conf, "n_train": n_conf, "n_runs": 1,
            "time_points": {t: list(PUBLISHED_TIMES[t]) for t in temps},
            "tau_alpha": {t: PUBLISHED_TAU_ALPHA[t] for t in temps},
        },
    }, f"import of {source}")


def configurations(cfg: Config) -> dict[int, tuple[ConfigurationMeta, Callable]]:
    s = cfg.simulation
    found = scan(cfg.source.path)
    out, gid = {}, 0
    for t_index, temp in enumerate(s.temperatures):
        for index, conf in enumerate(sorted(i for t, i in found if t == temp)):
            path = found[(temp, conf)]
            meta = ConfigurationMeta(id=gid, temperature=temp, t_index=t_index, index=index,
                                     split="train" if index < s.n_train else "test", source=str(path),
                                     recorded_source=path.name)
            out[gid] = (meta, _loader(path, s.density, s.time_points[temp]))
            gid += 1
    return out


def _loader(path: Path, density: float, times: list[float]) -> Callable:
    def load():
        arrays = _read(path, len(times))
        n = arrays["types"].shape[0]
        box = np.full(3, (n / density) ** (1.0 / 3.0))
        positions0 = np.mod(arrays["initial_positions"] + box / 2, box)  # [−L/2, L/2) → [0, L)
        return targets_without_trajectories(positions0, arrays["types"].astype(np.int8), box, arrays["md_prop"],
                                            np.asarray(times, dtype=float))
    return load
