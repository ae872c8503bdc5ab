"""Prediction of large structures: bounded-memory inference and spatial domains over MPI ranks (issue 27).

Configuration 1 of the shared sample (4096 particles, T = 0.44) tiled m_x × m_y × m_z times, written as a
LAMMPS data file, predicted by ``hpc-botan predict`` with one trained BOTAN replica (the default network,
width 64, 7 steps: the shared sample imported and trained for one epoch; accuracy does not matter here).
Each measurement is its own process (or ``mpirun -n K`` of them); every rank reports its wall time and
its peak resident memory (VmHWM), and the whole-process wall time is measured outside.  Modes:

* ``chunked``: the package as it ships (edges in chunks that fit ``--memory-gb``);
* ``whole``: the whole-graph forward of before (the chunk size forced to None), the baseline of the
  memory-per-edge ratio, at the sizes it fits.

    python benchmarks/bench_predict_large.py --tiles 1 2 3 --modes whole chunked       # the ratio, scaling
    python benchmarks/bench_predict_large.py --tiles 6 --ranks 1 2                       # 884,736 particles
    python benchmarks/bench_predict_large.py --tiles 7x6x6 --ranks 2                     # 1,032,192

Results are appended to ``WORK/results.jsonl``, one line per measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "pyg_botan_sample"
CONFIG1 = SAMPLE / "train" / "isoconfig_N4096T0.44_1_tc07.npz"
TRAIN = ["train.epochs=1", "train.pretrain.enabled=false", "train.n_replicas=1", "train.ntgnn.enabled=false",
         "train.max_configurations=2"]


def hpc_botan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "hpc_botan", "-q", *args], check=True)


def trained_run(work: Path) -> Path:
    """The shared sample imported and one BOTAN replica trained for an epoch (once)."""
    run = work / "run"
    if not list(run.glob("train/botan/finetune/*/*/replica-00/final.pt")):
        import shutil

        shutil.rmtree(run, ignore_errors=True)
        hpc_botan("import", "pyg-botan", str(SAMPLE / "train"), "--out", str(run), "--n-test", "2")
        hpc_botan("train", str(run), "--no-progress", *[a for s in TRAIN for a in ("--set", s)])
    return run


def tiled_structure(work: Path, tiles: tuple[int, int, int]) -> Path:
    """Configuration 1 tiled ``tiles`` times, as a LAMMPS data file (written once)."""
    import numpy as np

    from hpc_botan.physics.pbc import tile

    path = work / f"config1_{'x'.join(map(str, tiles))}.data"
    if path.is_file():
        return path
    data = np.load(CONFIG1)
    box = np.full(3, (data["types"].shape[0] / 1.2) ** (1 / 3))
    positions, species, big = tile(data["initial_positions"] % box, data["types"], box, tiles)
    big = [float(b) for b in big]   # repr: plain numbers
    rows = np.column_stack([np.arange(1, len(species) + 1), species.astype(np.int64) + 1, positions])
    header = (f"configuration 1 of the shared sample tiled {tiles}\n\n{len(species)} atoms\n2 atom types\n\n"
              f"0.0 {big[0]!r} xlo xhi\n0.0 {big[1]!r} ylo yhi\n0.0 {big[2]!r} zlo zhi\n\nAtoms # atomic\n")
    tmp = path.with_suffix(".tmp")
    np.savetxt(tmp, rows, fmt=["%d", "%d", "%.10f", "%.10f", "%.10f"], header=header, comments="")
    tmp.rename(path)
    return path


def worker(args) -> None:
    """One rank: ``hpc-botan predict`` in this process, then its own figures as a JSON line."""
    sys.path.insert(0, str(REPO))
    from benchmarks.common import peak_rss_mb
    from hpc_botan.cli import main

    if args.worker_mode == "whole":   # the whole-graph forward of before: no chunks
        import hpc_botan.predict.predict as predict

        predict.chunk_edges_for = lambda *a, **k: None
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", 0)))
    t0 = time.perf_counter()
    code = main(["-q", "predict", args.run, args.structure, "--out", args.out, "--overwrite", "--no-progress",
                 *(["--memory-gb", str(args.memory_gb)] if args.memory_gb else [])])
    wall = time.perf_counter() - t0
    with open(f"{args.stats}.rank{rank}", "w") as fh:
        json.dump({"rank": rank, "wall_s": wall, "peak_mb": peak_rss_mb(), "code": code}, fh)


def measure(work: Path, run: Path, structure: Path, mode: str, ranks: int, memory_gb: float | None) -> dict:
    import h5py

    out = work / f"{structure.stem}_{mode}_{ranks}.h5"
    stats = work / f"stats_{structure.stem}_{mode}_{ranks}"
    command = [sys.executable, __file__, "--worker-mode", mode, "--run", str(run), "--structure", str(structure),
               "--out", str(out), "--stats", str(stats), *(["--memory-gb", str(memory_gb)] if memory_gb else [])]
    if ranks > 1:
        from hpc_botan.plan.world import resolve_launcher

        command = [*resolve_launcher("mpirun"), "-n", str(ranks), *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    wall = time.perf_counter() - t0
    per_rank = [json.loads(Path(f"{stats}.rank{r}").read_text()) for r in range(ranks)]
    if any(p["code"] != 0 for p in per_rank):
        raise SystemExit(f"hpc-botan predict failed: {per_rank}")
    with h5py.File(out) as f:
        g = f["structures/00000"]
        n, e = int(g.attrs["n_particles"]), int(g.attrs["n_edges"])
    out.unlink()
    peak = max(p["peak_mb"] for p in per_rank)
    return {"structure": structure.name, "mode": mode, "ranks": ranks, "n_particles": n, "n_edges": e,
            "wall_s": wall, "rank_wall_s": [p["wall_s"] for p in per_rank],
            "peak_mb_per_rank": [p["peak_mb"] for p in per_rank], "peak_mb_max": peak,
            "kb_per_edge": peak * 1e6 / 1e3 / e * ranks, "memory_gb": memory_gb}


def parse_tiles(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split("x")]
    return (parts[0],) * 3 if len(parts) == 1 else tuple(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=REPO / "runs" / "bench_predict_large")
    p.add_argument("--tiles", nargs="+", default=["1", "2", "3"], help="m (m³ copies) or AxBxC")
    p.add_argument("--modes", nargs="+", choices=("chunked", "whole"), default=["chunked"])
    p.add_argument("--ranks", nargs="+", type=int, default=[1])
    p.add_argument("--memory-gb", type=float, default=None, help="predict --memory-gb (default: the package's)")
    # one rank of a measurement (internal)
    p.add_argument("--worker-mode", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--structure", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--stats", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker_mode:
        worker(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    run = trained_run(args.work)
    for text in args.tiles:
        structure = tiled_structure(args.work, parse_tiles(text))
        for mode in args.modes:
            for ranks in args.ranks:
                row = measure(args.work, run, structure, mode, ranks, args.memory_gb)
                print(json.dumps(row), flush=True)
                with open(args.work / "results.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
