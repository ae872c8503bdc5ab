"""Data efficiency on simulated data of the quick preset's kind: ρ against the number of training configurations.

Each RUN given is one simulation (``hpc-botan simulate quick --set simulation.n_configurations=40 --set
simulation.n_train=36`` and ``hpc-botan targets``, one per simulation seed): N = 500, T = 0.64, 8 runs,
7 time points up to τα, 36 configurations in the train split and 4 test configurations.  Every training
size n of ``--sizes`` uses the first n + ``--validation`` configurations of that train split
(``train.max_configurations``), ``--validation`` of which validate, and is scored on the same 4 test
configurations, so the sizes differ only in how much the models learn from; the simulation is done once.

* ``ridge``: the ridge baseline (``hpc-botan baselines``), fitted on the same n configurations;
* ``botan``: the quick preset's BOTAN without descriptor heads or forces (the published networks model1–4 as 4
  replicas, least-squares output layer, 10 epochs at lr 1e-5, selection on validation ρ);
* ``botan_heads``: the quick preset's BOTAN as it ships (the same with ``model.descriptors: heads`` and
  ``model.force_features: true``);
* ``ntgnn``: the quick preset's NT-GNN (from scratch, 30 epochs at lr 3e-3, descriptor and force heads).

Everything goes through the package's commands, each (simulation, size, model) in a run directory of its
own under ``--out`` whose targets are hard links to the simulation's; an existing result is reused, so the
script resumes.  Results: ``OUT/results.json`` (ρ per test configuration, at every time point),
``OUT/summary.md`` (mean ± standard error over simulations × test configurations, at the shortest time
point and at τα, and the paired differences against ridge) and ``OUT/data_efficiency_simulated.png``.

    python benchmarks/data_efficiency_simulated.py RUN_SEED2024 RUN_SEED2025 --out runs/de_sim --sizes 4 8 16 32
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_efficiency import LABELS, cli, figure, paired, sets, summarise  # noqa: E402

MODELS = ("ridge", "botan", "botan_heads", "ntgnn")


def linked_copy(run: Path, dest: Path) -> None:
    """``dest`` with RUN's targets (hard links: nothing is duplicated on disk) and a config.yaml that is RUN's
    simulation with the quick preset's model and training as the package has them now (a simulation made
    with an older preset keeps its data, not its recipe)."""
    import yaml

    from hpc_botan.config import load_config
    from hpc_botan.io.rundir import load_run_config

    dest.mkdir(parents=True)
    config = load_run_config(run).to_dict()
    preset = load_config("quick").to_dict()
    config["model"], config["train"] = preset["model"], preset["train"]
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(run / "targets", dest / "targets", copy_function=os.link,
                    ignore=shutil.ignore_patterns("descriptors.h5", "*.lock"))


def scores(path: Path, model: str) -> dict[str, dict[str, list[float]]]:
    """time (as text) → target → ρ of the ensemble per test configuration, from metrics/baselines.json."""
    out: dict[str, dict[str, list[float]]] = {}
    for task in json.loads(path.read_text())["tasks"]:
        if task["model"] == model:
            for target, s in task["scores"].items():
                out.setdefault(f"{task['time']:.4g}", {})[target] = list(s["per_configuration"])
    return out


def run_model(model: str, run: Path, base: Path, n: int, args) -> dict:
    limit = [f"train.max_configurations={n + args.validation}",
             f"train.validation_fraction={args.validation / (n + args.validation):.6f}", f"train.seed={args.seed}"]
    if model == "ridge":   # in the heads run: its config.yaml holds the split the networks trained on
        botan = base / "botan_heads"
        if not (botan / "eval" / "metrics.json").is_file():
            run_model("botan_heads", run, base, n, args)
        cli("baselines", str(botan), "--no-progress", threads=args.threads)
        return scores(botan / "eval" / "baselines.json", "ridge")
    out = base / model
    if not (out / "eval" / "metrics.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        linked_copy(run, out)
        family = "ntgnn" if model == "ntgnn" else "botan"
        descriptors = ["model.descriptors=none", "model.force_features=false"] if model == "botan" else []
        cli("train", str(out), "--model", family, "--no-progress", *sets([*limit, *descriptors]), threads=args.threads)
        cli("evaluate", str(out), "--model", family, threads=args.threads)
    return scores(out / "eval" / "metrics.json", "ntgnn" if model == "ntgnn" else "botan")


def at_time(results: dict, time_key: str) -> dict:
    """results[n][simulation][model][target] (lists over test configurations) at one time point."""
    return {n: {sim: {m: by_time.get(time_key, {}) for m, by_time in models.items()} for sim, models in sims.items()}
            for n, sims in results.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="simulated run directories with targets (one per seed)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--validation", type=int, default=4, help="validation configurations at every size")
    p.add_argument("--models", nargs="+", choices=MODELS, default=["ridge", "botan", "botan_heads"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="train.seed")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for run in args.runs:
        if not (run / "targets" / "index.h5").is_file():
            raise SystemExit(f"{run}: no targets/index.h5 (run 'hpc-botan simulate' and 'hpc-botan targets' first)")
        for n in args.sizes:
            for model in args.models:
                key = results.setdefault(str(n), {}).setdefault(run.name, {})
                if model in key:
                    continue
                key[model] = run_model(model, run, args.out / run.name / f"n{n}", n, args)
                path.write_text(json.dumps(results, indent=1))
                print(f"{run.name}, n = {n}, {model}: done", flush=True)
    times = sorted({t for sims in results.values() for ms in sims.values() for m in ms.values() for t in m},
                   key=float)
    text = []
    for label, time_key in (("shortest time point", times[0]), ("τα", times[-1])):
        sub = at_time(results, time_key)
        table, summary = summarise(sub, args.sizes, args.models)
        text += [f"### t = {time_key} ({label})", "", table, "", paired(sub, args.sizes, args.models), ""]
        (args.out / f"summary_t{time_key}.json").write_text(json.dumps(summary, indent=1))
        figure(summary, args.sizes, args.models, args.out / f"data_efficiency_simulated_t{time_key}.png")
    (args.out / "summary.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print("models:", ", ".join(LABELS[m] for m in args.models))


if __name__ == "__main__":
    main()
