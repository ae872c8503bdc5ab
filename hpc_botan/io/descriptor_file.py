"""``targets/descriptors.h5``: the radial descriptors of every configuration of a targets index.

Derived data, for networks with descriptor heads (``model.descriptors: heads``): computed once from
the index's ``positions0``, ``species`` and ``box`` (:mod:`hpc_botan.data.descriptors`) and read at
every training step, evaluation and prediction of a run's configurations, where computing them
again would cost about a second per 4096-particle graph.  Layout::

    /  attrs: format = "hpc_botan-descriptors", version, settings (JSON: shell_centres, shell_width,
              lengths, n_features), complete = 1 (set last)
    /conf_000012   (N, F) float32, per particle (the index's order), attrs crc32, units "1", description

A file whose settings differ from the ones asked for, or that is older than the index, is stale and
written again; it is written under a temporary name and renamed, so a file that exists is whole.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path, crc32
from hpc_botan.io.hdf5_files import ensure_free_space
from hpc_botan.io.shards import group_name

DESCRIPTOR_FORMAT = "hpc_botan-descriptors"
VERSION = 1
DESCRIPTION = ("coarse-grained radial shell densities per particle (hpc_botan.physics.descriptors; the "
               "file's settings attr), float32, in the index's particle order")


def descriptor_path(index_path: str | Path) -> Path:
    """Where the descriptors of the index ``index_path`` are kept (beside it)."""
    return Path(index_path).with_name("descriptors.h5")


def stored_settings(path: str | Path) -> dict | None:
    """The settings of a complete descriptor file, or None (missing, incomplete or not one)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != DESCRIPTOR_FORMAT or int(f.attrs.get("complete", 0)) != 1:
                return None
            return json.loads(f.attrs["settings"])
    except (OSError, KeyError, ValueError):
        return None


def write_descriptors(path: str | Path, settings: dict, items: Iterable[tuple[int, np.ndarray]]) -> Path:
    """Write the file atomically from ``items`` (configuration id, descriptors (N, F)), one at a time."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": DESCRIPTOR_FORMAT, "version": VERSION, "settings": json.dumps(settings)})
            for conf_id, values in items:
                values = np.ascontiguousarray(values, dtype=np.float32)
                ensure_free_space(tmp, values.nbytes, path)
                ds = f.create_dataset(group_name(conf_id), data=values)
                ds.attrs.update({"crc32": crc32(values), "units": "1", "description": DESCRIPTION})
            f.attrs["complete"] = 1
    return path


def read_descriptors(path: str | Path, conf_id: int) -> np.ndarray:
    """The descriptors (N, F) float32 of configuration ``conf_id``, checked against their CRC."""
    try:
        with h5py.File(path, "r") as f:
            ds = f[group_name(conf_id)]
            values = ds[()]
            recorded = int(ds.attrs["crc32"])
    except (OSError, KeyError) as exc:
        raise UserError(f"{path}: the descriptors of configuration {conf_id} cannot be read ({exc}); remove the "
                        "file and re-run: it is computed again") from None
    if crc32(values) != recorded:
        raise UserError(f"{path}:{group_name(conf_id)}: checksum mismatch; remove the file and re-run: it is "
                        "computed again")
    return values
