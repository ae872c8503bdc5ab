"""Predictions of a network on graphs: evaluation mode, no augmentation, numpy out."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from hpc_botan.model.bounded_memory import run_network


def network_inputs(model: torch.nn.Module, graph) -> tuple[torch.Tensor, ...]:
    """``(x, edge_index, edge_attr[, descriptors])`` of ``graph``, as ``model`` (a Botan) takes them:
    with its descriptors (N, F) only where the network has descriptor heads."""
    inputs = (graph.x, graph.edge_index, graph.edge_attr)
    if not model.arch.n_descriptors:
        return inputs
    descriptors = getattr(graph, "descriptors", None)
    if descriptors is None:
        raise ValueError("a network with descriptor heads needs the graph's descriptors (N, F)")
    return (*inputs, descriptors)


@torch.no_grad()
def predict_graphs(model: torch.nn.Module, graphs: Sequence, chunk_edges: int | None = None, halo=None
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Predictions (node (N, K), edge (E, K)) float32 numpy for each graph (anything with ``x``,
    ``edge_index``, ``edge_attr`` and, for descriptor heads, ``descriptors``), in eval mode; the
    model's training mode is restored after.

    ``chunk_edges``: go over the edges that many at a time (bounded memory,
    :mod:`hpc_botan.model.bounded_memory`), with ``halo`` where the graphs are spatial domains; None:
    the whole-graph forward."""
    was_training = model.training
    model.eval()
    out = [tuple(t.float().cpu().numpy() for t in run_network(model, network_inputs(model, g), chunk_edges, halo))
           for g in graphs]
    model.train(was_training)
    return out
