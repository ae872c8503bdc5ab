"""The exported-model file (``hpc-botan export``): trained networks that need no training code.

A zip archive (stored, not compressed) holding

    metadata.json                what the networks are (schema below)
    networks/<k>.npz             the weights of network k: one float32 array per state-dict entry
                                 (numpy's npz, read with ``allow_pickle=False``: data only)
    programs/<family>_T<T>.pt2   one ``torch.export`` program per model family and temperature, for
                                 users of plain torch (``torch.export.load``); hpc_botan never loads them

``metadata.json``::

    format               "hpc_botan-exported-model-2"
    hpc_botan_version, torch_version, source_run (the run directory it was exported from)
    graph_cutoff         σ, the graph's pair cutoff at t = 0
    density              number density the networks were trained at (σ⁻³)
    b_fraction           B fraction of the training mixture
    time_points          {T: [t (τ), …]} the tasks were built from
    temperatures         [T, …] with trained tasks
    networks: [ { "file": "networks/…", "architecture": BotanArchitecture fields,
                  "source": the replica's model file in the run directory } ]
                         each replica once, with every output column it has (a multi-time
                         network predicts every time point)
    tasks: [ { "name", "family": "botan" | "ntgnn", "temperature", "time_index", "time" (τ),
               "output" (the networks' column of this time point), "trained_temperatures",
               "networks": [k, …] (indices into ``networks``: the task's replicas),
               "replica_files" } ]
    programs: [ { "family", "temperature", "file",
                  "rows": [ { "task", "time_index", "first", "stop" } ] } ]
                         the ensemble rows of each task in that program's output (M, N) / (M, E)

Why the weights are not read from the programs: ``torch.export.load`` unpickles entries that ask for
it (``use_pickle``, legacy ``.pt`` members, custom objects, sample inputs with a ``weights_only=False``
fallback) and evaluates symbolic-shape strings with sympy, so loading a program someone else made can
run their code.  :func:`read_exported_model` reads only JSON and raw arrays, checks every field, and
refuses an archive whose programs ask for pickling.  The archive is written under a temporary name
and renamed.
"""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path
from hpc_botan.model.botan import BotanArchitecture

EXPORTED_FORMAT = "hpc_botan-exported-model-2"
METADATA_NAME = "metadata.json"
#: The families an archive may hold.
FAMILIES = ("botan", "ntgnn")
#: Bounds of an architecture read from a file (far beyond any trained network; a crafted file
#: must not make the loader allocate gigabytes).
ARCHITECTURE_LIMITS = {"width": (1, 4096), "n_steps": (1, 256), "n_outputs": (1, 10_000)}
#: Members of a torch PT2 archive that torch would unpickle (legacy weights and constants, custom
#: and opaque objects); a program holding one is refused.
_PICKLED_MEMBER = re.compile(r"(^|/)data/(weights|constants)/[^/]*\.pt$|(^|/)data/constants/(custom_obj|opaque_obj)")
_PAYLOAD_CONFIG = re.compile(r"(^|/)data/(weights|constants)/[^/]*_config\.json$")


def program_name(family: str, temperature: float) -> str:
    """The archive member of one family's program at ``temperature``."""
    return f"programs/{family}_T{temperature:.3f}.pt2"


def network_name(index: int) -> str:
    """The archive member of network ``index``'s weights."""
    return f"networks/{index:04d}.npz"


def write_exported_model(path: str | Path, metadata: dict[str, Any], weights: Mapping[str, Mapping[str, np.ndarray]],
                         programs: Mapping[str, bytes]) -> Path:
    """Write the archive: ``metadata`` (gets ``format``), each network's ``weights`` (member → state
    dict of arrays) and each program's bytes (member → ``torch.export.save`` output)."""
    metadata = {"format": EXPORTED_FORMAT, **metadata}
    if {n["file"] for n in metadata.get("networks", [])} != set(weights):
        raise ValueError("metadata's networks and the weights given differ")
    if {p["file"] for p in metadata.get("programs", [])} != set(programs):
        raise ValueError("metadata's programs and the programs given differ")
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata, indent=1, sort_keys=True))
        for name, state in weights.items():
            buffer = io.BytesIO()
            np.savez(buffer, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()})
            archive.writestr(name, buffer.getvalue())
        for name, data in programs.items():
            archive.writestr(name, data)
    return Path(path)


