"""The network of a run, from its configuration (``model.*`` and the training mode)."""
from __future__ import annotations

import torch

from hpc_botan.config import Config
from hpc_botan.model.botan import Botan, BotanArchitecture


def architecture_of(cfg: Config, n_outputs: int = 1) -> BotanArchitecture:
    """The network of a run; ``n_outputs`` = the time points one network predicts."""
    m = cfg.model
    return BotanArchitecture(width=m.width, n_steps=m.n_steps, shared_weights=m.shared_weights,
                             separate_decoders=m.separate_decoders, n_outputs=n_outputs,
                             temperature_input=cfg.train.temperatures == "joint")


def build_model(cfg: Config, device: torch.device, n_outputs: int = 1) -> Botan:
    """A freshly initialised network of the run on ``device`` (``n_outputs`` time points)."""
    # bf16 autocast and torch.compile need the plain autograd ops (the fused step is fp32 by hand)
    fused = cfg.train.precision == "fp32" and not cfg.train.compile
    return Botan(architecture_of(cfg, n_outputs), fused=fused).to(device)
