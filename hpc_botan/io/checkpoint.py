"""Training checkpoints: everything needed to continue a replica bit-for-bit.

A checkpoint holds the model and optimiser state, the position in training (epoch, step within
the epoch, optimiser steps so far), every RNG state, the network architecture, and a hash of the
run's configuration.  It is written under a temporary name and renamed, so a checkpoint on disk
is always complete; loading refuses one from another architecture or configuration.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path

CHECKPOINT_FORMAT = "hpc_botan-checkpoint-1"


def config_hash(identity: dict[str, Any]) -> str:
    """A stable hash (hex, 16 characters) of a configuration's identity mapping."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rng_states() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # numpy's key array is stored as a tensor so that the file loads with weights_only=True
    states = {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos,
                                                          has_gauss, cached), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    architecture: dict[str, Any], cfg_hash: str, position: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically.  ``position``: epoch, step (next step in the epoch), global_step."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture,
        "config_hash": cfg_hash,
        "position": position,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng": rng_states(),
        "extra": extra or {},
    }
    # serialised in memory, then written as plain bytes: a full disk is then an OSError with its
    # errno (ENOSPC, EFBIG), where torch's own file writer reports only "iostream error"
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _brief(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"[{value[0]}, {value[1]}, …, {value[-1]}] ({len(value)} values)"
    return repr(value)


def architecture_difference(found: dict[str, Any], expected: dict[str, Any]) -> str:
    """The keys in which two architecture dicts differ, as ``key: FOUND in the file, EXPECTED here; …``
    (long lists shortened), for one-line errors."""
    keys = [k for k in dict.fromkeys([*found, *expected]) if found.get(k) != expected.get(k)]
    return "; ".join(f"{k}: {_brief(found.get(k))} in the file, {_brief(expected.get(k))} here" for k in keys)


def load_checkpoint(path: str | Path, *, architecture: dict[str, Any] | None = None,
                    cfg_hash: str | None = None) -> dict[str, Any]:
    """Read a checkpoint, refusing another format, architecture or configuration (one-line errors)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no checkpoint") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable hpc_botan checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not an hpc_botan checkpoint (format {state.get('format') if isinstance(state, dict) else None!r})")
    check_checkpoint(state, path, architecture=architecture, cfg_hash=cfg_hash)
    return state


def check_checkpoint(state: dict[str, Any], path: str | Path, *, architecture: dict[str, Any] | None = None,
                     cfg_hash: str | None = None) -> None:
    """Refuse a checkpoint read by :func:`load_checkpoint` that holds another architecture or configuration."""
    if architecture is not None and state["architecture"] != architecture:
        raise UserError(f"{path}: checkpoint of another architecture "
                        f"({architecture_difference(state['architecture'], architecture)})")
    if cfg_hash is not None and state["config_hash"] != cfg_hash:
        raise UserError(f"{path}: checkpoint of another configuration (hash {state['config_hash']}, this run "
                        f"{cfg_hash}); use a new run directory")
