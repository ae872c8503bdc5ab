"""Several trained networks evaluated on one graph as one module: the unit that is exported.

An ensemble holds M networks (the replicas of every trained time point of one model family at
one temperature), each once.  ``forward(x, edge_index, edge_attr)`` returns every output column of
every network side by side: node (N, K) and edge (E, K) in σ, K = Σ n_outputs, network by network
(:func:`column_offsets` says where each begins); a multi-time network contributes one column per
time point.  The temperature is part of the module, so a network of every temperature
(``temperature_input``) reads (type, T) per node.  Nothing here reads files: the networks come in
built and loaded.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hpc_botan.model.botan import with_temperature


def column_offsets(networks: Sequence[nn.Module]) -> list[int]:
    """The first output column of each network in an :class:`Ensemble` of ``networks``."""
    offsets, total = [], 0
    for network in networks:
        offsets.append(total)
        total += network.arch.n_outputs
    return offsets


class Ensemble(nn.Module):
    """M networks side by side; ``forward -> (node (N, K), edge (E, K))``, σ, K = Σ n_outputs.  Any
    registered model's networks (:mod:`hpc_botan.model.registry`: an ``arch`` and Botan's forward)."""

    def __init__(self, networks: Sequence[nn.Module], temperature: float):
        super().__init__()
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        widths = {network.arch.n_descriptors for network in networks} - {0}
        if len(widths) > 1:
            raise ValueError(f"an ensemble's descriptor heads must read one descriptor set, got widths {widths}")
        self.networks = nn.ModuleList(networks)
        self.temperature = float(temperature)
        #: F, the descriptors per particle that ``forward`` takes (0: none)
        self.n_descriptors = widths.pop() if widths else 0

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, descriptors: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (N, 1) float type (0 = A, 1 = B); edge_index (2, E) int64; edge_attr (E, 3) r_j − r_i, σ;
        descriptors (N, F) (:mod:`hpc_botan.physics.descriptors`) when networks have descriptor heads."""
        nodes, edges = [], []
        with_t = with_temperature(x, self.temperature)
        for network in self.networks:
            extra = (descriptors,) if network.arch.n_descriptors else ()
            node, edge = network(with_t if network.arch.temperature_input else x, edge_index, edge_attr, *extra)
            nodes.append(node)
            edges.append(edge)
        return torch.cat(nodes, dim=1), torch.cat(edges, dim=1)
