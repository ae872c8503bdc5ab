"""Networks installed as finished replicas instead of trained: imported weight files (``import-weights``)
and the published networks shipped with the package (``train.pretrain.source: published``)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from hpc_botan.config import Config
from hpc_botan.io.checkpoint import config_hash, save_checkpoint
from hpc_botan.model.botan import Botan


def install_replica(target: Path, model: Botan, cfg: Config, task: Any, replica: int, origin: str) -> Path:
    """Write ``model`` as ``target`` (a replica's ``final.pt``) at epoch 0, with ``origin`` recorded as
    ``extra.imported_from`` (what the report names).  A checkpoint with that key fits any training
    settings: fine-tuning takes it whatever its own epochs or learning rate."""
    save_checkpoint(target, model=model, optimizer=None, architecture=model.arch.as_dict(),
                    cfg_hash=config_hash(cfg.identity()), position={"epoch": 0, "step": 0, "global_step": 0},
                    extra={"task": asdict(task), "replica": replica, "imported_from": origin})
    return target
