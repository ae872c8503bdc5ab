"""The paper's data size, measured (issue 22, item 5; run by hand; results go to docs/benchmarks.md).

Synthetic targets of the paper's shape for one temperature (T = 0.44): C configurations (500 in the paper:
400 train / 100 test) × 4096 particles at density 1.2 × about 164 k directed edges × 10 time points.
Each configuration has its own random structure (uniform positions in the cubic box, 80:20 A:B), its graph
built by the package's own ``structure_graph`` (neighbour pairs closer than 2 σ), and random targets of
the right dtypes and shapes (positive S_i, E_ij, R_i, D²min, local displacements, F_s, reliabilities).
They are written through the package's io layer (``write_shard``, one shard per would-be MPI rank,
written at the same time by ``--shards`` processes, then ``write_index``) into a run directory made from
the ``paper`` preset (one temperature, published time points, source ``simulate`` with nothing simulated:
the targets are all that verify, train and evaluate read).  Then, for each data-set size:

1. ``hpc-botan verify RUN``: wall time and peak memory (VmHWM of that process);
2. one training epoch of the reference BOTAN (width 64, 7 steps, p = 0.4, cubic augmentation; time point
   τα only, no pretraining, no NT-GNN, no validation split) with ``hpc-botan train`` under torchrun, 2 gloo
   ranks with 1 thread each (D = 2): per rank the peak memory, what its graphs hold, the time spent reading
   (the dataset's ``__getitem__`` and the whole ``load_task_graphs``, wrapped here, not edited), and the
   epoch time from metrics.csv.  ``--max-steps K`` trains only the first K steps of the epoch (every
   training graph is still read and held, and standardised over) and extrapolates the epoch;
3. ``hpc-botan evaluate RUN`` over the test graphs: wall time and peak memory.

Every process of one invocation imports the same copy of hpc_botan, taken into ``--out``/code at its start
(the tree may be edited meanwhile).  Before each measured command the run's shard files are dropped from
the page cache (``posix_fadvise`` DONTNEED on those files only), so that reading is from the disk as on a
fresh node; ``--warm`` keeps them.

    python benchmarks/bench_paper_data.py --configurations 100,500            # the figures in docs/benchmarks.md
    python benchmarks/bench_paper_data.py --configurations 100,500 --max-steps 3 --stages train,evaluate
    python benchmarks/bench_paper_data.py --configurations 20 --max-steps 2   # a quick rerun at small size

Writes under ``--out`` (default /tmp/bench_paper_data; about 12.5 MB per configuration, 6.3 GB for 500) and
removes each run directory after its measurements unless ``--keep``; the results go to ``--out``/results.json.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from common import peak_rss_mb  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: Where the children find hpc_botan: the copy that the parent took at its start (see ``snapshot_code``).
CODE = "BENCH_PAPER_DATA_CODE"
sys.path.insert(0, os.environ.get(CODE, str(REPO)))
sys.path.insert(0, str(REPO / "benchmarks"))

TEMPERATURE = 0.44
TIME_INDEX = 6  # τα, the seventh published time point
DENSITY = 1.2


# --------------------------------------------------------------------------- the run directory and its targets

def run_config(n_configurations: int, n_train: int, n_particles: int, ranks: int, epochs: int):
    """The paper preset for one temperature, with the training reduced to one BOTAN task."""
    from hpc_botan.config import load_config
    from hpc_botan.physics.time_points import PUBLISHED_TAU_ALPHA, PUBLISHED_TIMES

    times = list(PUBLISHED_TIMES[TEMPERATURE])
    return load_config("paper", [
        f"simulation.temperatures=[{TEMPERATURE}]",
        f"simulation.time_points={{{TEMPERATURE}: {times}}}",
        f"simulation.tau_alpha={{{TEMPERATURE}: {PUBLISHED_TAU_ALPHA[TEMPERATURE]}}}",
        f"simulation.n_particles={n_particles}",
        f"simulation.n_configurations={n_configurations}",
        f"simulation.n_train={n_train}",
        f"train.epochs={epochs}",
        "train.pretrain.enabled=false",
        "train.ntgnn.enabled=false",
        f"train.time_indices=[{TIME_INDEX}]",
        "train.validation_fraction=0",
        "train.n_replicas=1",
        f"train.data_parallel={ranks}",
    ])


def synthetic_targets(conf_id: int, n_particles: int, times: np.ndarray, seed: int):
    """One configuration of the paper's shape: a random structure at density 1.2, its real graph, random targets."""
    from hpc_botan.physics.configuration_targets import ConfigurationTargets, structure_graph

    rng = np.random.default_rng([seed, conf_id])
    box = np.full(3, (n_particles / DENSITY) ** (1 / 3))
    positions0 = rng.uniform(0.0, box[0], size=(n_particles, 3))
    species = (rng.uniform(size=n_particles) < 0.2).astype(np.int8)
    g = structure_graph(positions0, species, box)
    n_times, n_edges = times.size, g["edge_index"].shape[1]
    grow = np.sqrt(np.arange(1, n_times + 1, dtype=np.float32))[:, None]  # targets grow with time

    def positive(*shape):  # (F, N)
        return np.abs(rng.standard_normal(shape, dtype=np.float32)) * 0.1 * grow

    return ConfigurationTargets(
        species=species, positions0=positions0, box=box, times=times,
        edge_index=g["edge_index"], edge_attr=g["vectors"].astype(np.float32), node_mask=g["node_mask"],
        edge_mask=g["edge_mask"], propensity=positive(n_times, n_particles),
        pair_change=rng.standard_normal((n_times, n_edges), dtype=np.float32) * 0.05 * grow,
        cage_relative=positive(n_times, n_particles), d2min=positive(n_times, n_particles) ** 2,
        local_displacement=rng.standard_normal((n_times, n_particles, 3), dtype=np.float32) * 0.05,
        fs=np.exp(-np.asarray(times) / times[TIME_INDEX]), propensity_reliability=np.linspace(0.3, 0.9, n_times),
        pair_change_reliability=np.linspace(0.2, 0.8, n_times))


