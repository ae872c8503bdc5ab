"""The models a run can train, declared once: the model families of ``hpc-botan train --model``.

Each entry names a family, the network it builds from an architecture, and how its tasks train:

    ======  ================================  ===========  ======================  ====================
    name    network                           edge loss    starts from             settings
    ======  ================================  ===========  ======================  ====================
    botan   :class:`~hpc_botan.model.botan.Botan`  1 − p   the pretraining task    train.* (p = node_weight)
    ntgnn   the same network                  none (p = 1)  random weights          train.ntgnn.*
    ======  ================================  ===========  ======================  ====================

NT-GNN is BOTAN's network trained without the edge loss (REFERENCE §3): the same module, another
entry.  Tasks record their family (``TrainingTask.model``, in every checkpoint's ``extra.task``),
predictions and exports name it, and tests/model/test_registered_models.py runs one suite over
every entry (signature, standardisation, cubic invariance, torch.export, Ensemble, checkpoint round
trip).  To add a model: a network module with ``forward(x, edge_index, edge_attr) -> (node (N, K),
edge (E, K))``, the ``arch`` attribute and output standardisation of :class:`Botan`, and an entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.model.botan import Botan, BotanArchitecture


@dataclass(frozen=True)
class TrainingSettings:
    """How one family's tasks train, from a run's configuration."""

    enabled: bool
    node_weight: float
    epochs: int
    batch_graphs: int
    learning_rate: float | None


@dataclass(frozen=True)
class RegisteredModel:
    """One model family."""

    name: str
    description: str
    #: Whether its edge output is trained (NT-GNN, p = 1, leaves it untrained: its E_ij are no predictions).
    learns_edges: bool
    #: Whether its tasks fine-tune the replicas of the BOTAN pretraining task (p = 0 on a short time point).
    starts_from_pretraining: bool
    #: The network of an architecture (``fused``: the hand-written edge update).
    build: Callable[[BotanArchitecture, bool], nn.Module]
    #: How its tasks train, from the run's configuration.
    training: Callable[[Config], TrainingSettings]


def _botan_training(cfg: Config) -> TrainingSettings:
    tr = cfg.train
    return TrainingSettings(True, tr.node_weight, tr.epochs, tr.batch_graphs, None)


def _ntgnn_training(cfg: Config) -> TrainingSettings:
    nt = cfg.train.ntgnn
    return TrainingSettings(nt.enabled, 1.0, nt.epochs, nt.batch_graphs, nt.learning_rate)


#: Every model family, in the order a run trains them.
MODELS: dict[str, RegisteredModel] = {m.name: m for m in (
    RegisteredModel("botan", "BOTAN: node and edge outputs, L = p·MSE(node) + (1 − p)·MSE(edge), fine-tuned from "
                             "the pretraining task", True, True, lambda arch, fused: Botan(arch, fused=fused),
                    _botan_training),
    RegisteredModel("ntgnn", "NT-GNN: the same network trained on the node target only (p = 1), from scratch",
                    False, False, lambda arch, fused: Botan(arch, fused=fused), _ntgnn_training),
)}


def registered_model(name: str) -> RegisteredModel:
    """The family ``name``; a one-line :class:`UserError` naming the registered ones otherwise."""
    if name not in MODELS:
        raise UserError(f"model {name!r}: not a registered model (hpc_botan.model.registry: {', '.join(MODELS)})")
    return MODELS[name]
