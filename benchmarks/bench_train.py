"""Training-stage benchmarks (run by hand; results go to docs/benchmarks.md).

1. One training step (forward, backward, gradient clip 1.0, Adam) on configuration 1 of the
   shared sample (4096 particles, 166,484 edges, p = 0.4), from the same reference weights
   (model1.pth), same threads: the reference network written plainly here (concatenations,
   ``h[src]`` indexing, as the reference code) against hpc_botan's network in its settings
   (fp32 fused = the default; torch.compile; bf16 autocast).  Each variant runs in its own
   process: median step time over ``--steps`` steps after warm-up, and peak RSS (max resident
   memory of that process, torch itself included).  Prediction differences against fp32 are
   reported for every variant.
2. Data parallelism: one epoch of the shared sample's training graphs with ``hpc-botan train``,
   1 process (2 threads) against torchrun with 2 gloo processes (1 thread each, D = 2), seconds
   per epoch from metrics.csv (second epoch; the first pays warm-up).

    python benchmarks/bench_train.py --steps 20

Needs the machine to itself.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import peak_rss_mb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SAMPLE = REPO.parent / "shared" / "data" / "pyg_botan_sample"
CONFIG1 = SAMPLE / "train" / "isoconfig_N4096T0.44_1_tc07.npz"
WEIGHTS = SAMPLE / "initial_model" / "model1.pth"
NODE_WEIGHT = 0.4


def configuration_1():
    """(x (N, 1), edge_index (2, E), edge_attr (E, 3), y_node (N, 1), y_edge (E, 1)) as torch tensors."""
    import torch

    from hpc_botan.physics.configuration_targets import structure_graph
    from hpc_botan.physics.targets import pair_distance_change, propensity

    data = np.load(CONFIG1)
    x0, runs, types = data["initial_positions"], data["positions"], data["types"]
    box = np.full(3, (types.shape[0] / 1.2) ** (1 / 3))
    g = structure_graph(x0, types, box)
    s = propensity(x0, runs).astype(np.float32)
    e = pair_distance_change(x0, runs, g["edge_index"], box).astype(np.float32)
    return (torch.from_numpy(types.astype(np.float32)).unsqueeze(1), torch.from_numpy(g["edge_index"]),
            torch.from_numpy(g["vectors"].astype(np.float32)), torch.from_numpy(s).unsqueeze(1),
            torch.from_numpy(e).unsqueeze(1))


class PlainReference:
    """The reference network's arithmetic, written plainly, on the weights of a Botan module."""

    def __init__(self, model):
        self.m = model

    def __call__(self, x, edge_index, edge_attr):
        import torch
        from torch_geometric.utils import scatter

        m = self.m
        src, dst = edge_index
        h_v0, h_e0 = m.node_encoder(x), m.edge_encoder(edge_attr)
        h_v, h_e = h_v0, h_e0
        for _ in range(m.arch.n_steps):
            h_e = m.edge_updates[0](torch.cat([h_v[src], h_v[dst], h_e, h_e0], dim=1))
            incoming = scatter(h_e, dst, dim=0, dim_size=h_v.shape[0], reduce="sum")
            h_v = m.node_updates[0](torch.cat([h_v, h_v0, incoming], dim=1))
        return m.decoders[0](h_v), m.decoders[0](h_e)