def write_child(run: Path, shard: int, n_shards: int, seed: int) -> dict:
    """Child process: write shard ``shard`` of ``n_shards`` (its contiguous block, as the targets stage does)."""
    from hpc_botan.io.rundir import load_run_config
    from hpc_botan.io.shards import shard_name, write_shard
    from hpc_botan.targets.stage import configuration_metas, rank_block

    cfg = load_run_config(run)
    metas = configuration_metas(cfg, run)
    mine = rank_block(sorted(metas), shard, n_shards)
    times = np.asarray(cfg.simulation.time_points[TEMPERATURE], dtype=np.float64)
    edges: list[int] = []

    def items():
        for k in mine:
            t = synthetic_targets(k, cfg.simulation.n_particles, times, seed)
            edges.append(t.edge_index.shape[1])
            yield metas[k], t

    t0 = time.perf_counter()
    path = run / "targets" / shard_name(shard)
    write_shard(path, shard, n_shards, items())
    return {"shard": shard, "configurations": len(mine), "seconds": time.perf_counter() - t0,
            "peak_rss_mb": peak_rss_mb(), "bytes": path.stat().st_size, "edges_min": min(edges),
            "edges_max": max(edges), "edges_mean": float(np.mean(edges))}


def make_run(run: Path, args: argparse.Namespace, n_configurations: int) -> dict:
    """Create ``run`` and its synthetic targets (or reuse complete ones); what writing them cost."""
    from hpc_botan.io.rundir import open_run_dir
    from hpc_botan.io.shards import complete_index_size, shard_name, write_index
    from hpc_botan.targets.stage import configuration_metas

    n_train = int(round(n_configurations * (1.0 - args.test_fraction)))
    cfg = run_config(n_configurations, n_train, args.particles, args.ranks, args.epochs)
    open_run_dir(run, cfg)
    if complete_index_size(run / "targets" / "index.h5") == n_configurations:
        return {"reused": True, "n_train": n_train, "bytes": _tree_bytes(run / "targets")}
    (run / "targets").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--child", "write", str(run), str(k), str(args.shards),
                               str(args.seed)], stdout=subprocess.PIPE, text=True)
             for k in range(args.shards)]
    writers = [json.loads(_finish(p, "write").splitlines()[-1]) for p in procs]
    t_shards = time.perf_counter() - t0
    t1 = time.perf_counter()
    write_index(run / "targets", [shard_name(k) for k in range(args.shards)], configuration_metas(cfg, run))
    t_index = time.perf_counter() - t1
    return {"reused": False, "n_train": n_train, "shards_seconds": t_shards, "index_seconds": t_index,
            "writers": writers, "bytes": _tree_bytes(run / "targets"),
            "edges_mean": float(np.average([w["edges_mean"] for w in writers],
                                           weights=[w["configurations"] for w in writers])),
            "edges_min": min(w["edges_min"] for w in writers), "edges_max": max(w["edges_max"] for w in writers)}


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _finish(proc: subprocess.Popen, what: str) -> str:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{what}: exit code {proc.returncode}")
    return out


