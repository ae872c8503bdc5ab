"""The network of a run, from its configuration (``model.*`` and the training mode)."""
from __future__ import annotations

import numpy as np
import torch

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.registry import registered_model
from hpc_botan.physics.descriptors import DescriptorSettings


def descriptor_settings_of(cfg: Config) -> DescriptorSettings | None:
    """The descriptors of a run's descriptor heads (None with ``model.descriptors: none``): the
    baselines' settings, cut down where the run's cubic box (N / density) is too small for them."""
    if cfg.model.descriptors == "none":
        return None
    edge = (cfg.simulation.n_particles / cfg.simulation.density) ** (1.0 / 3.0)
    try:
        return DescriptorSettings().fitted_to(np.full(3, edge))
    except ValueError as exc:
        raise UserError(f"model.descriptors: heads: {exc} (box edge {edge:.3g} σ)") from None


def architecture_of(cfg: Config, n_outputs: int = 1) -> BotanArchitecture:
    """The network of a run; ``n_outputs`` = the time points one network predicts."""
    m = cfg.model
    settings = descriptor_settings_of(cfg)
    heads = {} if settings is None else {"descriptor_shells": settings.shell_centres,
                                         "descriptor_shell_width": settings.shell_width,
                                         "descriptor_lengths": settings.lengths,
                                         "force_features": cfg.simulation.potential if m.force_features else ""}
    return BotanArchitecture(width=m.width, n_steps=m.n_steps, shared_weights=m.shared_weights,
                             separate_decoders=m.separate_decoders, n_outputs=n_outputs,
                             temperature_input=cfg.train.temperatures == "joint", **heads)


def build_model(cfg: Config, device: torch.device, n_outputs: int = 1, model: str = "botan") -> Botan:
    """A freshly initialised network of the run on ``device`` (``n_outputs`` time points), of the
    registered model family ``model`` (:mod:`hpc_botan.model.registry`)."""
    # bf16 autocast and torch.compile need the plain autograd ops (the fused step is fp32 by hand)
    fused = cfg.train.precision == "fp32" and not cfg.train.compile
    return registered_model(model).build(architecture_of(cfg, n_outputs), fused).to(device)
