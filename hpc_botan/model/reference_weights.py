"""Import of the reference implementation's (pyg_botan) state_dicts into :class:`Botan`.

The reference saves a plain ``state_dict`` with keys ``node_encoder.fc{1,2}``,
``edge_encoder.fc{1,2}``, ``network.edge_model.mlp.fc{1,2}``, ``network.node_model.mlp.fc{1,2}``
and ``decoder.fc{1,2,3}`` (``.weight`` / ``.bias``): shared step weights, one decoder, width 64,
one output.  Files are read with ``torch.load(weights_only=True)``: a weight file that holds
anything but tensors in plain containers is refused, not executed.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hpc_botan.errors import UserError
from hpc_botan.model.botan import Botan, BotanArchitecture

# reference key prefix -> hpc_botan key prefix
REFERENCE_PREFIXES = {
    "node_encoder.": "node_encoder.",
    "edge_encoder.": "edge_encoder.",
    "network.edge_model.mlp.": "edge_updates.0.",
    "network.node_model.mlp.": "node_updates.0.",
    "decoder.": "decoders.0.",
}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state_dict (str → tensor) from ``path``, loaded safely onto the CPU."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such weight file") from None
    except Exception as exc:  # pickle errors, refused globals, truncated zip files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a plain PyTorch state_dict ({first})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise UserError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
    return dict(obj)


def convert_reference_state_dict(reference: dict[str, torch.Tensor], source: str = "<state_dict>"
                                 ) -> dict[str, torch.Tensor]:
    """Rename the reference's keys to :class:`Botan`'s; every key must be known and present."""
    converted = {}
    for key, value in reference.items():
        for old, new in REFERENCE_PREFIXES.items():
            if key.startswith(old):
                converted[new + key[len(old):]] = value.detach().to(torch.float32)
                break
        else:
            raise UserError(f"{source}: unexpected key {key!r} for a reference BOTAN state_dict")
    reference_model = Botan(BotanArchitecture())
    # the reference has no output standardisation: its outputs are σ as they come (identity map)
    for name, buffer in reference_model.named_buffers():
        converted[name] = buffer.clone()
    expected = set(reference_model.state_dict())
    missing = sorted(expected - set(converted))
    if missing:
        raise UserError(f"{source}: missing {len(missing)} reference weights, e.g. {missing[0]!r}")
    shapes = reference_model.state_dict()
    for key, value in converted.items():
        if value.shape != shapes[key].shape:
            raise UserError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(shapes[key].shape)}")
    return converted


def load_reference_weights(path: str | Path, fused: bool = True) -> Botan:
    """A :class:`Botan` with the reference architecture and the weights of ``path``."""
    model = Botan(BotanArchitecture(), fused=fused)
    model.load_state_dict(convert_reference_state_dict(read_state_dict(path), str(path)))
    return model


def in_architecture(model: Botan, arch: BotanArchitecture) -> Botan:
    """A reference network as a network of ``arch`` that computes the same function: where ``arch`` has
    separate decoders both start as copies of the shared one, descriptor heads start at zero, and where
    ``arch`` reads (type, T) per node (``temperature_input``) the temperature's column of the node
    encoder's first layer starts at zero, so the network is the same at every temperature until trained."""
    out = Botan(arch, fused=model.fused)
    state = out.state_dict()   # the heads as built: zero, with identity standardisation
    for key, value in model.state_dict().items():
        state[key] = value.clone()
        if arch.separate_decoders and not model.arch.separate_decoders and key.startswith("decoders.0."):
            state[key.replace("decoders.0.", "decoders.1.", 1)] = value.clone()
    if arch.temperature_input and not model.arch.temperature_input:
        type_column = model.state_dict()["node_encoder.fc1.weight"]          # (W, 1)
        state["node_encoder.fc1.weight"] = torch.cat([type_column, torch.zeros_like(type_column)], dim=1)
    out.load_state_dict(state)
    return out


def with_separate_decoders(model: Botan) -> Botan:
    """The same network with its one shared decoder split into identical node and edge decoders."""
    return in_architecture(model, replace(model.arch, separate_decoders=True))


def extends(arch: BotanArchitecture, base: BotanArchitecture) -> bool:
    """Whether :func:`in_architecture` turns a network of ``base`` into one of ``arch`` computing the same
    function: ``arch`` may add to ``base`` separate decoders, descriptor heads (with their force
    features) and a temperature input; every other field must agree, the number of output columns
    aside (a one-column decoder initialises every column of a multi-time task)."""
    added = replace(arch, n_outputs=base.n_outputs)
    if not base.separate_decoders:
        added = replace(added, separate_decoders=False)
    if not base.temperature_input:
        added = replace(added, temperature_input=False)
    if not base.descriptor_shells:
        added = replace(added, descriptor_shells=(), descriptor_lengths=(), force_features="",
                        descriptor_shell_width=base.descriptor_shell_width)
    return added == base


def accepts_reference_weights(arch: BotanArchitecture) -> bool:
    """Whether ``arch`` is the reference architecture up to what :func:`in_architecture` adds (separate
    decoders, descriptor heads, a temperature input, the number of output columns)."""
    return extends(arch, BotanArchitecture())


#: The authors' eight pretrained networks, shipped with the package as numpy archives (no pickle):
#: the Apache-2.0 data of the reference implementation, see ``published_weights/NOTICE.md``.
PUBLISHED_DIR = Path(__file__).resolve().parent / "published_weights"
N_PUBLISHED = 8


def published_weights_file(k: int) -> Path:
    """The shipped archive of the authors' ``model{k}.pth`` (k = 1 … 8)."""
    if not 1 <= k <= N_PUBLISHED:
        raise ValueError(f"published weights are model1 … model{N_PUBLISHED}, not model{k}")
    return PUBLISHED_DIR / f"model{k}.npz"


def load_published_weights(k: int, fused: bool = True) -> Botan:
    """The authors' pretrained network ``model{k}`` (reference architecture, one output) from the archive
    shipped with the package; read with ``allow_pickle=False``, so the file can hold arrays only."""
    path = published_weights_file(k)
    try:
        with np.load(path, allow_pickle=False) as archive:
            reference = {key: torch.from_numpy(np.array(archive[key])) for key in archive.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: the published weights shipped with hpc_botan cannot be read ({exc}); "
                        "reinstall the package") from None
    model = Botan(BotanArchitecture(), fused=fused)
    model.load_state_dict(convert_reference_state_dict(reference, str(path)))
    return model
