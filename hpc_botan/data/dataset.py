"""A PyTorch Geometric dataset over ``targets/index.h5``: one full graph per configuration.

    from hpc_botan.data.dataset import TargetsDataset
    train = TargetsDataset("runs/quick/targets/index.h5", split="train", time_indices=[-1])
    graph = train[0]   # torch_geometric.data.Data

Each item holds

    x          (N, 1) float32   particle type as a float (A = 0, B = 1)
    edge_index (2, E) int64     (source i, destination j), |r_ij(0)| < 2
    edge_attr  (E, 3) float32   r_j − r_i, minimum image, σ
    y_node     (N, T) float32   the node target (S_i unless ``node_target=``) at the chosen time points, σ
    y_edge     (E, T) float32   the edge target (E_ij) at the chosen time points, σ (zeros if
                                has_edge_targets is False)
    node_mask  (N,) bool        type A (evaluation)
    edge_mask  (E,) bool        A–A with |r_ij(0)| < 1.35 (evaluation)
    times      (1, T) float32   τ;  conf_id, temperature: scalars
    reliability_node, reliability_edge  (1, T) float32   split-half reliability of the two targets
                                (Spearman–Brown; NaN when unknown); the noise ceiling of ρ is its root
    descriptors (N, F) float32  radial descriptors, only with ``descriptors=`` (a file of
                                :mod:`hpc_botan.data.descriptors`): what descriptor heads read

The HDF5 index is opened lazily, once per process (checked by PID), so the dataset can be
handed to a ``DataLoader`` with worker processes and to several DDP ranks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.descriptor_file import read_descriptors
from hpc_botan.io.shards import IndexReader, read_complete_catalog
from hpc_botan.learned_targets import DEFAULT_EDGE_TARGET, DEFAULT_NODE_TARGET, learned_target


class TargetsDataset(torch.utils.data.Dataset):
    """Full graphs of the configurations in a targets index, optionally filtered."""

    def __init__(self, index_path: str | Path, *, time_indices: Sequence[int] = (-1,), split: str | None = None,
                 temperature: float | None = None, descriptors: str | Path | None = None,
                 node_target: str = DEFAULT_NODE_TARGET, edge_target: str = DEFAULT_EDGE_TARGET):
        self.index_path = Path(index_path)
        # learned targets (hpc_botan.learned_targets): what y_node and y_edge hold
        self.node_target = learned_target(node_target, "node", "train.node_target")
        self.edge_target = learned_target(edge_target, "edge", "train.edge_target")
        self.descriptors = None if descriptors is None else Path(descriptors)
        self.time_indices = list(time_indices)
        catalog = read_complete_catalog(self.index_path)
        keep = np.ones(len(catalog), dtype=bool)
        if split is not None:
            if split not in ("train", "test"):
                raise UserError(f"split: expected 'train' or 'test', got {split!r}")
            keep &= catalog["split"] == (0 if split == "train" else 1)
        if temperature is not None:
            keep &= np.isclose(catalog["temperature"], temperature)
        self.catalog = catalog[keep]
        self.reader = IndexReader(self.index_path)

    def __len__(self) -> int:
        return len(self.catalog)

    def __getitem__(self, k: int) -> Data:
        row = self.catalog[k]
        a = self.reader.training_arrays(int(row["id"]), self.time_indices, self.node_target, self.edge_target)

        def column(name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(a[name], dtype=np.float32)).unsqueeze(0)

        extra = {}
        if self.descriptors is not None:
            extra["descriptors"] = torch.from_numpy(read_descriptors(self.descriptors, int(row["id"])))
        return Data(
            x=torch.from_numpy(a["species"].astype(np.float32)).unsqueeze(1),
            edge_index=torch.from_numpy(a["edge_index"]),
            edge_attr=torch.from_numpy(a["edge_attr"]),
            y_node=torch.from_numpy(np.ascontiguousarray(a["y_node"].T)),
            y_edge=torch.from_numpy(np.ascontiguousarray(a["y_edge"].T)),
            node_mask=torch.from_numpy(a["node_mask"]),
            edge_mask=torch.from_numpy(a["edge_mask"]),
            times=column("times"),
            reliability_node=column("node_reliability"),
            reliability_edge=column("edge_reliability"),
            has_edge_targets=a["has_edges"],
            conf_id=int(row["id"]),
            temperature=float(row["temperature"]),
            **extra,
        )


def learned_targets_of(cfg: Config) -> dict[str, str]:
    """The ``node_target`` / ``edge_target`` arguments of :class:`TargetsDataset` for a run's training."""
    return {"node_target": cfg.train.node_target, "edge_target": cfg.train.edge_target}
