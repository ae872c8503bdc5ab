"""The ballistic limit as a one-variable model: ρ of S_i with |F_i|² and of E_ij with (F_j − F_i)·r̂_ij.

At short times the isoconfigurational average leaves the structure only in the instantaneous force
(hpc_botan/model/force_features.py), so the force alone is a model to measure the networks against.  For
each run directory given, on its test configurations (S_i on type A, E_ij on A–A pairs closer than
1.35 σ), at every time point: Pearson ρ per configuration, mean ± standard error over them.  Nothing is
fitted (ρ is invariant under the linear map a one-variable least-squares fit would add).

    python benchmarks/force_limit.py runs/quick
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import index_times
from hpc_botan.metrics import pearson
from hpc_botan.model.force_features import ForceFeatures


def force_correlations(run: Path) -> dict[float, dict[str, list[float]]]:
    """temperature → {"times": (T,), "S": (C, T), "E": (C, T)}: ρ of the force invariants per test configuration."""
    layer = ForceFeatures(load_run_config(run).simulation.potential)
    out = {}
    for temperature, times in index_times(run / "targets" / "index.h5").items():
        data = TargetsDataset(run / "targets" / "index.h5", split="test", temperature=temperature,
                              time_indices=list(range(len(times))))
        rows_s, rows_e = [], []
        for i in range(len(data)):
            g = data[i]
            with torch.no_grad():
                node, pair = layer(g.x[:, 0], g.edge_index, g.edge_attr)
            nodes, edges = g.node_mask.numpy(), g.edge_mask.numpy()
            rows_s.append([pearson(node[nodes, 1].numpy(), g.y_node[nodes, k].numpy()) for k in range(len(times))])
            rows_e.append([pearson(pair[edges, 0].numpy(), g.y_edge[edges, k].numpy()) for k in range(len(times))])
        out[temperature] = {"times": np.asarray(times), "S": np.array(rows_s), "E": np.array(rows_e)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="run directories with targets and a test split")
    args = p.parse_args()
    print("| run | T | t (τ) | ρ(S_i, \\|F_i\\|²) | ρ(E_ij, (F_j − F_i)·r̂_ij) |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        for temperature, r in force_correlations(run).items():
            n = r["S"].shape[0]
            for k, t in enumerate(r["times"]):
                cells = [f"{r[x][:, k].mean():.3f} ± {r[x][:, k].std(ddof=1) / np.sqrt(n):.3f}" if n > 1
                         else f"{r[x][:, k].mean():.3f}" for x in ("S", "E")]
                print(f"| {run.name} | {temperature:g} | {t:g} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
