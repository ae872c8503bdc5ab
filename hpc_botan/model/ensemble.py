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

from hpc_botan.model.botan import Botan, with_temperature


def column_offsets(networks: Sequence[Botan]) -> list[int]:
    """The first output column of each network in an :class:`Ensemble` of ``networks``."""
    offsets, total = [], 0
    for network in networks:
        offsets.append(total)
        total += network.arch.n_outputs
    return offsets


class Ensemble(nn.Module):
    """M networks side by side; ``forward -> (node (N, K), edge (E, K))``, σ, K = Σ n_outputs."""

    def __init__(self, networks: Sequence[Botan], temperature: float):
        super().__init__()
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        self.networks = nn.ModuleList(networks)
        self.temperature = float(temperature)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, 1) float type (0 = A, 1 = B); edge_index (2, E) int64; edge_attr (E, 3) r_j − r_i, σ."""
        nodes, edges = [], []
        with_t = with_temperature(x, self.temperature)
        for network in self.networks:
            node, edge = network(with_t if network.arch.temperature_input else x, edge_index, edge_attr)
            nodes.append(node)
            edges.append(edge)
        return torch.cat(nodes, dim=1), torch.cat(edges, dim=1)