def drop_from_page_cache(run: Path) -> None:
    """Evict the run's target files (only those) from the page cache, so the next reader reads the disk."""
    for path in (run / "targets").glob("*.h5"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- instrumented children

READS = {"calls": 0, "seconds": 0.0}


def tallied(fn, tally: dict, count_key: str, count=lambda *args: 1):
    """``fn`` that adds its wall time to ``tally["seconds"]`` and ``count(*args)`` to ``tally[count_key]``."""
    def wrapped(*args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            tally[count_key] += count(*args)
            tally["seconds"] += time.perf_counter() - t0

    return wrapped


def time_dataset_reads() -> None:
    """Wrap ``TargetsDataset.__getitem__`` (HDF5 read + tensors of one graph) to count its time."""
    from hpc_botan.data.dataset import TargetsDataset

    TargetsDataset.__getitem__ = tallied(TargetsDataset.__getitem__, READS, "calls")


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cli_child(argv: list[str]) -> dict:
    """Child process: one ``hpc-botan`` command in this process; its time, reads and peak memory."""
    from hpc_botan.cli import main

    forward = {"graphs": 0, "seconds": 0.0}
    if "evaluate" in argv:  # verify reads no graphs (and imports no torch)
        import hpc_botan.predict.checkpoints as checkpoints

        time_dataset_reads()
        checkpoints.predict_graphs = tallied(checkpoints.predict_graphs, forward, "graphs",
                                             lambda model, graphs: len(graphs))
    t0 = time.perf_counter()
    rc = main(argv)
    return {"rc": rc, "seconds_in_process": time.perf_counter() - t0, "read_calls": READS["calls"],
            "read_seconds": READS["seconds"], "forward_graphs": forward["graphs"],
            "forward_seconds": forward["seconds"],
            "peak_rss_mb": peak_rss_mb(), "code": sys.modules["hpc_botan"].__file__}


class FirstSteps(Sequence):
    """The training graphs, whose ``len`` is only the graphs of the first ``limit`` steps (the epoch loop
    takes ``len(train_graphs) // (D · batch)`` steps), while iterating (the standardisation) walks them all.
    A view: it holds no graph, so the graphs are read when used, as in a real run."""

    def __init__(self, graphs, limit: int):
        self.graphs = graphs
        self.limit = limit

    def __len__(self) -> int:
        return min(self.limit, len(self.graphs))

    def __getitem__(self, k):
        return self.graphs[k]

    def __iter__(self):
        return (self.graphs[k] for k in range(len(self.graphs)))


def train_child(run: Path, stats_dir: Path, max_steps: int) -> None:
    """One torchrun rank: ``hpc-botan train RUN`` with its reading timed and its memory recorded."""
    import torch

    import hpc_botan.train.stage as stage
    import hpc_botan.train.trainer as trainer
    from hpc_botan.cli import main

    rank = int(os.environ.get("RANK", "0"))
    info: dict = {"rank": rank, "threads": torch.get_num_threads()}
    time_dataset_reads()
    load, train_replica, lr_at = stage.load_task_graphs, stage.train_replica, trainer.learning_rate_at
    steps: list[float] = []

    def timed_load(*a, **kw):
        t0 = time.perf_counter()
        train_graphs, val_graphs = load(*a, **kw)
        info["load_seconds"] = time.perf_counter() - t0
        info["graphs"] = len(train_graphs) + len(val_graphs)
        held = isinstance(train_graphs, list)  # older code held every graph; TaskGraphs reads them on use
        info["graphs_mb"] = sum(v.numel() * v.element_size() for g in ([*train_graphs, *val_graphs] if held else [])
                                for _, v in g if torch.is_tensor(v)) / 2 ** 20
        info["one_graph_mb"] = sum(v.numel() * v.element_size() for _, v in train_graphs[0] if torch.is_tensor(v)) / 2 ** 20
        info["rss_after_load_mb"] = _vm("VmRSS")
        return train_graphs, val_graphs

    def limited(run_dir, cfg, task, replica, train_graphs, val_graphs, groups, **kw):
        per_step = groups.world.data_parallel * task.batch_graphs
        info["steps_per_epoch"] = len(train_graphs) // per_step
        if max_steps:
            train_graphs = FirstSteps(train_graphs, max_steps * per_step)
        t0 = time.perf_counter()
        out = train_replica(run_dir, cfg, task, replica, train_graphs, val_graphs, groups, **kw)
        info["train_replica_seconds"] = time.perf_counter() - t0
        return out

    def step_clock(*a, **kw):  # called once per optimiser step, after the backward
        steps.append(time.perf_counter())
        return lr_at(*a, **kw)

    stage.load_task_graphs, stage.train_replica, trainer.learning_rate_at = timed_load, limited, step_clock
    t0 = time.perf_counter()
    rc = main(["-q", "train", str(run), "--no-progress"])
    info.update({"rc": rc, "seconds_in_process": time.perf_counter() - t0, "read_calls": READS["calls"],
                 "read_seconds": READS["seconds"], "steps_done": len(steps),
                 "median_step_s": float(np.median(np.diff(steps))) if len(steps) > 2 else float("nan"),
                 "peak_rss_mb": peak_rss_mb(), "code": sys.modules["hpc_botan"].__file__})
    (stats_dir / f"rank-{rank}.json").write_text(json.dumps(info))


# --------------------------------------------------------------------------- the measurements

def snapshot_code(out: Path) -> Path:
    """A copy of the package under ``out``/code that this run's every process imports.

    The package may be edited while a run of an hour goes on (another engineer, the same tree): a
    training process and the evaluation started after an edit would otherwise run different code, and
    a checkpoint is refused by a configuration hash that changed in between.
    """
    code = out / "code"
    shutil.rmtree(code, ignore_errors=True)
    shutil.copytree(REPO / "hpc_botan", code / "hpc_botan", ignore=shutil.ignore_patterns("__pycache__"))
    os.environ[CODE] = str(code)
    sys.path.insert(0, str(code))
    return code


def timed_cli(argv: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", "cli", *argv], stdout=subprocess.PIPE, text=True)
    result = json.loads(_finish(proc, argv[1]).splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - t0
    if result["rc"] != 0:
        raise SystemExit(f"hpc-botan {' '.join(argv)}: exit code {result['rc']}")
    return result


def measure_training(run: Path, args: argparse.Namespace) -> dict:
    shutil.rmtree(run / "train", ignore_errors=True)
    stats = run / "bench-train-stats"
    shutil.rmtree(stats, ignore_errors=True)
    stats.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.ranks}",
                    __file__, "--child", "train", str(run), str(stats), str(args.max_steps)], check=True, env=env)
    wall = time.perf_counter() - t0
    ranks = [json.loads(p.read_text()) for p in sorted(stats.glob("rank-*.json"))]
    if len(ranks) != args.ranks or any(r["rc"] != 0 for r in ranks):
        raise SystemExit(f"train: {len(ranks)} rank(s) reported, exit codes {[r['rc'] for r in ranks]}")
    metrics = next((run / "train").glob("**/replica-00/metrics.csv"))
    epoch_rows = list(csv.DictReader(metrics.open()))
    seconds = float(epoch_rows[0]["seconds"])  # the first epoch: what a one-epoch run pays
    full, done = ranks[0]["steps_per_epoch"], min(r["steps_done"] for r in ranks)
    epoch = seconds
    if done < full:  # the steps not taken at the median step time (the first step pays a warm-up)
        step = ranks[0]["median_step_s"]
        epoch = seconds + (full - done) * step if np.isfinite(step) else seconds * full / done
    read = max(r["load_seconds"] for r in ranks)  # every rank reads every training graph, in parallel
    return {"wall_seconds": wall, "epoch_seconds_measured": seconds, "steps_measured": done, "steps_per_epoch": full,
            "epoch_seconds": epoch, "extrapolated": done < full, "read_seconds": read,
            "read_share": read / (read + epoch), "read_share_of_epoch": read / epoch, "ranks": ranks}


def measure(args: argparse.Namespace, n_configurations: int) -> dict:
    run = args.out / f"paper-C{n_configurations}"
    print(f"== {n_configurations} configurations in {run}", flush=True)
    result: dict = {"configurations": n_configurations, "write": make_run(run, args, n_configurations)}
    w = result["write"]
    print(f"targets: {w['bytes'] / 1e9:.2f} GB" + ("" if w["reused"] else
          f", written in {w['shards_seconds']:.0f} s + index {w['index_seconds']:.1f} s, "
          f"{w['edges_mean']:.0f} edges per configuration ({w['edges_min']}–{w['edges_max']})"), flush=True)
    if "verify" in args.stages:
        if not args.warm:
            drop_from_page_cache(run)
        result["verify"] = timed_cli(["-q", "verify", str(run)])
        print(f"verify: {result['verify']['wall_seconds']:.1f} s, peak {result['verify']['peak_rss_mb']:.0f} MB",
              flush=True)
    if "train" in args.stages:
        if not args.warm:
            drop_from_page_cache(run)
        t = result["train"] = measure_training(run, args)
        print(f"train: epoch {t['epoch_seconds']:.0f} s{' (extrapolated)' if t['extrapolated'] else ''}, reading "
              f"{t['read_seconds']:.1f} s ({100 * t['read_share']:.2f} %), peak per rank "
              + ", ".join(f"{r['peak_rss_mb']:.0f} MB" for r in t["ranks"]), flush=True)
    if "evaluate" in args.stages and "train" in args.stages:
        if not args.warm:
            drop_from_page_cache(run)
        e = result["evaluate"] = timed_cli(["-q", "evaluate", str(run)])
        print(f"evaluate: {e['wall_seconds']:.1f} s (reading {e['read_seconds']:.1f} s, forward passes "
              f"{e['forward_seconds']:.1f} s for {e['forward_graphs']} graphs), peak {e['peak_rss_mb']:.0f} MB",
              flush=True)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configurations", default="100,500",
                    help="data-set sizes to measure, comma-separated (default 100,500)")
    ap.add_argument("--test-fraction", type=float, default=0.2, help="share in the test split (paper: 100 of 500)")
    ap.add_argument("--particles", type=int, default=4096)
    ap.add_argument("--shards", type=int, default=2, help="shard files, written by as many processes at once")
    ap.add_argument("--ranks", type=int, default=2, help="DDP ranks (gloo, 1 thread each)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="train only the first K optimiser steps of the epoch and extrapolate (0: the whole epoch)")
    ap.add_argument("--stages", default="verify,train,evaluate", help="what to measure (default: all three)")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_paper_data"))
    ap.add_argument("--keep", action="store_true", help="keep the run directories (reused by a later run)")
    ap.add_argument("--warm", action="store_true", help="leave the target files in the page cache")
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "write":
            print(json.dumps(write_child(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]))))
        elif kind == "cli":
            print(json.dumps(cli_child(rest)))
        elif kind == "train":
            train_child(Path(rest[0]), Path(rest[1]), int(rest[2]))
        return
    args.stages = args.stages.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    snapshot_code(args.out)
    results = []
    for n in (int(x) for x in args.configurations.split(",")):
        results.append(measure(args, n))
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    if not args.keep:
        shutil.rmtree(args.out / "code", ignore_errors=True)
    if len(results) > 1 and all("train" in r for r in results):
        a, b = results[0], results[-1]
        for key in ("peak_rss_mb", "graphs_mb"):
            pa, pb = (max(rk[key] for rk in r["train"]["ranks"]) for r in (a, b))
            if not pa:  # graphs_mb: none held (read on use)
                continue
            ratio = b["configurations"] / a["configurations"]
            print(f"train {key} per rank: {pa:.0f} MB at {a['configurations']} configurations, {pb:.0f} MB at "
                  f"{b['configurations']}: x{pb / pa:.2f} for x{ratio:.1f} the data")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
