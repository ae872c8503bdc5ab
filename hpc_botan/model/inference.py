"""Predictions of a network on graphs: evaluation mode, no augmentation, numpy out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


@torch.no_grad()
def predict_graphs(model: torch.nn.Module, graphs: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """Predictions (node (N, K), edge (E, K)) float32 numpy for each graph (anything with ``x``,
    ``edge_index``, ``edge_attr``), in eval mode; the model's training mode is restored after."""
    was_training = model.training
    model.eval()
    out = [tuple(t.float().cpu().numpy() for t in model(g.x, g.edge_index, g.edge_attr)) for g in graphs]
    model.train(was_training)
    return out