@dataclass
class ExportedModelFile:
    """An opened, checked archive: its metadata; weights are read on demand."""

    path: Path
    metadata: dict[str, Any]

    def network_weights(self, index: int) -> dict[str, np.ndarray]:
        """The float32 arrays of network ``index`` (state-dict name → array), read without pickle."""
        member = self.metadata["networks"][index]["file"]
        try:
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read(member)
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"{self.path}: the weights {member} cannot be read ({_first_line(exc)})") from None
        for key, value in arrays.items():
            if value.dtype != np.float32:
                raise UserError(f"{self.path}: {member}: {key} has dtype {value.dtype}, expected float32")
        return arrays


def read_exported_model(path: str | Path) -> ExportedModelFile:
    """Open an archive, refusing anything that is not a well-formed one of this format (one-line errors).

    Every field that prediction reads is checked here (type, range, cross-references), and every
    program member is checked to ask for no unpickling; nothing in the archive is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such exported model file")
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            metadata = json.loads(archive.read(METADATA_NAME))
            if not isinstance(metadata, dict) or metadata.get("format") != EXPORTED_FORMAT:
                got = metadata.get("format") if isinstance(metadata, dict) else None
                raise UserError(f"{path}: {METADATA_NAME} has format {got!r}, expected {EXPORTED_FORMAT!r}"
                                + ("; re-export it with this version: hpc-botan export RUN_DIR --out FILE"
                                   if isinstance(got, str) and got.startswith("hpc_botan-exported-model") else ""))
            _check_metadata(path, metadata, members)
            for program in metadata["programs"]:
                _check_program_asks_no_pickling(path, program["file"], archive.read(program["file"]))
    except UserError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError, EOFError) as exc:
        raise UserError(f"{path}: not an hpc_botan exported model ({type(exc).__name__}: {_first_line(exc)}); "
                        "make one with hpc-botan export RUN_DIR --out FILE") from None
    return ExportedModelFile(path, metadata)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_program_asks_no_pickling(path: Path, member: str, data: bytes) -> None:
    """Refuse a ``torch.export`` program (a PT2 zip) that holds anything torch would unpickle."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as program:
            for name in program.namelist():
                if _PICKLED_MEMBER.search(name):
                    raise UserError(f"{path}: its program {member} holds a pickled object ({name}); "
                                    "refused: loading it could run code")
                if _PAYLOAD_CONFIG.search(name):
                    config = json.loads(program.read(name))
                    entries = config.get("config", {}) if isinstance(config, dict) else {}
                    if not isinstance(entries, dict):
                        raise UserError(f"{path}: its program {member}: {name} is not a payload config")
                    for key, entry in entries.items():
                        if not isinstance(entry, dict) or entry.get("use_pickle", False) is not False:
                            raise UserError(f"{path}: its program {member} asks to unpickle {key} ({name}); "
                                            "refused: loading it could run code")
    except zipfile.BadZipFile:
        raise UserError(f"{path}: its program {member} is not a PT2 archive (a zip file)") from None


# ---------------------------------------------------------------------------------------------
# metadata checks: each raises UserError naming the file and the key


def _fail(path: Path, where: str, expected: str, got: Any) -> UserError:
    text = repr(got)
    return UserError(f"{path}: {METADATA_NAME}: {where}: expected {expected}, got "
                     f"{text if len(text) < 60 else text[:57] + '...'}")


def _get(path: Path, obj: Mapping, key: str, where: str) -> Any:
    if key not in obj:
        raise UserError(f"{path}: {METADATA_NAME}: {where} has no '{key}'")
    return obj[key]


