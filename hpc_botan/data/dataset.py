"""A PyTorch Geometric dataset over ``targets/index.h5``: one full graph per configuration.

    from hpc_botan.data.dataset import TargetsDataset
    train = TargetsDataset("runs/quick/targets/index.h5", split="train", time_indices=[-1])
    graph = train[0]   # torch_geometric.data.Data

Each item holds

    x          (N, 1) float32   particle type as a float (A = 0, B = 1)
    edge_index (2, E) int64     (source i, destination j), |r_ij(0)| < 2
    edge_attr  (E, 3) float32   r_j − r_i, minimum image, σ
    y_node     (N, T) float32   S_i at the chosen time points, σ
    y_edge     (E, T) float32   E_ij at the chosen time points, σ (zeros if has_edge_targets is False)
    node_mask  (N,) bool        type A (evaluation)
    edge_mask  (E,) bool        A–A with |r_ij(0)| < 1.35 (evaluation)
    times      (1, T) float32   τ;  conf_id, temperature: scalars
    reliability_node, reliability_edge  (1, T) float32   split-half reliability of S_i and E_ij
                                (Spearman–Brown; NaN when unknown); the noise ceiling of ρ is its root

The HDF5 index is opened lazily, once per process (checked by PID), so the dataset can be
handed to a ``DataLoader`` with worker processes and to several DDP ranks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch
from torch_geometric.data import Data

from hpc_botan.errors import UserError
from hpc_botan.targets.shards import INDEX_FORMAT, group_name, readable_targets


class TargetsDataset(torch.utils.data.Dataset):
    """Full graphs of the configurations in a targets index, optionally filtered."""

    def __init__(self, index_path: str | Path, *, time_indices: Sequence[int] = (-1,), split: str | None = None,
                 temperature: float | None = None):
        self.index_path = Path(index_path)
        self.time_indices = list(time_indices)
        try:
            with h5py.File(self.index_path, "r") as f:
                if f.attrs.get("format") != INDEX_FORMAT or f.attrs.get("complete") != 1:
                    raise UserError(f"{self.index_path}: not a complete hpc_botan targets index")
                catalog = f["catalog"][()]
        except OSError as exc:
            raise UserError(f"{self.index_path}: cannot open ({exc}); run 'hpc-botan targets' first") from None
        keep = np.ones(len(catalog), dtype=bool)
        if split is not None:
            if split not in ("train", "test"):
                raise UserError(f"split: expected 'train' or 'test', got {split!r}")
            keep &= catalog["split"] == (0 if split == "train" else 1)
        if temperature is not None:
            keep &= np.isclose(catalog["temperature"], temperature)
        self.catalog = catalog[keep]
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.catalog)

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.index_path, "r")  # a forked worker opens its own handle
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = state["_pid"] = None
        return state

    def __getitem__(self, k: int) -> Data:
        with readable_targets(self.index_path, f"configuration {int(self.catalog[k]['id'])}"):
            return self._read(k)

    def _read(self, k: int) -> Data:
        row = self.catalog[k]
        g = self._handle()["configurations"][group_name(int(row["id"]))]
        n_times = g["times"].shape[0]
        cols = [t if t >= 0 else n_times + t for t in self.time_indices]
        if any(not 0 <= c < n_times for c in cols):
            raise UserError(f"time_indices {self.time_indices}: this configuration has {n_times} time points")
        propensity = g["propensity"][()][cols]
        has_edges = "pair_change" in g  # data sets without trajectories have S_i only
        n_edges = g["edge_index"].shape[1]
        pair_change = g["pair_change"][()][cols] if has_edges else np.zeros((len(cols), n_edges), np.float32)

        def reliability(name: str) -> torch.Tensor:
            values = g[name][()][cols] if name in g else np.full(len(cols), np.nan)
            return torch.from_numpy(np.asarray(values, dtype=np.float32)).unsqueeze(0)

        return Data(
            x=torch.from_numpy(g["species"][()].astype(np.float32)).unsqueeze(1),
            edge_index=torch.from_numpy(g["edge_index"][()]),
            edge_attr=torch.from_numpy(g["edge_attr"][()]),
            y_node=torch.from_numpy(np.ascontiguousarray(propensity.T)),
            y_edge=torch.from_numpy(np.ascontiguousarray(pair_change.T)),
            node_mask=torch.from_numpy(g["node_mask"][()]),
            edge_mask=torch.from_numpy(g["edge_mask"][()]),
            times=torch.from_numpy(g["times"][()][cols].astype(np.float32)).unsqueeze(0),
            reliability_node=reliability("propensity_reliability"),
            reliability_edge=reliability("pair_change_reliability"),
            has_edge_targets=has_edges,
            conf_id=int(row["id"]),
            temperature=float(row["temperature"]),
        )
