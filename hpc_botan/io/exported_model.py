"""The exported-model file (``hpc-botan export``): trained networks that need no training code.

One PT2 archive, PyTorch's own multi-program format (``torch.export.pt2_archive``; a stored zip
whose members lie in one top folder)::

    archive_format, archive_version, byteorder      PyTorch's archive markers ("pt2", "0", "little")
    models/<program>.json                           one torch.export program per model family and
    data/weights/<program>_weights_config.json      temperature, its weights as raw little-endian
    data/weights/weight_<k>                         bytes (described by the config: dtype, sizes)
    data/sample_inputs/<program>.pt                 written by torch, never read by hpc_botan
    extra/metadata.json                             what the programs are (schema below)

Each program is ``(x (N, 1), edge_index (2, E), edge_attr (E, 3)) -> (S (N, K), E (E, K))`` in σ, with
N and E dynamic: every network of that family and temperature once, with all its output columns
(a multi-time network has one per time point), side by side.  The first program is named
``model``, so that plain ``torch.export.load(file)`` returns it; ``load_pt2(file)`` returns them all.

``extra/metadata.json``::

    format               "hpc_botan-exported-model-3"
    hpc_botan_version, torch_version, source_run (the run directory's name)
    graph_cutoff         σ, the graph's pair cutoff at t = 0
    density              number density the networks were trained at (σ⁻³)
    b_fraction           B fraction of the training mixture
    time_points          {T: [t (τ), …]} the tasks were built from
    temperatures         [T, …] with trained tasks
    networks: [ { "program", "prefix": its weights' names in that program ("networks.<i>."),
                  "architecture": BotanArchitecture fields, "source": the replica's model file } ]
                         each replica once (a network of every temperature is in each of its
                         temperatures' programs; this names the first)
    tasks: [ { "name", "family": "botan" | "ntgnn", "temperature", "time_index", "time" (τ),
               "output" (the networks' column of this time point), "trained_temperatures",
               "networks": [k, …] (indices into ``networks``: the task's replicas),
               "replica_files" } ]
    programs: [ { "name", "family", "temperature", "n_columns" (K), "networks": [k, …] in column order,
                  "rows": [ { "task", "time_index", "columns": [c, …] } ] } ]
                         the output columns of each task's replicas in that program: what a user
                         of plain torch averages

Why hpc_botan does not load the programs: ``torch.export.load`` unpickles entries that ask for it
(``use_pickle``, custom objects, sample inputs) and evaluates symbolic-shape strings with sympy, so
loading a program someone else made can run their code.  :func:`read_exported_model` reads only
JSON and raw float32 bytes, checks every field, and refuses an archive whose programs ask for
pickling; each network is rebuilt from :mod:`hpc_botan.model` with the weights its program holds
(prediction from this file imports torch, not torch_geometric).
"""
from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Mapping

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.model.botan import BotanArchitecture
from hpc_botan.physics.ka import POTENTIALS

EXPORTED_FORMAT = "hpc_botan-exported-model-3"
#: the metadata's name among the archive's extra files, and its member below the top folder
METADATA_NAME = "metadata.json"
METADATA_MEMBER = "extra/" + METADATA_NAME
#: torch.export's serialised dtype of float32 (``torch._export.serde.schema.ScalarType.FLOAT``)
FLOAT32_SCALAR_TYPE = 7
#: what the first program is called: the one plain ``torch.export.load`` returns
DEFAULT_PROGRAM = "model"
#: The families an archive may hold.
FAMILIES = ("botan", "ntgnn")
#: Bounds of an architecture read from a file (far beyond any trained network; a crafted file
#: must not make the loader allocate gigabytes).
ARCHITECTURE_LIMITS = {"width": (1, 4096), "n_steps": (1, 256), "n_outputs": (1, 10_000)}
#: The descriptor heads' settings: (most entries, lowest, highest value), σ.
#: Architecture keys an export may leave out (added later; absent = the default, no such feature).
OPTIONAL_ARCHITECTURE_KEYS = {"force_features"}
DESCRIPTOR_LIMITS = {"descriptor_shells": (64, 0.0, 20.0), "descriptor_lengths": (16, 0.0, 20.0)}
#: Members of a PT2 archive that torch would unpickle (legacy weights and constants, custom and
#: opaque objects); a program holding one is refused.
_PICKLED_MEMBER = re.compile(r"^data/(weights|constants)/[^/]*\.pt$|^data/constants/(custom_obj|opaque_obj)")
_PAYLOAD_CONFIG = re.compile(r"^data/(weights|constants)/[^/]*_config\.json$")
_WEIGHT_FILE = re.compile(r"^weight_[0-9]+$")


