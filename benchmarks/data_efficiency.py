"""Data efficiency on the shared sample (or other configurations of the published set, ``--data``): Pearson ρ
against the number of training configurations.

For each training size n (``--sizes``) and each rotation r (``--rotations``), configurations 2r and
2r + 1 of the sample (sorted by their file id) are the test pair and the n + 1 configurations that
follow them (cyclically) are the train split, one of which ``train.validation_fraction`` holds out
for validation (`--seed`, train.seed), so that every size rests on 2 × rotations test configurations and every
model sees the same split:

* ``ridge``: the ridge baseline (``hpc-botan baselines``), fitted on the n training configurations;
* ``botan``: the documented shared-sample recipe (docs/accuracy.md): the published weights
  model1–4 as 4 replicas (``import-weights``, separate decoders), least-squares heads, loss on A
  particles and A–A pairs, lr 1e-5, ``--epochs`` epochs, selection on validation ρ;
* ``botan_heads``: the same with ``model.descriptors: heads`` (the ridge's descriptors as linear
  output heads, fitted by least squares with the decoders' last layer; the fitted start competes
  for best.pt);
* ``ntgnn``: NT-GNN as the quick preset trains it: from scratch, descriptor heads fitted by least
  squares, lr 3e-3, one graph per step, ``--ntgnn-epochs`` epochs (optional, ``--models``).

Everything goes through the package's commands, each (rotation, size, model) in a run directory of
its own under ``--out``; an existing result is reused, so the script resumes.  Results:
``OUT/results.json`` (ρ per test configuration), ``OUT/summary.md`` (mean ± standard error over the
test configurations) and ``OUT/data_efficiency.png``.

    python benchmarks/data_efficiency.py --out runs/data_efficiency --sizes 1 2 4 7 --rotations 3 --epochs 1
    python benchmarks/data_efficiency.py --out runs/data_efficiency_seed1 --sizes 1 2 4 7 --rotations 3 --epochs 1 --seed 1
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "pyg_botan_sample"
MODELS = ("ridge", "botan", "botan_heads", "ntgnn")
LABELS = {"ridge": "ridge", "botan": "BOTAN (published weights, fine-tuned)",
          "botan_heads": "BOTAN + descriptor heads", "ntgnn": "NT-GNN (from scratch)"}
RECIPE = ["train.head_init=least_squares", "train.loss_nodes=A", "train.loss_edges=AA", "train.learning_rate=1e-5",
          "train.select_on=rho", "train.n_replicas=4", "train.ntgnn.enabled=false"]


def cli(*args: str, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    res = subprocess.run([sys.executable, "-m", "hpc_botan", "-q", *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"hpc-botan {' '.join(args)} failed:\n{res.stderr[-3000:]}")


def sets(items) -> list[str]:
    return [a for s in items for a in ("--set", s)]


#: a configuration file of the published data set: isoconfig_N<N>T<T>_<id>_tc<time index>.npz
DATA_FILE = re.compile(r"^isoconfig_N\d+T[\d.]+_(\d+)_tc\d+\.npz$")


def sample_files(data: Path) -> list[Path]:
    """The published data set's configuration files in ``data``, by their id."""
    files = sorted((p for p in data.glob("isoconfig_*.npz") if DATA_FILE.match(p.name)),
                   key=lambda p: int(DATA_FILE.match(p.name).group(1)))
    if len(files) < 4:
        raise SystemExit(f"--data {data}: expected at least 4 files isoconfig_N<N>T<T>_<id>_tc<k>.npz, found {len(files)}")
    return files


def split(files: list[Path], rotation: int, n_train: int) -> tuple[list[Path], list[Path]]:
    """(train split: n_train + 1 files, test pair) of one rotation."""
    k = len(files)
    test = [files[(2 * rotation) % k], files[(2 * rotation + 1) % k]]
    rest = [files[(2 * rotation + 2 + i) % k] for i in range(k - 2)]
    return rest[:n_train + 1], test


