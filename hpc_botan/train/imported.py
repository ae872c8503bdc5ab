"""Reference weight files installed as the finished replicas of a run's pretraining task."""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from hpc_botan.errors import UserError
from hpc_botan.io.checkpoint import config_hash, save_checkpoint
from hpc_botan.io.rundir import load_run_config
from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.reference_weights import load_reference_weights
from hpc_botan.train.stage import index_path, temperatures_and_times, training_tasks
from hpc_botan.train.trainer import architecture_of


def import_reference_replicas(run_dir: str | Path, weight_files: list[str | Path]) -> list[Path]:
    """Write ``train/<pretrain task>/replica-XX/final.pt`` for each weight file; returns the paths.

    Existing replicas are never overwritten.  The run's model section must describe the
    reference architecture (with ``model.separate_decoders`` true, both decoders start as copies of
    the reference's one: the same function), and train.pretrain.enabled must be true.
    """
    cfg = load_run_config(run_dir)
    arch = architecture_of(cfg)
    if replace(arch, separate_decoders=False) != BotanArchitecture():
        raise UserError(f"{Path(run_dir) / 'config.yaml'}: model section {asdict(arch)} is not the reference "
                        f"architecture {asdict(BotanArchitecture())}")
    tasks = training_tasks(cfg, temperatures_and_times(index_path(run_dir)), ("botan",))
    if not tasks or "/pretrain/" not in tasks[0].name:
        raise UserError(f"{Path(run_dir) / 'config.yaml'}: train.pretrain.enabled is false; nothing to import into")
    task = tasks[0]
    # every file read and every target checked before anything is written
    models = [with_separate_decoders(load_reference_weights(p)) if arch.separate_decoders else load_reference_weights(p)
              for p in weight_files]
    targets = [task.replica_dir(run_dir, replica) / "final.pt" for replica in range(len(weight_files))]
    for target, path in zip(targets, weight_files):
        if target.exists():
            raise UserError(f"{target}: exists; not overwritten (remove it to import {path} in its place)")
    written = []
    for replica, (target, path, model) in enumerate(zip(targets, weight_files, models)):
        save_checkpoint(target, model=model, optimizer=None, architecture=arch.as_dict(),
                        cfg_hash=config_hash(cfg.identity()), position={"epoch": 0, "step": 0, "global_step": 0},
                        extra={"task": asdict(task), "replica": replica, "imported_from": str(Path(path).resolve())})
        written.append(target)
    return written


def with_separate_decoders(model: Botan) -> Botan:
    """The same network with its one shared decoder split into identical node and edge decoders."""
    split = Botan(replace(model.arch, separate_decoders=True), fused=model.fused)
    state = model.state_dict()
    state.update({key.replace("decoders.0.", "decoders.1.", 1): value.clone()
                  for key, value in state.items() if key.startswith("decoders.0.")})
    split.load_state_dict(state)
    return split
