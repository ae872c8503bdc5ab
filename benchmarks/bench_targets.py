"""Targets-stage benchmarks (run by hand; results go to docs/benchmarks.md).

1. Graph + targets (S_i, E_ij) of the shared configuration 1 (4096 particles, 32 runs) with
   hpc_botan's O(N) functions against a plain dense O(N²) construction like the reference
   implementation's (all N² minimum-image vectors, then a threshold), median of repeats.
2. Targets throughput of the pyg-botan import of the shared sample, its 10 configurations taken
   ``--copies`` times (30 by default, so that per-process start-up does not dominate), with
   1 and 2 MPI ranks (``mpirun -n K hpc-botan import …``).
3. Peak memory (max RSS) of one rank computing every target of a configuration with N = 4096,
   32 runs and 10 time points and writing its shard.

    python benchmarks/bench_targets.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
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

from hpc_botan.physics.neighbors import neighbor_pairs  # noqa: E402
from hpc_botan.physics.targets import pair_distance_change, propensity  # noqa: E402
from hpc_botan.plan.world import resolve_launcher  # noqa: E402


def ours(path: Path):
    data = np.load(path)
    x0, runs = data["initial_positions"], data["positions"]
    box = np.full(3, (x0.shape[0] / 1.2) ** (1 / 3))
    ei = neighbor_pairs(x0, box, 2.0)
    return ei, propensity(x0, runs), pair_distance_change(x0, runs, ei, box)


def dense_reference(path: Path):
    """The plain O(N²) way: every pair's minimum-image vector, then a distance threshold."""
    data = np.load(path)
    x0, runs = data["initial_positions"], data["positions"]
    n = x0.shape[0]
    length = (n / 1.2) ** (1 / 3)
    d = x0[None, :, :] - x0[:, None, :]
    d -= length * np.round(d / length)
    r = np.sqrt((d ** 2).sum(-1))
    i, j = np.nonzero((r < 2.0) & (r > 0))
    s = np.sqrt(((runs - x0) ** 2).sum(-1)).mean(0)
    e = np.zeros(i.size)
    for run in runs:
        dt = run[j] - run[i]
        dt -= length * np.round(dt / length)
        e += np.sqrt((dt ** 2).sum(-1))
    return np.stack([i, j]), s, e / len(runs) - r[i, j]


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sample_set(work: Path, copies: int) -> Path:
    """A directory of ``copies`` × the 10 sample files (symbolic links under new configuration numbers)."""
    src = work / f"sample-x{copies}"
    src.mkdir()
    files = sorted((SAMPLE / "train").glob("isoconfig_N4096T0.44_*_tc07.npz"))
    for c in range(copies):
        for k, f in enumerate(files):
            (src / f"isoconfig_N4096T0.44_{c * len(files) + k + 1}_tc07.npz").symlink_to(f)
    return src


def import_time(ranks: int, work: Path, source: Path) -> float:
    out = work / f"import-{ranks}"
    cmd = [*resolve_launcher("mpirun"), "-n", str(ranks), sys.executable, "-m", "hpc_botan", "-q", "import",
           "pyg-botan", str(source), "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def peak_memory_child() -> None:
    """Child process: one rank's work on N = 4096, 32 runs, 10 time points; prints max RSS in MB."""
    from hpc_botan.io.shards import ConfigurationMeta, write_shard
    from hpc_botan.physics.configuration_targets import compute_targets

    data = np.load(CONFIG1)
    x0, frame = data["initial_positions"], data["positions"]
    rng = np.random.default_rng(0)
    runs = np.stack([frame + rng.normal(scale=0.01 * k, size=frame.shape) for k in range(10)], axis=1)  # (32, 10, N, 3)
    del frame
    box = np.full(3, (4096 / 1.2) ** (1 / 3))
    meta = ConfigurationMeta(0, 0.44, 0, 0, "train", str(CONFIG1))
    work = Path(tempfile.mkdtemp())
    write_shard(work / "shard-00000.h5", 0, 1,
                ((meta, compute_targets(x0, data["types"], box, runs, np.arange(1.0, 11.0))) for _ in range(1)))
    shutil.rmtree(work)
    print(peak_rss_mb())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peak-memory-child":
        peak_memory_child()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=3,
                    help="targets throughput on this many copies of the 10 sample configurations (default 3)")
    args = ap.parse_args()

    a, b = ours(CONFIG1), dense_reference(CONFIG1)
    order = np.lexsort((b[0][1], b[0][0]))
    assert np.array_equal(a[0], b[0][:, order]) and np.allclose(a[2], b[2][order], atol=1e-6)
    t_ours = median_time(lambda: ours(CONFIG1), args.repeats)
    t_dense = median_time(lambda: dense_reference(CONFIG1), args.repeats)

    work = Path(tempfile.mkdtemp(prefix="bench_targets_"))
    source = sample_set(work, args.copies)
    t1, t2 = import_time(1, work, source), import_time(2, work, source)
    shutil.rmtree(work)

    rss = float(subprocess.run([sys.executable, __file__, "--peak-memory-child"], check=True, capture_output=True,
                               text=True).stdout.strip())
    result = {"graph_targets_ours_s": t_ours, "graph_targets_dense_s": t_dense, "speedup_vs_dense": t_dense / t_ours,
              "import_configs": 10 * args.copies, "import_1_rank_s": t1, "import_2_ranks_s": t2, "mpi_speedup": t1 / t2,
              "peak_rss_mb_N4096_R32_F10": rss}
    print(json.dumps(result, indent=2))
    print(f"graph + S + E, configuration 1: ours {1000 * t_ours:.0f} ms, dense O(N^2) {1000 * t_dense:.0f} ms "
          f"-> {t_dense / t_ours:.1f}x")
    print(f"import of {10 * args.copies} configurations: 1 rank {t1:.1f} s, 2 ranks {t2:.1f} s -> {t1 / t2:.2f}x")
    print(f"peak memory of one rank (N = 4096, 32 runs, 10 time points): {rss:.0f} MB")


if __name__ == "__main__":
    main()
