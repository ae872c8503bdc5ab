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
    the reference's one: the same function; with model.descriptors: heads, the heads start at zero), and
    train.pretrain.enabled must be true.
    """
    cfg = load_run_config(run_dir)
    arch = architecture_of(cfg)
    if replace(arch, separate_decoders=False, descriptor_shells=(), descriptor_lengths=()) != BotanArchitecture():
        raise UserError(f"{Path(run_dir) / 'config.yaml'}: model section {asdict(arch)} is not the reference "
                        f"architecture {asdict(BotanArchitecture())}")
    tasks = training_tasks(cfg, temperatures_and_times(index_path(run_dir)), ("botan",))
    if not tasks or "/pretrain/" not in tasks[0].name:
        raise UserError(f"{Path(run_dir) / 'config.yaml'}: train.pretrain.enabled is false; nothing to import into")
    task = tasks[0]
    # every file read and every target checked before anything is written
    models = [in_architecture(load_reference_weights(p), arch) for p in weight_files]
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
    return in_architecture(model, replace(model.arch, separate_decoders=True))


def in_architecture(model: Botan, arch: BotanArchitecture) -> Botan:
    """A reference network as a network of ``arch`` that computes the same function: where ``arch`` has
    separate decoders both start as copies of the shared one, and descriptor heads start at zero."""
    out = Botan(arch, fused=model.fused)
    state = out.state_dict()   # the heads as built: zero, with identity standardisation
    for key, value in model.state_dict().items():
        state[key] = value.clone()
        if arch.separate_decoders and not model.arch.separate_decoders and key.startswith("decoders.0."):
            state[key.replace("decoders.0.", "decoders.1.", 1)] = value.clone()
    out.load_state_dict(state)
    return out