def program_name(family: str, temperature: float, first: bool = False) -> str:
    """The name of one family's program at ``temperature`` (the first program is ``model``)."""
    return DEFAULT_PROGRAM if first else f"{family}_T{temperature:.3f}"


def weights_config_member(program: str) -> str:
    """The member (below the top folder) describing the weights of ``program``."""
    return f"data/weights/{program}_weights_config.json"


@dataclass
class ExportedModelFile:
    """An opened, checked archive: its metadata; weights are read on demand."""

    path: Path
    metadata: dict[str, Any]
    top: str   # the archive's top folder, "name/"

    def descriptor_settings(self):
        """The radial descriptors (:class:`~hpc_botan.physics.descriptors.DescriptorSettings`) that the
        networks' descriptor heads read, and that a fourth program input must hold; None without heads."""
        found = {BotanArchitecture(**net["architecture"]).descriptor_settings for net in self.metadata["networks"]}
        if len(found) > 1:
            raise UserError(f"{self.path}: networks with different descriptor settings; export each run on its own")
        return found.pop()

    def network_weights(self, index: int) -> dict[str, np.ndarray]:
        """The float32 arrays of network ``index`` (state-dict name → array), read as raw bytes."""
        net = self.metadata["networks"][index]
        where = f"the weights of networks[{index}] (program {net['program']})"
        try:
            with zipfile.ZipFile(self.path) as archive:
                config = json.loads(archive.read(self.top + weights_config_member(net["program"])))["config"]
                entries = {name[len(net["prefix"]):]: meta for name, meta in config.items()
                           if name.startswith(net["prefix"])}
                if not entries:
                    raise UserError(f"{self.path}: {where}: the program has no weights named {net['prefix']}…")
                return {name: _raw_float32(self.path, archive, self.top, name, meta, where)
                        for name, meta in entries.items()}
        except UserError:
            raise
        except (KeyError, OSError, ValueError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as exc:
            raise UserError(f"{self.path}: {where} cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None


def _raw_float32(path: Path, archive: zipfile.ZipFile, top: str, name: str, meta: Any, where: str) -> np.ndarray:
    """One weight of a program: contiguous float32 bytes, as its payload config describes them."""
    tensor = meta["tensor_meta"] if isinstance(meta, dict) else None
    if not isinstance(tensor, dict) or meta.get("use_pickle") is not False \
            or not _WEIGHT_FILE.match(str(meta.get("path_name"))):
        raise UserError(f"{path}: {where}: {name} is not stored as raw bytes; refused: loading it could run code")
    if tensor.get("dtype") != FLOAT32_SCALAR_TYPE:
        raise UserError(f"{path}: {where}: {name} has dtype code {tensor.get('dtype')!r}, expected float32 "
                        f"({FLOAT32_SCALAR_TYPE})")
    sizes = [d.get("as_int") if isinstance(d, dict) else None for d in tensor.get("sizes", [])]
    strides = [d.get("as_int") if isinstance(d, dict) else None for d in tensor.get("strides", [])]
    if not all(isinstance(n, int) and 0 <= n <= 1 << 24 for n in sizes) or len(sizes) > 4:
        raise UserError(f"{path}: {where}: {name} has sizes {sizes}, expected at most 4 dimensions")
    contiguous = [int(np.prod(sizes[k + 1:], dtype=np.int64)) for k in range(len(sizes))]
    if strides != contiguous or tensor.get("storage_offset") != {"as_int": 0}:
        raise UserError(f"{path}: {where}: {name} is not a contiguous array (strides {strides})")
    data = archive.read(top + "data/weights/" + meta["path_name"])
    expected = 4 * int(np.prod(sizes, dtype=np.int64))
    if len(data) != expected:
        raise UserError(f"{path}: {where}: {name} has {len(data)} bytes, expected {expected} for sizes {sizes}")
    return np.frombuffer(data, dtype="<f4").reshape(sizes).copy()


def read_exported_model(path: str | Path) -> ExportedModelFile:
    """Open an archive, refusing anything that is not a well-formed one of this format (one-line errors).

    Every field that prediction reads is checked here (type, range, cross-references), and every
    program is checked to ask for no unpickling; nothing in the archive is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such exported model file")
    try:
        with zipfile.ZipFile(path) as archive:
            top, members = _archive_members(path, archive)
            metadata = json.loads(archive.read(top + METADATA_MEMBER))
            if not isinstance(metadata, dict) or metadata.get("format") != EXPORTED_FORMAT:
                got = metadata.get("format") if isinstance(metadata, dict) else None
                raise UserError(f"{path}: {METADATA_NAME} has format {got!r}, expected {EXPORTED_FORMAT!r}"
                                + ("; re-export it with this version: hpc-botan export RUN_DIR --out FILE"
                                   if isinstance(got, str) and got.startswith("hpc_botan-exported-model") else ""))
            _check_metadata(path, metadata, members)
            _check_asks_no_pickling(path, archive, top, members)
    except UserError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError, EOFError) as exc:
        raise UserError(f"{path}: not an hpc_botan exported model ({type(exc).__name__}: {_first_line(exc)}); "
                        "make one with hpc-botan export RUN_DIR --out FILE") from None
    return ExportedModelFile(path, metadata, top)


def _archive_members(path: Path, archive: zipfile.ZipFile) -> tuple[str, set[str]]:
    """The top folder ("name/") of a PT2 archive and its members' names below it; refuses other zips."""
    names = archive.namelist()
    tops = {PurePosixPath(name).parts[0] for name in names if name}
    if len(tops) != 1 or any("/" not in name for name in names):
        raise UserError(f"{path}: not a PT2 archive (its members do not lie in one folder); "
                        "make one with hpc-botan export RUN_DIR --out FILE")
    top = tops.pop() + "/"
    members = {name[len(top):] for name in names}
    if archive.read(top + "archive_format") != b"pt2":
        raise UserError(f"{path}: not a PT2 archive (archive_format is not 'pt2')")
    if "byteorder" in members and archive.read(top + "byteorder") != b"little":
        raise UserError(f"{path}: its weights are big-endian; re-export it on this machine")
    return top, members


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_asks_no_pickling(path: Path, archive: zipfile.ZipFile, top: str, members: set[str]) -> None:
    """Refuse an archive holding anything torch would unpickle when a user loads its programs."""
    for name in sorted(members):
        if _PICKLED_MEMBER.search(name):
            raise UserError(f"{path}: it holds a pickled object ({name}); refused: loading it could run code")
        if _PAYLOAD_CONFIG.search(name):
            config = json.loads(archive.read(top + name))
            entries = config.get("config", {}) if isinstance(config, dict) else None
            if not isinstance(entries, dict):
                raise UserError(f"{path}: {name} is not a payload config")
            for key, entry in entries.items():
                if not isinstance(entry, dict) or entry.get("use_pickle", False) is not False:
                    raise UserError(f"{path}: {name} asks to unpickle {key}; refused: loading it could run code")


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


def _indices(path: Path, obj: Mapping, key: str, where: str, n: int, what: str) -> list[int]:
    values = _list(path, obj, key, where)
    for i in values:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise _fail(path, f"{where}.{key}", f"indices into {what} (0 … {n - 1})", i)
    return values


def _check_architecture(path: Path, arch: Any, where: str) -> None:
    arch = _dict(path, arch, where)
    names = {f.name: f.type for f in fields(BotanArchitecture)}
    if not set(names) - OPTIONAL_ARCHITECTURE_KEYS <= set(arch) <= set(names):
        raise _fail(path, where, f"the keys {sorted(names)}", sorted(arch))
    for key, value in arch.items():
        if key == "force_features":
            if value not in POTENTIALS:
                raise _fail(path, f"{where}.{key}", f"one of {', '.join(POTENTIALS)} (or absent)", value)
            if not arch["descriptor_shells"]:
                raise _fail(path, f"{where}.{key}", "absent: force features need descriptor heads", value)
        elif key in ARCHITECTURE_LIMITS:
            _integer(path, arch, key, where, *ARCHITECTURE_LIMITS[key])
        elif key in DESCRIPTOR_LIMITS:
            most, low, high = DESCRIPTOR_LIMITS[key]
            if not isinstance(value, list) or len(value) > most or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high
                    for v in value):
                raise _fail(path, f"{where}.{key}", f"a list of at most {most} numbers in [{low}, {high}] (σ)", value)
        elif key == "descriptor_shell_width":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 5:
                raise _fail(path, f"{where}.{key}", "a number in (0, 5] (σ)", value)
        elif not isinstance(value, bool):
            raise _fail(path, f"{where}.{key}", "true or false", value)
    if bool(arch["descriptor_shells"]) != bool(arch["descriptor_lengths"]):
        raise _fail(path, f"{where}.descriptor_lengths", "lengths exactly when there are shells",
                    arch["descriptor_lengths"])


def _check_metadata(path: Path, meta: dict, members: set[str]) -> None:
    _number(path, meta, "graph_cutoff", "metadata", lambda v: v > 0, "a positive number (σ)")
    _number(path, meta, "density", "metadata", lambda v: v > 0, "a positive number (σ⁻³)")
    _number(path, meta, "b_fraction", "metadata", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    programs = _list(path, meta, "programs", "metadata")
    names = []
    for k, program in enumerate(programs):
        where = f"programs[{k}]"
        program = _dict(path, program, where)
        name = _get(path, program, "name", where)
        if not isinstance(name, str) or f"models/{name}.json" not in members \
                or weights_config_member(name) not in members:
            raise _fail(path, f"{where}.name", "a program of the archive (models/NAME.json and its weights)", name)
        names.append(name)
    networks = _list(path, meta, "networks", "metadata")
    for k, net in enumerate(networks):
        where = f"networks[{k}]"
        net = _dict(path, net, where)
        if _get(path, net, "program", where) not in names:
            raise _fail(path, f"{where}.program", f"one of the programs {names}", net["program"])
        prefix = _get(path, net, "prefix", where)
        if not isinstance(prefix, str) or not re.fullmatch(r"networks\.[0-9]+\.", prefix):
            raise _fail(path, f"{where}.prefix", "networks.<i>.", prefix)
        _check_architecture(path, _get(path, net, "architecture", where), f"{where}.architecture")
    for k, program in enumerate(programs):
        _indices(path, program, "networks", f"programs[{k}]", len(networks), "networks")
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
        indices = _indices(path, task, "networks", where, len(networks), "networks")
        files = _list(path, task, "replica_files", where)
        if len(files) != len(indices) or not all(isinstance(f, str) for f in files):
            raise _fail(path, f"{where}.replica_files", f"{len(indices)} file names, one per network", files)
        for i in indices:
            n_outputs = networks[i]["architecture"]["n_outputs"]
            if output >= n_outputs:
                raise _fail(path, f"{where}.output", f"a column of network {i} (it has {n_outputs})", output)
