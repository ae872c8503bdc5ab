"""Start-up of prediction: an exported model (``hpc-botan export``) against the run directory's checkpoints.

What a user pays before the first propensity map: a fresh Python that imports hpc_botan, loads the
trained networks (``load_predictor``) and predicts once on configuration 1 of the shared sample
(4096 particles).  Each measurement is its own process; the two sources alternate, so both see
the same machine state, and the medians of ``--repeats`` runs are compared as a ratio.  A third
row is what a user of plain torch does with the same file (``torch.export.load`` of its default
program, then one call), without hpc_botan.

The run is the shared sample imported (10 configurations at T = 0.44, one time point) and trained
briefly with the default network (width 64, 7 steps) and 4 replicas of BOTAN and NT-GNN: the
networks' sizes and count are those of a real run, their accuracy does not matter here.

    python benchmarks/bench_export.py --repeats 5            # builds the run under --work once
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
SAMPLE = REPO.parent / "shared" / "data" / "pyg_botan_sample"
CONFIG1 = SAMPLE / "train" / "isoconfig_N4096T0.44_1_tc07.npz"
TRAIN = ["train.epochs=1", "train.pretrain.enabled=false", "train.n_replicas=4", "train.ntgnn.enabled=true",
         "train.ntgnn.epochs=1"]

#: one measurement: import, load, first prediction (BOTAN), in a fresh process
WITH_HPC_BOTAN = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import hpc_botan
data = np.load(sys.argv[2])
box = np.full(3, (data["types"].shape[0] / 1.2) ** (1 / 3))
t1 = time.perf_counter()
predictor = hpc_botan.load_predictor(sys.argv[1])
t2 = time.perf_counter()
predictor.predict(data["initial_positions"] % box, data["types"], box)
t3 = time.perf_counter()
print(json.dumps({"load": t2 - t1, "first_prediction": t3 - t2, "total": t3 - t0}))
"""

#: the same with plain torch: the default program of the exported file, on the graph hpc_botan built
PLAIN_TORCH = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
graph = np.load(sys.argv[2])
t1 = time.perf_counter()
program = torch.export.load(sys.argv[1]).module()
t2 = time.perf_counter()
with torch.no_grad():
    program(*[torch.from_numpy(graph[k]) for k in ("x", "edge_index", "edge_attr")])
t3 = time.perf_counter()
print(json.dumps({"load": t2 - t1, "first_prediction": t3 - t2, "total": t3 - t0}))
"""


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "hpc_botan", "-q", *args], check=True)


def build_run(work: Path) -> tuple[Path, Path]:
    """The trained run and its exported model under ``work`` (made once, reused after)."""
    run, model = work / "run", work / "model.pt2"
    if not (run / "targets" / "index.h5").exists():
        cli("import", "pyg-botan", str(SAMPLE / "train"), "--out", str(run), "--n-test", "1")
    cli("train", str(run), "--no-progress", *[a for s in TRAIN for a in ("--set", s)])
    if not model.exists():
        cli("export", str(run), "--out", str(model))
    return run, model


def write_graph(path: Path) -> None:
    """Configuration 1 as the network input (x, edge_index, edge_attr), for the plain-torch row."""
    import numpy as np

    from hpc_botan.io.structures import Structure
    from hpc_botan.predict.predict import build_graph

    data = np.load(CONFIG1)
    box = np.full(3, (data["types"].shape[0] / 1.2) ** (1 / 3))
    graph = build_graph(Structure(data["initial_positions"] % box, data["types"].astype(np.int8), box, str(CONFIG1)))
    np.savez(path, x=data["types"].astype(np.float32)[:, None], edge_index=graph.edge_index, edge_attr=graph.edge_attr)


def measure(code: str, *args: str) -> dict[str, float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_export"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run, model = build_run(args.work)
    graph = args.work / "graph.npz"
    write_graph(graph)
    rows = {"checkpoints (run directory)": [], "exported model (hpc_botan)": [], "exported model (plain torch)": []}
    for _ in range(args.repeats):
        rows["checkpoints (run directory)"].append(measure(WITH_HPC_BOTAN, str(run), str(CONFIG1)))
        rows["exported model (hpc_botan)"].append(measure(WITH_HPC_BOTAN, str(model), str(CONFIG1)))
        rows["exported model (plain torch)"].append(measure(PLAIN_TORCH, str(model), str(graph)))
    median = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rows.items()}
    base = median["checkpoints (run directory)"]["process"]
    print(f"median of {args.repeats} fresh processes each; 4096 particles; file {model.stat().st_size / 1e6:.1f} MB\n")
    print("| source | load (s) | first prediction (s) | whole process (s) | ratio to checkpoints |")
    print("|---|---|---|---|---|")
    for name, m in median.items():
        print(f"| {name} | {m['load']:.2f} | {m['first_prediction']:.2f} | {m['process']:.2f} | "
              f"{m['process'] / base:.2f} |")


if __name__ == "__main__":
    main()