def _number(path: Path, obj: Mapping, key: str, where: str, ok: Callable[[float], bool] = lambda v: True,
            expected: str = "a finite number") -> float:
    value = _get(path, obj, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise _fail(path, f"{where}.{key}", expected, value)
    return float(value)


def _integer(path: Path, obj: Mapping, key: str, where: str, low: int, high: int) -> int:
    value = _get(path, obj, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(path, f"{where}.{key}", f"an integer in [{low}, {high}]", value)
    return value


def _list(path: Path, obj: Mapping, key: str, where: str, nonempty: bool = True) -> list:
    value = _get(path, obj, key, where)
    if not isinstance(value, list) or (nonempty and not value):
        raise _fail(path, f"{where}.{key}", "a non-empty list" if nonempty else "a list", value)
    return value


def _dict(path: Path, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(path, where, "an object", value)
    return value


def _member(path: Path, obj: Mapping, key: str, where: str, members: set[str], prefix: str) -> str:
    value = _get(path, obj, key, where)
    if not isinstance(value, str) or not value.startswith(prefix) or value not in members:
        raise _fail(path, f"{where}.{key}", f"a member {prefix}… of the archive", value)
    return value


def _check_architecture(path: Path, arch: Any, where: str) -> None:
    arch = _dict(path, arch, where)
    names = {f.name: f.type for f in fields(BotanArchitecture)}
    if set(arch) != set(names):
        raise _fail(path, where, f"the keys {sorted(names)}", sorted(arch))
    for key, value in arch.items():
        if key in ARCHITECTURE_LIMITS:
            _integer(path, arch, key, where, *ARCHITECTURE_LIMITS[key])
        elif not isinstance(value, bool):
            raise _fail(path, f"{where}.{key}", "true or false", value)


def _check_metadata(path: Path, meta: dict, members: set[str]) -> None:
    _number(path, meta, "graph_cutoff", "metadata", lambda v: v > 0, "a positive number (σ)")
    _number(path, meta, "density", "metadata", lambda v: v > 0, "a positive number (σ⁻³)")
    _number(path, meta, "b_fraction", "metadata", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    networks = _list(path, meta, "networks", "metadata")
    for k, net in enumerate(networks):
        where = f"networks[{k}]"
        net = _dict(path, net, where)
        _member(path, net, "file", where, members, "networks/")
        _check_architecture(path, _get(path, net, "architecture", where), f"{where}.architecture")
    tasks = _list(path, meta, "tasks", "metadata")
    for k, task in enumerate(tasks):
        where = f"tasks[{k}]"
        task = _dict(path, task, where)
        name = _get(path, task, "name", where)
        if not isinstance(name, str) or not name:
            raise _fail(path, f"{where}.name", "a task name", name)
        family = _get(path, task, "family", where)
        if family not in FAMILIES:
            raise _fail(path, f"{where}.family", " or ".join(FAMILIES), family)
        _number(path, task, "temperature", where, lambda v: v > 0, "a positive temperature")
        _number(path, task, "time", where, lambda v: v >= 0, "a time ≥ 0 (τ)")
        _integer(path, task, "time_index", where, 0, 10_000)
        output = _integer(path, task, "output", where, 0, ARCHITECTURE_LIMITS["n_outputs"][1] - 1)
        for t in _list(path, task, "trained_temperatures", where):
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise _fail(path, f"{where}.trained_temperatures", "a list of temperatures", t)
        indices = _list(path, task, "networks", where)
        files = _list(path, task, "replica_files", where)
        if len(files) != len(indices) or not all(isinstance(f, str) for f in files):
            raise _fail(path, f"{where}.replica_files", f"{len(indices)} file names, one per network", files)
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(networks):
                raise _fail(path, f"{where}.networks", f"indices into networks (0 … {len(networks) - 1})", i)
            n_outputs = networks[i]["architecture"]["n_outputs"]
            if output >= n_outputs:
                raise _fail(path, f"{where}.output", f"a column of network {i} (it has {n_outputs})", output)
    for k, program in enumerate(_list(path, meta, "programs", "metadata", nonempty=False)):
        where = f"programs[{k}]"
        program = _dict(path, program, where)
        _member(path, program, "file", where, members, "programs/")
