"""Importers: data sets users already have, turned into the same targets layout.

Each importer module offers ``describe(source) -> Config`` (the run configuration that
describes the data) and ``configurations(cfg) -> dict[id, (ConfigurationMeta, load)]``,
where ``load()`` returns ``(positions0 (N, 3), species (N,), box (3,), runs (R, F, N, 3),
times (F,))`` for :func:`hpc_botan.physics.configuration_targets.compute_targets`, or, for data sets
without trajectories, finished :class:`~hpc_botan.physics.configuration_targets.ConfigurationTargets`.
"""
from __future__ import annotations

import importlib

FORMATS = {"pyg-botan": "pyg_botan", "deepmind": "deepmind", "glassbench": "glassbench"}


def importer(fmt: str):
    """The importer module of ``fmt``."""
    return importlib.import_module(f"hpc_botan.targets.importers.{FORMATS[fmt]}")