def step_child(variant: str, steps: int) -> None:
    """Child process: median step time and peak RSS of one variant; prints one JSON line."""
    import torch
    import torch_geometric  # noqa: F401  every variant pays the same imports (the reference needs PyG)

    from hpc_botan.model.reference_weights import load_reference_weights

    torch.manual_seed(0)
    x, ei, ea, y_node, y_edge = configuration_1()
    model = load_reference_weights(WEIGHTS, fused=variant == "fp32")
    with torch.no_grad():
        fp32_node, fp32_edge = load_reference_weights(WEIGHTS)(x, ei, ea)
    forward = model
    if variant == "reference":
        forward = PlainReference(model)
    elif variant == "compile":
        forward = torch.compile(model, dynamic=False)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16")
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)

    def step():
        with autocast:
            node, edge = forward(x, ei, ea)
        loss = NODE_WEIGHT * ((node.float() - y_node) ** 2).mean() + (1 - NODE_WEIGHT) * ((edge.float() - y_edge) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    # accuracy first, on the untouched weights
    with torch.no_grad(), autocast:
        node, edge = forward(x, ei, ea)
    diff = max(float((node.float() - fp32_node).abs().max()), float((edge.float() - fp32_edge).abs().max()))
    t_warm = time.perf_counter()
    step()  # warm-up (compiles for torch.compile)
    warm = time.perf_counter() - t_warm
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"variant": variant, "median_step_s": statistics.median(times), "first_step_s": warm,
                      "peak_rss_mb": peak_rss_mb(),
                      "max_abs_diff_vs_fp32": diff, "threads": torch.get_num_threads(),
                      "edges": int(ei.shape[1])}))


def run_child(variant: str, steps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--steps", str(steps)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def epoch_seconds(run: Path) -> float:
    rows = list(csv.DictReader(next(run.glob("train/**/replica-00/metrics.csv")).open()))
    return float(rows[-1]["seconds"])


def ddp_benchmark(work: Path, epochs: int = 2) -> dict:
    """Seconds per epoch of the sample's 10 graphs: 1 process vs 2 gloo ranks (D = 2)."""
    base = work / "sample"
    subprocess.run([sys.executable, "-m", "hpc_botan", "-q", "import", "pyg-botan", str(SAMPLE / "train"), "--out",
                    str(base)], check=True)
    sets = ["train.epochs=%d" % epochs, "train.pretrain.enabled=false", "train.ntgnn.enabled=false",
            "train.validation_fraction=0", "train.augmentation=none"]
    args = [a for s in sets for a in ("--set", s)]
    one, two = work / "d1", work / "d2"
    shutil.copytree(base, one)
    shutil.copytree(base, two)
    subprocess.run([sys.executable, "-m", "hpc_botan", "-q", "train", str(one), "--no-progress", *args], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                    "hpc_botan.train", str(two), "--no-progress", *args, "--set", "train.data_parallel=2"],
                   check=True, env=env, capture_output=True)
    t1, t2 = epoch_seconds(one), epoch_seconds(two)
    return {"epoch_10_graphs_1_process_s": t1, "epoch_10_graphs_2_gloo_ranks_s": t2, "ddp_speedup": t1 / t2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--child")
    ap.add_argument("--variants", default="reference,fp32,compile,bf16")
    ap.add_argument("--no-ddp", action="store_true")
    args = ap.parse_args()
    if args.child:
        step_child(args.child, args.steps)
        return
    results = {v: run_child(v, args.steps) for v in args.variants.split(",")}
    ref = results.get("reference")
    for v, r in results.items():
        line = (f"{v:10s} step {r['median_step_s']:.3f} s (first {r['first_step_s']:.1f} s), peak RSS "
                f"{r['peak_rss_mb']:.0f} MB, max |pred - fp32| {r['max_abs_diff_vs_fp32']:.1e}")
        if ref and v != "reference":
            line += (f"  -> {ref['median_step_s'] / r['median_step_s']:.2f}x faster, "
                     f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f} of the memory")
        print(line)
    if not args.no_ddp:
        work = Path(tempfile.mkdtemp(prefix="bench_train_"))
        try:
            ddp = ddp_benchmark(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results["ddp"] = ddp
        print(f"epoch of 10 graphs: 1 process {ddp['epoch_10_graphs_1_process_s']:.1f} s, 2 gloo ranks "
              f"{ddp['epoch_10_graphs_2_gloo_ranks_s']:.1f} s -> {ddp['ddp_speedup']:.2f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
