"""The radial descriptors of a run's configurations, for networks with descriptor heads.

:func:`ensure_descriptors` computes them once per targets index (every configuration, every split:
training, validation, evaluation and the baselines' fit read the same numbers) into
``targets/descriptors.h5`` (:mod:`hpc_botan.io.descriptor_file`), under a lock; a process that finds
another computing them waits for it (training ranks, parallel training jobs).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm import tqdm

from hpc_botan.errors import UserError
from hpc_botan.io.descriptor_file import descriptor_path, stored_settings, write_descriptors
from hpc_botan.io.durable import exclusive_lock, lock_holder, up_to_date
from hpc_botan.io.shards import read_complete_catalog, read_configuration
from hpc_botan.model.build import descriptor_settings_of
from hpc_botan.physics.descriptors import DescriptorSettings, coarse_grained_descriptors

log = logging.getLogger("hpc_botan.data")


def _current(path: Path, index_path: Path, settings: DescriptorSettings) -> bool:
    return stored_settings(path) == settings.as_dict() and up_to_date(path, [index_path])


def ensure_descriptors(index_path: str | Path, settings: DescriptorSettings, *, timeout_min: float = 60.0,
                       show_progress: bool = False, poll_s: float = 2.0) -> Path:
    """The descriptor file of ``index_path`` with ``settings``, computed now if it is missing or stale.

    Returns its path.  Waits up to ``timeout_min`` for another process that is computing it.
    """
    index_path = Path(index_path)
    path = descriptor_path(index_path)
    lock = path.with_name(".descriptors.h5.lock")
    deadline = time.monotonic() + 60.0 * timeout_min
    while not _current(path, index_path, settings):
        try:
            with exclusive_lock(lock, f"the descriptors of {index_path}"):
                if not _current(path, index_path, settings):   # not written meanwhile by the holder we waited for
                    _compute(index_path, path, settings, show_progress)
        except UserError:
            if lock_holder(lock) is None or time.monotonic() > deadline:
                raise
            time.sleep(poll_s)
    return path


def _compute(index_path: Path, path: Path, settings: DescriptorSettings, show_progress: bool) -> None:
    ids = [int(c) for c in read_complete_catalog(index_path)["id"]]
    log.info("descriptors: %d configurations of %s (%d features per particle) -> %s", len(ids), index_path,
             settings.n_features, path)

    def items():
        for cid in tqdm(ids, desc="descriptors", unit="conf", disable=not show_progress, leave=False):
            d = read_configuration(index_path, cid, ["positions0", "species", "box"])
            try:
                yield cid, coarse_grained_descriptors(d["positions0"], d["species"], d["box"], settings)
            except ValueError as exc:
                raise UserError(f"{index_path}: configuration {cid}: the descriptor heads: {exc}") from None

    write_descriptors(path, settings.as_dict(), items())


def run_descriptors(index_path: str | Path, cfg, **kwargs) -> Path | None:
    """The descriptor file that the networks of run configuration ``cfg`` read (computed if needed),
    or None when they have no descriptor heads (``model.descriptors: none``)."""
    settings = descriptor_settings_of(cfg)
    return None if settings is None else ensure_descriptors(index_path, settings, **kwargs)
