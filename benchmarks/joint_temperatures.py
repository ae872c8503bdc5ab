"""One network across temperatures against one network per temperature, on simulated quick-size data.

RUN is a simulation at three temperatures with calibrated time points (the same fractions t / τα at
every temperature, so output column k means the same thing everywhere) and its targets, e.g.

    hpc-botan calibrate quick --out RUN --set "simulation.temperatures=[0.64, 0.72, 0.80]" \\
        --set simulation.time_points=calibrated --set simulation.calibration.n_time_points=7
    hpc-botan simulate quick --out RUN (the same --set) && hpc-botan targets RUN

For every training seed (``--seeds``), with the quick preset's model and training as the package has them now:

* ``separate``: one network per temperature (``train.temperatures: separate``), BOTAN and NT-GNN, each
  trained on its own temperature's train split; the two outer temperatures' networks are the
  comparison, the middle one's (trained on data the joint network never sees) is the reference;
* ``joint``: one network for the two outer temperatures (``train.temperatures: joint``, the middle one
  in ``train.holdout_temperatures``), the temperature a node input.  An epoch of it visits the graphs of
  both temperatures, so its training costs what the two outer per-temperature networks cost together
  (the same epochs, graphs and replicas; the wall times are recorded);
* at the held-out temperature the per-temperature networks of the outer temperatures are scored too
  (output column k on the middle temperature's graphs at time index k), each alone and as one
  ensemble of both (their replicas averaged): what a user without a joint network would do;
* ``ridge``: the ridge baseline fitted per temperature (at the middle one on its own data).

All training and scoring goes through the package (``hpc-botan train / evaluate / baselines`` and
``hpc_botan.evaluate``); each run directory's targets are hard links to RUN's.  An existing result is
reused, so the script resumes.  Results: ``OUT/results.json`` (ρ per test configuration at every time
point) and ``OUT/summary.md`` (mean ± standard error over seeds × test configurations at the shortest
time point and at τα, and paired differences against the per-temperature networks).

    python benchmarks/joint_temperatures.py RUN --out runs/joint --seeds 0 1
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_efficiency import cli, sets  # noqa: E402
from data_efficiency_simulated import linked_copy  # noqa: E402


def metrics_scores(path: Path, model: str) -> dict:
    """temperature (text) → time index (text) → target → ρ per test configuration, from a metrics file."""
    out: dict = {}
    for task in json.loads(path.read_text())["tasks"]:
        if task["model"] == model:
            for target, s in task["scores"].items():
                out.setdefault(f"{task['temperature']:.3f}", {}).setdefault(str(task["time_index"]), {})[target] = \
                    list(s["per_configuration"])
    return out


def cross_scores(run: Path, family: str, sources: list[float], target_t: float) -> dict:
    """ρ per test configuration of the per-temperature networks of ``sources`` (their replicas pooled
    into one ensemble) on the graphs of ``target_t``: time index (text) → target → list."""
    from hpc_botan.evaluate.stage import evaluate_task, evaluation_graphs
    from hpc_botan.io.rundir import load_run_config
    from hpc_botan.plan.networks import finished_replicas
    from hpc_botan.plan.targets import index_path, temperatures_and_times
    from hpc_botan.plan.tasks import evaluated_tasks

    cfg = load_run_config(run)
    index = index_path(run)
    views = [v for v in evaluated_tasks(cfg, temperatures_and_times(index), (family,))
             if any(np.isclose(v.temperature, t) for t in sources)]
    out: dict = {}
    for k in sorted({v.time_index for v in views}):
        at_k = [v for v in views if v.time_index == k]
        files = [f for v in at_k for f in finished_replicas(run, v, cfg.train.n_replicas)]
        view = replace(at_k[0], temperature=target_t)
        graphs = evaluation_graphs(index, cfg, view, "test")
        scored = evaluate_task(run, cfg, view, files, graphs)["scores"]
        out[str(k)] = {target: list(s["per_configuration"]) for target, s in scored.items()}
    return out


def timed_train(run: Path, tasks: list[str], threads: int, extra: list[str]) -> float:
    start = time.perf_counter()
    cli("train", str(run), "--no-progress", *[a for t in tasks for a in ("--task", t)], *sets(extra), threads=threads)
    return time.perf_counter() - start


def run_seed(run: Path, out: Path, seed: int, outer: list[float], middle: float, threads: int) -> dict:
    result: dict = {}
    seed_set = [f"train.seed={seed}"]
    tag = {t: f"T{t:.3f}" for t in (*outer, middle)}
    separate = out / "separate"
    if not (separate / "eval" / "metrics.json").is_file():
        if separate.exists():
            import shutil
            shutil.rmtree(separate)
        linked_copy(run, separate)
        walls = {}
        from hpc_botan.io.rundir import load_run_config
        pre = load_run_config(separate).train.pretrain.time_index
        for t in (*outer, middle):
            tasks = [f"botan/pretrain/{tag[outer[0]]}/t{pre:02d}", f"botan/finetune/{tag[t]}/multi", f"ntgnn/{tag[t]}/multi"]
            walls[tag[t]] = timed_train(separate, tasks, threads, seed_set)
        (separate / "walls.json").write_text(json.dumps(walls))
        cli("evaluate", str(separate), threads=threads)
        cli("baselines", str(separate), "--no-progress", threads=threads)
    result["walls_separate"] = json.loads((separate / "walls.json").read_text())
    for family in ("botan", "ntgnn"):
        result[f"{family}/separate"] = metrics_scores(separate / "eval" / "metrics.json", family)
        for label, sources in ((f"from {tag[outer[0]]}", outer[:1]), (f"from {tag[outer[1]]}", outer[1:]),
                               ("from both", outer)):
            result[f"{family}/separate {label}"] = {f"{middle:.3f}": cross_scores(separate, family, sources, middle)}
    result["ridge"] = metrics_scores(separate / "eval" / "baselines.json", "ridge")
    joint = out / "joint"
    if not (joint / "eval" / "metrics.json").is_file():
        if joint.exists():
            import shutil
            shutil.rmtree(joint)
        linked_copy(run, joint)
        settings = [*seed_set, "train.temperatures=joint", f"train.holdout_temperatures=[{middle}]"]
        wall = timed_train(joint, [], threads, settings)
        (joint / "walls.json").write_text(json.dumps({"joint": wall}))
        cli("evaluate", str(joint), threads=threads)
    result["walls_joint"] = json.loads((joint / "walls.json").read_text())
    for family in ("botan", "ntgnn"):
        result[f"{family}/joint"] = metrics_scores(joint / "eval" / "metrics.json", family)
    return result


def mean_se(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return "—"
    se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else float("nan")
    return f"{v.mean():.3f} ± {se:.3f}"


def gathered(results: dict, key: str, temperature: str, k: str, target: str) -> list[float]:
    return [x for r in results.values() for x in r.get(key, {}).get(temperature, {}).get(k, {}).get(target, [])]


def ceilings(out: Path) -> dict:
    """temperature (text) → time index (text) → target → the noise ceiling (mean over configurations and
    seeds), from the per-temperature runs' eval/metrics.json."""
    found: dict = {}
    for path in sorted(out.glob("seed*/separate/eval/metrics.json")):
        for task in json.loads(path.read_text())["tasks"]:
            if task["model"] == "botan":
                for target, s in task["scores"].items():
                    found.setdefault(f"{task['temperature']:.3f}", {}).setdefault(str(task["time_index"]), {}) \
                        .setdefault(target, []).append(s["ceiling"])
    return {t: {k: {target: float(np.mean(v)) for target, v in by.items()} for k, by in ks.items()}
            for t, ks in found.items()}


