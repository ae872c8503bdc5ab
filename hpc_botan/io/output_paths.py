"""Where a command may write a file the user names (``--out``): never over an input, a model or a run.

Pure path checks (the standard library and the run directory's names), so a command can refuse a bad
``--out`` before it imports torch.  The rules, for every output:

* it is not one of the command's inputs (the same file under any name, a symlink included);
* it is not inside a stage folder of any run directory (a directory with ``config.yaml``), nor
  one of a run directory's own files (``config.yaml``, the report, locks);
* an existing file is replaced only with ``overwrite``, and never if it is a model (an exported
  model file) unless the command writes models;
* its directory exists and is writable.

Temporaries that a killed writer left beside the output (``.NAME.*.tmp``, see
:func:`hpc_botan.io.durable.atomic_path`) are removed by :func:`remove_stale_outputs` when the
process that wrote them is gone.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Sequence

from hpc_botan.errors import UserError
from hpc_botan.io.durable import remove_dead_writers_temporaries
from hpc_botan.io.rundir import CONFIG_NAME as RUN_CONFIG
from hpc_botan.io.rundir import STAGE_FOLDERS


def csv_paths(out: Path) -> tuple[Path, Path]:
    """``FILE-stem_particles.csv`` and ``FILE-stem_pairs.csv`` beside ``out`` (``predict --csv``)."""
    return out.with_name(f"{out.stem}_particles.csv"), out.with_name(f"{out.stem}_pairs.csv")


def run_directory_of(path: Path) -> Path | None:
    """The nearest directory above ``path`` (resolved) that is a run directory, or None."""
    for parent in path.parents:
        if (parent / RUN_CONFIG).is_file():
            return parent
    return None


def check_output_paths(outputs: Sequence[str | os.PathLike], inputs: Sequence[str | os.PathLike],
                       overwrite: bool = False, writes_models: bool = False) -> None:
    """Refuse, before any work, an output that would destroy data or cannot be written.

    ``inputs`` are every file or directory the command reads (structures, the model);
    ``writes_models``: the command's output is an exported model, so ``overwrite`` may replace one.
    Raises :class:`UserError` naming the path.
    """
    resolved_inputs = [Path(p).resolve() for p in inputs]
    for out in map(Path, outputs):
        where = out.resolve()
        for given, resolved in zip(inputs, resolved_inputs):
            if where == resolved:
                raise UserError(f"{out}: is one of the inputs ({given}); choose another --out")
        run_dir = run_directory_of(where)
        if run_dir is not None:
            inside = where.relative_to(run_dir).parts[0]
            if inside in STAGE_FOLDERS:
                raise UserError(f"{out}: inside the '{inside}' folder of the run directory {run_dir}, which "
                                "holds that run's data; write it elsewhere")
            if where.parent == run_dir and (where.name == RUN_CONFIG or where.name.startswith(".")):
                raise UserError(f"{out}: a file of the run directory {run_dir} (its identity or a lock); "
                                "choose another --out")
        if where.is_dir():
            raise UserError(f"{out}: is a directory; --out needs a file name")
        if where.exists():
            if not overwrite:
                raise UserError(f"{out}: exists; not overwritten (use --overwrite to replace it)")
            if not writes_models and is_exported_model_file(where):
                raise UserError(f"{out}: is an exported model file; not replaced even with --overwrite "
                                "(choose another --out)")
        if not where.parent.is_dir():
            raise UserError(f"{out}: the directory {out.parent} does not exist")
        if not os.access(where.parent, os.W_OK):
            raise UserError(f"{out}: the directory {out.parent} is not writable")


def is_exported_model_file(path: Path) -> bool:
    """Whether ``path`` is a zip archive with the ``metadata.json`` of an exported model (any format
    version: at the top, or among the extra files of a PT2 archive).  Imports nothing heavy."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n == "metadata.json" or n.endswith("/extra/metadata.json")]
            if len(names) != 1 or archive.getinfo(names[0]).file_size > 10_000_000:   # metadata, not data
                return False
            meta = json.loads(archive.read(names[0]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RecursionError):
        return False
    return isinstance(meta, dict) and str(meta.get("format", "")).startswith("hpc_botan-exported-model")


def remove_stale_outputs(outputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Remove the temporaries (``.NAME.HOST-PID.*.tmp``) that killed writers of each output left."""
    return [tmp for out in outputs for tmp in remove_dead_writers_temporaries(out)]
