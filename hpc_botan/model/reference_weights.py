"""Import of the reference implementation's (pyg_botan) state_dicts into :class:`Botan`.

The reference saves a plain ``state_dict`` with keys ``node_encoder.fc{1,2}``,
``edge_encoder.fc{1,2}``, ``network.edge_model.mlp.fc{1,2}``, ``network.node_model.mlp.fc{1,2}``
and ``decoder.fc{1,2,3}`` (``.weight`` / ``.bias``): shared step weights, one decoder, width 64,
one output.  Files are read with ``torch.load(weights_only=True)``: a weight file that holds
anything but tensors in plain containers is refused, not executed.
"""
from __future__ import annotations

from pathlib import Path

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
