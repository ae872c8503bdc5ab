"""Reference weight files installed as the finished replicas of a run's pretraining task."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.model.botan import BotanArchitecture
from hpc_botan.model.reference_weights import accepts_reference_weights, in_architecture, load_reference_weights
from hpc_botan.plan.targets import index_path, temperatures_and_times
from hpc_botan.plan.tasks import training_tasks
from hpc_botan.train.installed import install_replica
from hpc_botan.train.trainer import architecture_of


def import_reference_replicas(run_dir: str | Path, weight_files: list[str | Path]) -> list[Path]:
    """Write ``train/<pretrain task>/replica-XX/final.pt`` for each weight file; returns the paths.

    Existing replicas are never overwritten.  The run's model section must describe the
    reference architecture (with ``model.separate_decoders`` true, both decoders start as copies of
    the reference's one: the same function; with model.descriptors: heads, the heads start at zero), and
    train.pretrain.enabled must be true.
    """
    cfg = load_run_config(run_dir)
    arch = architecture_of(cfg)
    if not accepts_reference_weights(arch):
        raise UserError(f"{RunLayout(run_dir).config}: model section {asdict(arch)} is not the reference "
                        f"architecture {asdict(BotanArchitecture())}")
    tasks = training_tasks(cfg, temperatures_and_times(index_path(run_dir)), ("botan",))
    if not tasks or tasks[0].role != "pretrain":
        raise UserError(f"{RunLayout(run_dir).config}: train.pretrain.enabled is false; nothing to import into")
    task = tasks[0]
    # every file read and every target checked before anything is written
    models = [in_architecture(load_reference_weights(p), arch) for p in weight_files]
    targets = [task.replica(run_dir, replica).final for replica in range(len(weight_files))]
    for target, path in zip(targets, weight_files):
        if target.exists():
            raise UserError(f"{target}: exists; not overwritten (remove it to import {path} in its place)")
    return [install_replica(target, model, cfg, task, replica, str(Path(path).resolve()))
            for replica, (target, path, model) in enumerate(zip(targets, weight_files, models))]