def summary(results: dict, temps: list[str], ks: dict[str, str], ceiling: dict | None = None) -> str:
    ceiling = ceiling or {}
    rows = []
    for family in ("botan", "ntgnn"):
        keys = [f"{family}/joint", f"{family}/separate", f"{family}/separate from T{temps[0]}",
                f"{family}/separate from T{temps[2]}", f"{family}/separate from both", "ridge"]
        for label, k in ks.items():
            for target in ("S", "E") if family == "botan" else ("S",):
                rows.append(f"\n### {family}, {target}, {label} (time index {k})\n")
                rows.append("| model | " + " | ".join(f"T = {t}" for t in temps) + " |")
                rows.append("|---" * (1 + len(temps)) + "|")
                for key in keys:
                    cells = [mean_se(gathered(results, key, t, k, target)) for t in temps]
                    rows.append(f"| {key} | " + " | ".join(cells) + " |")
                rows.append("| noise ceiling | " + " | ".join(
                    f"{ceiling.get(t, {}).get(k, {}).get(target, float('nan')):.3f}" for t in temps) + " |")
                # paired: joint minus the per-temperature network trained there (outer) or both outer ones (middle)
                cells = []
                for t in temps:
                    other = f"{family}/separate" if t != temps[1] else f"{family}/separate from both"
                    a, b = gathered(results, f"{family}/joint", t, k, target), gathered(results, other, t, k, target)
                    d = [x - y for x, y in zip(a, b)] if len(a) == len(b) else []
                    cells.append(mean_se(d) + (f" (min {min(d):+.3f})" if d else ""))
                rows.append("| joint − per-temperature (paired) | " + " | ".join(cells) + " |")
    walls = [(r["walls_joint"]["joint"], sum(r["walls_separate"][f"T{t}"] for t in (temps[0], temps[2])))
             for r in results.values()]
    rows.append("\nTraining wall time (s), joint against the two outer per-temperature networks together "
                "(BOTAN and NT-GNN): " + ", ".join(f"{a:.0f} / {b:.0f}" for a, b in walls))
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, help="simulation at three temperatures, with targets")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="train.seed values")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    from hpc_botan.plan.targets import index_path, temperatures_and_times

    temps = sorted(temperatures_and_times(index_path(args.run)))
    if len(temps) != 3:
        raise SystemExit(f"{args.run}: expected three temperatures, found {temps}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for seed in args.seeds:
        if str(seed) not in results:
            results[str(seed)] = run_seed(args.run, args.out / f"seed{seed}", seed, [temps[0], temps[2]], temps[1],
                                          args.threads)
            path.write_text(json.dumps(results, indent=1))
            print(f"seed {seed}: done", flush=True)
    n_times = len(temperatures_and_times(index_path(args.run))[temps[0]])
    text = summary(results, [f"{t:.3f}" for t in temps], {"shortest time point": "0", "t = 0.0315 τα": "3",
                                                          "τα": str(n_times - 1)},
                   ceilings(args.out))
    (args.out / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