def imported(out: Path, files: list[Path], rotation: int, n_train: int, threads: int) -> Path:
    """A run directory with the targets of this split (train split first, the test pair last)."""
    run = out / f"r{rotation}_n{n_train}" / "targets_only"
    if (run / "targets" / "index.h5").is_file():
        return run
    train, test = split(files, rotation, n_train)
    src = run.parent / "npz"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for new_id, path in enumerate(train + test, start=1):   # ids in this order: the import puts the last 2 in test
        id_at = DATA_FILE.match(path.name).span(1)
        (src / f"{path.name[:id_at[0]]}{new_id}{path.name[id_at[1]:]}").symlink_to(path.resolve())
    shutil.rmtree(run, ignore_errors=True)
    cli("import", "pyg-botan", str(src), "--out", str(run), "--n-test", "2", threads=threads)
    (run.parent / "split.json").write_text(json.dumps({"train_split": [p.name for p in train],
                                                       "test": [p.name for p in test]}, indent=1))
    return run


def per_configuration(path: Path, model: str) -> dict[str, list[float]]:
    """ρ of the ensemble per test configuration, S and E, of ``model`` in metrics.json / baselines.json."""
    tasks = [t for t in json.loads(path.read_text())["tasks"] if t["model"] == model]
    return {target: list(tasks[0]["scores"][target]["per_configuration"]) for target in ("S", "E")
            if target in tasks[0]["scores"]}


def run_model(model: str, base: Path, n_train: int, args) -> dict[str, list[float]]:
    validation = f"train.validation_fraction={1.0 / (n_train + 1):.6f}"
    seed = f"train.seed={args.seed}"
    if model == "ridge":   # in a network's run directory: its config.yaml holds the split the networks trained on
        network = next(m for m in (*args.models, "botan") if m != "ridge")
        run = base.parent / network
        if not (run / "eval" / "metrics.json").is_file():
            run_model(network, base, n_train, args)
        cli("baselines", str(run), "--no-progress", threads=args.threads)
        return per_configuration(run / "eval" / "baselines.json", "ridge")
    run = base.parent / model
    if not (run / "eval" / "metrics.json").is_file():
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(base, run, ignore=shutil.ignore_patterns("eval", "descriptors.h5"))
        heads = ["model.descriptors=heads"] if model == "botan_heads" else []
        if model == "ntgnn":
            # the quick preset's NT-GNN: from scratch, with the descriptor heads fitted by least squares
            train = [validation, seed, "train.ntgnn.enabled=true", f"train.ntgnn.epochs={args.ntgnn_epochs}",
                     "train.ntgnn.batch_graphs=1", "train.ntgnn.learning_rate=3e-3", "model.descriptors=heads",
                     "train.head_init=least_squares", "train.loss_nodes=A", "train.n_replicas=4",
                     "train.select_on=rho", "train.pretrain.enabled=false"]
            cli("train", str(run), "--model", "ntgnn", "--no-progress", *sets(train), threads=args.threads)
            cli("evaluate", str(run), "--model", "ntgnn", threads=args.threads)
        else:
            weights = [str(args.weights / f"model{k}.pth") for k in (1, 2, 3, 4)]
            cli("import-weights", str(run), *weights, *sets(["train.pretrain.time_index=0",
                                                             "model.separate_decoders=true", *heads]),
                threads=args.threads)
            train = [*RECIPE, validation, seed, f"train.epochs={args.epochs}", *heads]
            cli("train", str(run), "--model", "botan", "--no-progress", *sets(train), threads=args.threads)
            cli("evaluate", str(run), "--model", "botan", threads=args.threads)
    return per_configuration(run / "eval" / "metrics.json", "ntgnn" if model == "ntgnn" else "botan")


def summarise(results: dict, sizes, models) -> tuple[str, dict]:
    table = {}
    lines = ["| n train | " + " | ".join(f"{LABELS[m]} ρ_S" for m in models) + " | "
             + " | ".join(f"{LABELS[m]} ρ_E" for m in models if m != "ntgnn") + " |",
             "|---" * (1 + len(models) + len([m for m in models if m != "ntgnn"])) + "|"]
    for n in sizes:
        cells_s, cells_e = [], []
        for m in models:
            for target, cells in (("S", cells_s), ("E", cells_e)):
                if target == "E" and m == "ntgnn":
                    continue
                values = [v for r in results.get(str(n), {}).values() for v in r.get(m, {}).get(target, [])]
                mean = float(np.mean(values)) if values else math.nan
                se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else math.nan
                table.setdefault(str(n), {}).setdefault(m, {})[target] = {"mean": mean, "se": se, "n": len(values)}
                cells.append(f"{mean:.3f} ± {se:.3f} ({len(values)})" if values else "–")
        lines.append(f"| {n} | " + " | ".join(cells_s + cells_e) + " |")
    return "\n".join(lines), table


