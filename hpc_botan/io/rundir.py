"""A run directory is a run's identity: it holds the resolved configuration and every stage's files.

``config.yaml`` is written when a run directory is first used.  A later command with a
configuration that differs in anything but the ``launch`` section is refused, so that
files from two different experiments never mix.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from hpc_botan.config import Config, apply_overrides, config_from_dict, read_yaml_file, require_resolved_time_points
from hpc_botan.errors import UserError
from hpc_botan.io.durable import write_text_atomic

CONFIG_NAME = "config.yaml"
#: The pilot run that calibrates the time points (hpc_botan.calibrate): a run directory of its own,
#: written before the run's config.yaml exists (the run's time points are measured there).
PILOT_DIR = "pilot"
#: A pilot made with other settings is renamed ``pilot.superseded-N`` (N = 1, 2, …), never deleted.
SUPERSEDED_PILOT_PREFIX = PILOT_DIR + ".superseded-"


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The key path of the first difference between two nested mappings (with both values), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return sub
            found = first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    return None if a == b else f"{path} ({a!r} here, {b!r} in the run directory)"


def load_run_config(run_dir: str | Path) -> Config:
    """The configuration stored in ``run_dir/config.yaml``."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{path}: not found; is {run_dir} a run directory (made by 'hpc-botan simulate')?")
    cfg = config_from_dict(read_yaml_file(path), str(path))
    try:
        require_resolved_time_points(cfg, "a run directory")  # only hand-made ones can hold 'calibrated'
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return cfg


def check_writable_run_dir(run_dir: str | Path) -> None:
    """Refuse, before any work, an existing run directory that this user cannot write (one line).

    Every stage writes into its run directory (results, locks, logs): failing at the end of the
    work, or with a PermissionError traceback, helps nobody.
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not os.access(run_dir, os.W_OK | os.X_OK):
        raise UserError(f"{run_dir}: not writable by this user (read-only or someone else's run directory); "
                        "every stage writes there: copy it, or ask its owner")


def check_run_dir_path(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path if it is, or can become, a directory; else a one-line :class:`UserError`."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: is a file, not a directory; --out names the run directory to create or resume")
    blocking = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"{run_dir}: cannot be created, {blocking} is a file")
    return run_dir


def holds_only_pilots(run_dir: Path) -> bool:
    """Whether every entry of the existing directory ``run_dir`` is a calibration pilot (current or superseded)."""
    return all(p.name == PILOT_DIR or p.name.startswith(SUPERSEDED_PILOT_PREFIX) for p in run_dir.iterdir())


def set_pilot_aside(run_dir: Path) -> Path:
    """Rename ``run_dir/pilot`` to the first free ``run_dir/pilot.superseded-N``; return the new path.

    A rename within one directory is atomic: the old pilot is either where it was or whole under its
    new name, and nothing simulated is deleted.
    """
    n = 1
    while (target := run_dir / f"{SUPERSEDED_PILOT_PREFIX}{n}").exists():
        n += 1
    (run_dir / PILOT_DIR).rename(target)
    return target


def open_run_dir(run_dir: str | Path, cfg: Config) -> Path:
    """Create ``run_dir`` for ``cfg``, or check that an existing one belongs to ``cfg``.

    The ``launch`` section of the stored configuration is updated (a run may be resumed on
    another machine); any other difference raises :class:`UserError` naming the first key.
    ``cfg`` must have resolved time points (``calibrated`` ones are measured first, by
    :func:`hpc_botan.calibrate.stage.calibrate`); a directory holding only the pilot run of
    that calibration (and the pilots it superseded) counts as new.
    """
    require_resolved_time_points(cfg, "a run directory")
    run_dir = check_run_dir_path(run_dir)
    path = run_dir / CONFIG_NAME
    if path.exists():
        stored = load_run_config(run_dir)
        diff = first_difference(cfg.identity(), stored.identity())
        if diff:
            raise UserError(
                f"{path}: this run directory holds a different configuration (differs at {diff}); "
                "use another --out, or the same configuration to resume"
            )
    elif run_dir.exists() and not holds_only_pilots(run_dir):
        raise UserError(f"{run_dir}: exists, is not empty and has no {CONFIG_NAME}; refusing to write into it")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, cfg.to_yaml())
    return run_dir


def run_config_with_overrides(run_dir: str | Path, overrides: list[str], sections: tuple[str, ...],
                              locked_by: str, check: Callable[[Config], None] | None = None) -> Config:
    """The stored configuration with ``--set`` overrides of ``sections`` applied and saved.

    Changing those sections is allowed only while nothing under ``run_dir`` matches the glob
    ``locked_by`` (no results that depend on them yet); afterwards an override that changes
    anything is refused.  ``check(cfg)`` (raising :class:`UserError`) validates the new
    configuration against the run's data before it is stored: a refused setting is never written.
    """
    run_dir = Path(run_dir)
    stored = load_run_config(run_dir)
    if not overrides:
        return stored
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key.split(".", 1)[0] not in sections:
            raise UserError(f"--set {item}: only {', '.join(s + '.*' for s in sections)} may be set here")
    cfg = config_from_dict(apply_overrides(stored.to_dict(), overrides), "--set")
    if cfg.identity() != stored.identity():
        if check is not None:
            check(cfg)
        evidence = next(run_dir.glob(locked_by), None)
        if evidence is not None:
            diff = first_difference(cfg.identity(), stored.identity())
            raise UserError(f"{evidence}: results exist for the stored configuration; --set changes {diff}; "
                            "use a new run directory")
        write_text_atomic(run_dir / CONFIG_NAME, cfg.to_yaml())
    return cfg
