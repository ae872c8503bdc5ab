"""The exported-model file (``hpc-botan export``): trained networks that need no training code.

A zip archive (stored, not compressed) holding

    metadata.json                what the networks are (schema below)
    programs/<family>_T<T>.pt2   one ``torch.export`` program per model family and temperature: an
                                 :class:`hpc_botan.model.ensemble.Ensemble` of every replica of every
                                 trained time point, with dynamic numbers of nodes and edges

``metadata.json``::

    format               "hpc_botan-exported-model-1"
    hpc_botan_version, torch_version, source_run (the run directory it was exported from)
    graph_cutoff         σ, the graph's pair cutoff at t = 0
    density              number density the networks were trained at (σ⁻³)
    b_fraction           B fraction of the training mixture
    programs: [ { "family": "botan" | "ntgnn", "temperature": T, "file": "programs/…",
                  "tasks": [ { "name", "time_index", "time" (τ), "output", "trained_temperatures",
                               "rows": [first, stop) (the ensemble rows of its replicas),
                               "replica_files", "node_offset", "node_scale", "edge_offset",
                               "edge_scale" (the output standardisation, σ) } ] } ]

Loading a program needs only torch.  The archive is written under a temporary name and renamed.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path

EXPORTED_FORMAT = "hpc_botan-exported-model-1"
METADATA_NAME = "metadata.json"


def program_name(family: str, temperature: float) -> str:
    """The archive member of one family's program at ``temperature``."""
    return f"programs/{family}_T{temperature:.3f}.pt2"


def write_exported_model(path: str | Path, metadata: dict[str, Any],
                         programs: dict[str, torch.export.ExportedProgram]) -> Path:
    """Write the archive: ``metadata`` (gets ``format``) and each program under its member name."""
    metadata = {"format": EXPORTED_FORMAT, **metadata}
    named = {p["file"] for p in metadata.get("programs", [])}
    if named != set(programs):
        raise ValueError(f"metadata names the programs {sorted(named)} but {sorted(programs)} were given")
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata, indent=1, sort_keys=True))
        for name, program in programs.items():
            buffer = io.BytesIO()
            torch.export.save(program, buffer)
            archive.writestr(name, buffer.getvalue())
    return Path(path)


@dataclass
class ExportedModelFile:
    """An opened archive: its metadata, and its programs loaded on first use."""

    path: Path
    metadata: dict[str, Any]

    def program(self, name: str) -> torch.nn.Module:
        """The callable module of the program ``name`` (``forward(x, edge_index, edge_attr)``)."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read(name)
            return torch.export.load(io.BytesIO(data)).module()
        except (KeyError, OSError, zipfile.BadZipFile, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"{self.path}: its program {name} cannot be loaded ({first})") from None


def is_exported_model(path: str | Path) -> bool:
    """Whether ``path`` is a file that looks like an exported-model archive (a zip with metadata.json)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return METADATA_NAME in archive.namelist()


def read_exported_model(path: str | Path) -> ExportedModelFile:
    """Open an archive, refusing anything that is not one of this format (one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such exported model file")
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA_NAME))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UserError(f"{path}: not an hpc_botan exported model ({type(exc).__name__}: {exc}); "
                        "make one with hpc-botan export RUN_DIR --out FILE") from None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORTED_FORMAT:
        got = metadata.get("format") if isinstance(metadata, dict) else None
        raise UserError(f"{path}: {METADATA_NAME} has format {got!r}, expected {EXPORTED_FORMAT!r}")
    for key in ("programs", "density", "b_fraction", "graph_cutoff"):
        if key not in metadata:
            raise UserError(f"{path}: {METADATA_NAME} has no '{key}'")
    return ExportedModelFile(path, metadata)
