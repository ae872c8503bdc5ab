"""Several trained networks evaluated on one graph as one module: the unit that is exported.

An ensemble holds M networks (the replicas of every trained time point of one model family at
one temperature) and, for each, the output column it answers for (a multi-time network has one
column per time point).  ``forward(x, edge_index, edge_attr)`` returns every network's prediction
of that column, stacked: node (M, N) and edge (M, E), in σ.  The temperature is part of the
module, so a network of every temperature (``temperature_input``) reads (type, T) per node.
Nothing here reads files: the networks come in built and loaded.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hpc_botan.model.botan import Botan, with_temperature


class Ensemble(nn.Module):
    """M networks, each read at one output column; ``forward -> (node (M, N), edge (M, E))``, σ."""

    def __init__(self, networks: Sequence[Botan], columns: Sequence[int], temperature: float):
        super().__init__()
        if len(networks) != len(columns) or not networks:
            raise ValueError(f"an ensemble needs one output column per network, got {len(networks)} networks "
                             f"and {len(columns)} columns")
        self.networks = nn.ModuleList(networks)
        self.columns = tuple(int(c) for c in columns)
        self.temperature = float(temperature)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, 1) float type (0 = A, 1 = B); edge_index (2, E) int64; edge_attr (E, 3) r_j − r_i, σ."""
        nodes, edges = [], []
        with_t = with_temperature(x, self.temperature)
        for network, column in zip(self.networks, self.columns):
            node, edge = network(with_t if network.arch.temperature_input else x, edge_index, edge_attr)
            nodes.append(node[:, column])
            edges.append(edge[:, column])
        return torch.stack(nodes), torch.stack(edges)
