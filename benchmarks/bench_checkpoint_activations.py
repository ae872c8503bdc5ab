"""Training memory per edge and step time with and without ``train.checkpoint_activations`` (issue 27, item 3).

One training step of the default BOTAN network (width 64, 7 steps, fused edge update; loss on every node
and edge output) on configuration 1 of the shared sample tiled m³ times, each measurement in its own
process: the step is run ``--steps`` times after one warm-up, its median time is reported, and the
process's peak resident memory (VmHWM) divided by the number of edges (the issue's measure) and the
growth of the peak over the memory before the first step (the step's own memory), per edge.

    python benchmarks/bench_checkpoint_activations.py --tiles 1 2 --steps 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG1 = REPO.parent / "shared" / "data" / "pyg_botan_sample" / "train" / "isoconfig_N4096T0.44_1_tc07.npz"


def worker(tiles: int, checkpointed: bool, steps: int) -> dict:
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from benchmarks.common import peak_rss_mb
    from hpc_botan.model import Botan
    from hpc_botan.physics.neighbors import edge_vectors, neighbor_pairs
    from hpc_botan.physics.pbc import tile

    torch.set_num_threads(1)
    data = np.load(CONFIG1)
    box = np.full(3, (data["types"].shape[0] / 1.2) ** (1 / 3))
    positions, species, big = tile(data["initial_positions"] % box, data["types"], box, (tiles,) * 3)
    edges = neighbor_pairs(positions, big, 2.0)
    x = torch.from_numpy(species.astype(np.float32)).unsqueeze(1)
    edge_index = torch.from_numpy(edges)
    edge_attr = torch.from_numpy(edge_vectors(positions, edges, big).astype(np.float32))
    del positions, edges
    torch.manual_seed(0)
    model = Botan()
    model.checkpoint_activations = checkpointed
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
    before = peak_rss_mb()
    times = []
    for k in range(steps + 1):
        t0 = time.perf_counter()
        optimiser.zero_grad()
        node, edge = model(x, edge_index, edge_attr)
        (node.square().mean() + edge.square().mean()).backward()
        optimiser.step()
        if k:
            times.append(time.perf_counter() - t0)
    peak = peak_rss_mb()
    n_edges = edge_index.shape[1]
    return {"tiles": tiles, "n_particles": x.shape[0], "n_edges": n_edges, "checkpoint_activations": checkpointed,
            "step_s": statistics.median(times), "peak_mb": peak, "kb_per_edge": peak * 1e3 / n_edges,
            "step_kb_per_edge": (peak - before) * 1e3 / n_edges}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiles", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1] == "1", args.steps)))
        return
    for tiles in args.tiles:
        rows = {}
        for checkpointed in (False, True):
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--worker", str(tiles),
                                  str(int(checkpointed))], capture_output=True, text=True, check=True)
            rows[checkpointed] = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(rows[checkpointed]), flush=True)
        print(json.dumps({"tiles": tiles, "step_time_ratio": rows[True]["step_s"] / rows[False]["step_s"],
                          "memory_ratio": rows[True]["peak_mb"] / rows[False]["peak_mb"]}), flush=True)


if __name__ == "__main__":
    main()