def paired(results: dict, sizes, models) -> str:
    """Each network's ρ minus ridge's on the same test configuration: mean ± standard error, and the smallest."""
    rows = ["| n train | model | target | ρ − ρ_ridge (mean ± s.e.) | smallest | configurations |", "|---|---|---|---|---|---|"]
    for n in sizes:
        for m in [m for m in models if m != "ridge"]:
            for target in ("S", "E"):
                d = [a - b for r in results.get(str(n), {}).values() if m in r and "ridge" in r and target in r[m]
                     for a, b in zip(r[m][target], r["ridge"][target])]
                if len(d) > 1:
                    rows.append(f"| {n} | {LABELS[m]} | {target} | {np.mean(d):+.3f} ± "
                                f"{np.std(d, ddof=1) / np.sqrt(len(d)):.3f} | {min(d):+.3f} | {len(d)} |")
    return "\n".join(rows)


def figure(table: dict, sizes, models, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=150)
    for ax, target in zip(axes, ("S", "E")):
        for m in models:
            if target == "E" and m == "ntgnn":
                continue
            pts = [(n, table[str(n)][m][target]) for n in sizes if table.get(str(n), {}).get(m, {}).get(target, {})
                   .get("n")]
            if pts:
                ax.errorbar([n for n, _ in pts], [p["mean"] for _, p in pts], yerr=[p["se"] for _, p in pts],
                            marker="o", capsize=3, label=LABELS[m])
        ax.set_xscale("log")
        ax.minorticks_off()   # the sizes are the ticks; log-scale minor labels ("3 × 10⁰") say nothing
        ax.set_xticks(list(sizes), [str(n) for n in sizes])
        ax.set_xlabel("training configurations")
        ax.set_ylabel(f"ρ({'S_i' if target == 'S' else 'E_ij'}), test")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=SAMPLE / "train",
                   help="folder of the published data set's files isoconfig_N<N>T<T>_<id>_tc<k>.npz, taken in "
                        "the order of their ids (default: the shared sample's 10 configurations)")
    p.add_argument("--weights", type=Path, default=SAMPLE / "initial_model",
                   help="folder of the published weights model1.pth … model4.pth (the BOTAN variants' start)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 7])
    p.add_argument("--rotations", type=int, default=5)
    p.add_argument("--only-rotations", type=int, nargs="+", metavar="R",
                   help="run only these of the rotations 0 … ROTATIONS-1 (to share the work between processes, "
                        "each with its own --out; their results.json merge by rotation)")
    p.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs of the BOTAN variants")
    p.add_argument("--ntgnn-epochs", type=int, default=30)
    p.add_argument("--models", nargs="+", choices=MODELS, default=["ridge", "botan", "botan_heads"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="train.seed: which training-split configuration validates, "
                                                        "the augmentation and the epoch order")
    args = p.parse_args()
    files = sample_files(args.data)
    if any(not 0 <= r < args.rotations for r in args.only_rotations or ()):
        raise SystemExit(f"--only-rotations: each must be in 0 … {args.rotations - 1}")
    if 2 * args.rotations > len(files):
        raise SystemExit(f"--rotations: at most {len(files) // 2} with {len(files)} configurations (distinct test pairs)")
    if max(args.sizes) + 3 > len(files):
        raise SystemExit(f"--sizes: at most {len(files) - 3} training configurations (2 test, 1 validation)")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for rotation in args.only_rotations or range(args.rotations):
        for n in args.sizes:
            key = results.setdefault(str(n), {}).setdefault(str(rotation), {})
            for model in args.models:
                if model in key:
                    continue
                key[model] = run_model(model, imported(args.out, files, rotation, n, args.threads), n, args)
                path.write_text(json.dumps(results, indent=1))
                print(f"rotation {rotation}, n = {n}, {model}: " +
                      ", ".join(f"ρ_{t} {np.mean(v):.3f}" for t, v in key[model].items()), flush=True)
    text, table = summarise(results, args.sizes, args.models)
    text += "\n\n" + paired(results, args.sizes, args.models)
    (args.out / "summary.md").write_text(text + "\n")
    (args.out / "summary.json").write_text(json.dumps(table, indent=1))
    figure(table, args.sizes, args.models, args.out / "data_efficiency.png")
    print(text)


if __name__ == "__main__":
    main()
