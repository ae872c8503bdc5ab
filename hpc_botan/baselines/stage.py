"""The baselines stage: simple models fitted on the networks' training data, scored as evaluation scores.

For every temperature and time point of the targets index, three models are fitted on the train part of
the train split (the configurations the networks train on: ``training_split`` with
``train.validation_fraction`` and ``train.seed``) and scored on the test split, or on the validation part
with ``split="validation"``:

``ridge``
    S_i from the coarse-grained radial descriptors of particle i (:mod:`hpc_botan.physics.descriptors`, 184 features),
    fitted on type-A particles; E_ij from the pair descriptors [D_i + D_j, |D_i − D_j|, r_ij(0)]
    (369 features), fitted on the pairs that are scored (A–A, |r_ij(0)| < 1.35, each pair once).
    Ridge regression on standardised features; the penalty is the one with the lowest mean squared
    error on the validation part, per time point, and the model is *not* refitted on train +
    validation, so that it has seen exactly the configurations the networks were trained on (and a
    ``--split validation`` score is from a model that never saw the validation part).
``density``
    S_i as a linear function (least squares) of the Gaussian-weighted local density of particle i
    (:func:`hpc_botan.physics.descriptors.local_density`, width 1 σ), fitted on type-A particles.
``distance``
    E_ij as the train-set mean of E_ij at the same initial distance r_ij(0) and species pair (A–A, A–B,
    B–B): means in 0.05 σ bins of r_ij(0), interpolated linearly between the bins' mean distances,
    fitted on every edge.

Scores are those of ``hpc-botan evaluate`` (:func:`hpc_botan.evaluate.stage.score_target` with one
"replica"): Pearson ρ per configuration on type-A particles (S) and on the edge mask (E), averaged over
configurations, pooled, and the noise ceiling.  Data sets without edge targets (``has_edge_targets``
false, e.g. GlassBench imports) get the S baselines only.

Writes ``RUN_DIR/eval/baselines.json`` (the schema of ``eval/metrics.json``, plus a ``fit`` record per
task and the descriptor settings) and ``RUN_DIR/eval/baselines.csv`` (the columns of ``rho.csv``);
``baselines-validation.*`` with ``split="validation"``.  Both atomically.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hpc_botan.baselines.ridge import RidgeModel, RidgeStatistics, fit_ridge, select_penalty, sum_statistics
from hpc_botan.config import Config
from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.errors import UserError
from hpc_botan.io.durable import up_to_date, write_text_atomic
from hpc_botan.io.rundir import RunLayout
from hpc_botan.io.shards import read_configuration
from hpc_botan.metrics import rho_csv, score_target
from hpc_botan.physics.descriptors import (
    DescriptorSettings,
    coarse_grained_descriptors,
    local_density,
    n_pair_features,
    neighbour_distances,
    pair_distances,
    pair_features,
)
from hpc_botan.plan.targets import index_path, temperatures_and_times
from hpc_botan.plan.tasks import training_split
from hpc_botan.stage import Stage

log = logging.getLogger("hpc_botan.baselines")

MODELS = ("ridge", "density", "distance")
SPLITS = ("test", "validation")

#: Penalty used when the train split has no validation part to choose one (per sample, standardised
#: features; small, because a fit has thousands of samples per feature).
FALLBACK_PENALTY = 1e-3
#: Width (σ) of the Gaussian of the local density (mostly the first shell), and the bins of r_ij(0).
DENSITY_WIDTH = 1.0
DISTANCE_BIN = 0.05
#: Arrays read from the targets index for each configuration.
ARRAYS = ("species", "positions0", "box", "times", "edge_index", "edge_attr", "node_mask", "edge_mask",
          "propensity", "pair_change", "propensity_reliability", "pair_change_reliability")


@dataclass
class DistanceStatistics:
    """Sums of E_ij (per time point) and of r_ij(0) in bins of r_ij(0), per species pair (AA, AB, BB)."""

    n_bins: int
    n_targets: int
    bin_width: float = DISTANCE_BIN
    count: np.ndarray = field(default=None)   # (3, B)
    sum_r: np.ndarray = field(default=None)   # (3, B)
    sum_y: np.ndarray = field(default=None)   # (3, B, T)

    def __post_init__(self):
        self.count = np.zeros((3, self.n_bins)) if self.count is None else self.count
        self.sum_r = np.zeros((3, self.n_bins)) if self.sum_r is None else self.sum_r
        self.sum_y = np.zeros((3, self.n_bins, self.n_targets)) if self.sum_y is None else self.sum_y

    def add(self, pair_species: np.ndarray, distances: np.ndarray, targets: np.ndarray) -> None:
        """Add P pairs: species code (P,) (0 AA, 1 AB, 2 BB), r_ij(0) (P,) σ, targets (P, T)."""
        bins = np.minimum((distances / self.bin_width).astype(np.int64), self.n_bins - 1)
        flat = pair_species * self.n_bins + bins
        size = 3 * self.n_bins
        self.count += np.bincount(flat, minlength=size).reshape(3, -1)
        self.sum_r += np.bincount(flat, weights=distances, minlength=size).reshape(3, -1)
        for t in range(self.n_targets):
            self.sum_y[:, :, t] += np.bincount(flat, weights=targets[:, t], minlength=size).reshape(3, -1)

    def predict(self, pair_species: np.ndarray, distances: np.ndarray, t: int) -> np.ndarray:
        """The binned train mean of target t at each pair's r_ij(0), interpolated; (P,)."""
        out = np.empty(len(distances))
        overall = self.sum_y[:, :, t].sum() / max(self.count.sum(), 1.0)
        for code in range(3):
            sel = pair_species == code
            filled = self.count[code] > 0
            if not sel.any():
                continue
            if not filled.any():   # a species pair never seen in training: the overall mean
                out[sel] = overall
                continue
            centres = self.sum_r[code, filled] / self.count[code, filled]
            means = self.sum_y[code, filled, t] / self.count[code, filled]
            out[sel] = np.interp(distances[sel], centres, means)
        return out


def _pair_species(species: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
    return species[edge_index[0]].astype(np.int64) + species[edge_index[1]].astype(np.int64)


def _catalog_ids(index: Path, split: str, temperature: float) -> np.ndarray:
    # the dataset's own catalog order, so that the validation indices mean what they mean to the networks

    return np.asarray(TargetsDataset(index, split=split, temperature=temperature).catalog["id"], dtype=np.int64)


def _split_ids(index: Path, cfg: Config, temperature: float, split: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit ids, validation ids, evaluated ids) of one temperature."""

    train_ids = _catalog_ids(index, "train", temperature)
    if len(train_ids) == 0:
        raise UserError(f"{index}: no train configurations at T = {temperature}; nothing to fit the baselines on")
    fit_idx, val_idx = training_split(len(train_ids), cfg.train)
    fit_ids, val_ids = train_ids[fit_idx], train_ids[val_idx]
    if split == "test":
        eval_ids = _catalog_ids(index, "test", temperature)
        if len(eval_ids) == 0:
            raise UserError(f"{index}: no test configurations at T = {temperature} (all are in the train "
                            "split; import with --n-test K, or lower simulation.n_train)")
    elif split == "validation":
        if len(val_ids) == 0:
            raise UserError(f"train.validation_fraction = {cfg.train.validation_fraction}: no validation "
                            "configurations")
        eval_ids = val_ids
    else:
        raise UserError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    return fit_ids, val_ids, eval_ids


@dataclass
class _Inputs:
    """What the models see of one configuration (everything in σ)."""

    conf_id: int
    data: dict[str, Any]          # the arrays read from the index
    descriptors: np.ndarray       # (N, F) coarse-grained shell densities
    density: np.ndarray           # (N,) σ⁻³
    has_edges: bool


def _inputs(index: Path, conf_id: int, settings: DescriptorSettings, density_width: float) -> _Inputs:
    data = read_configuration(index, conf_id, ARRAYS)
    pos, species, box = data["positions0"], data["species"], data["box"]
    pairs = neighbour_distances(pos, box, max(settings.reach(), 3.0 * density_width))
    return _Inputs(conf_id, data, coarse_grained_descriptors(pos, species, box, settings, pairs=pairs),
                   local_density(pos, box, density_width, pairs=pairs), "pair_change" in data)


def _scored_pairs(inp: _Inputs, once: bool) -> np.ndarray:
    """Indices of the scored edges (the edge mask), each unordered pair once if ``once``."""
    edge_index, mask = inp.data["edge_index"], inp.data["edge_mask"]
    if once:
        mask = mask & (edge_index[0] < edge_index[1])
    return np.flatnonzero(mask)


def _edge_pair_features(inp: _Inputs, edges: np.ndarray) -> np.ndarray:
    ei = inp.data["edge_index"][:, edges]
    return pair_features(inp.descriptors, ei, pair_distances(inp.data["edge_attr"][edges]))


def _progress(items, desc: str, show: bool):

    return tqdm(items, desc=desc, unit="conf", disable=not show, mininterval=2.0, leave=False)


def _fitted_settings(index: Path, ids: np.ndarray) -> tuple[DescriptorSettings, float]:
    """Descriptor settings and density width that fit the smallest box of ``ids`` (all share one feature set)."""
    boxes = np.array([read_configuration(index, int(c), ["box"])["box"] for c in ids])
    smallest = boxes.min(axis=0)
    try:
        settings = DescriptorSettings().fitted_to(smallest)
    except ValueError as exc:
        raise UserError(f"{index}: {exc}") from None
    if settings != DescriptorSettings():
        log.warning("baselines: box %s is small: shells up to %.2f σ and coarse-graining lengths %s only",
                    smallest.tolist(), max(settings.shell_centres), list(settings.lengths))
    # the density's neighbour search reaches 3 widths, which must stay inside half the box
    return settings, min(DENSITY_WIDTH, 0.99 * 0.5 * float(smallest.min()) / 3.0)


def _fit_temperature(index: Path, fit_ids, val_ids, settings, density_width, cache: dict, show_progress: bool,
                     temperature: float, n_times: int) -> dict[str, Any]:
    """Pass over the training configurations: sufficient statistics, then every model at every time point."""
    n_desc = settings.n_features
    node_stats: dict[int, RidgeStatistics] = {}
    edge_stats: dict[int, RidgeStatistics] = {}
    density_stats = RidgeStatistics(1, n_times)
    distance_stats = DistanceStatistics(int(np.ceil(2.0 / DISTANCE_BIN)), n_times)
    has_edges = True
    fit_set = set(int(c) for c in fit_ids)
    for cid in _progress([int(c) for c in (*fit_ids, *val_ids)], f"baselines T={temperature:g} fit", show_progress):
        inp = cache.pop(cid, None) or _inputs(index, cid, settings, density_width)
        fitted = cid in fit_set
        a_particles = inp.data["species"] == 0
        s = inp.data["propensity"].T                                          # (N, T)
        node_stats[cid] = RidgeStatistics(n_desc, n_times).add(inp.descriptors[a_particles], s[a_particles])
        if fitted:
            density_stats.add(inp.density[a_particles, None], s[a_particles])
        has_edges &= inp.has_edges
        if inp.has_edges:
            pairs = _scored_pairs(inp, once=True)
            e = inp.data["pair_change"].T                                     # (E, T)
            edge_stats[cid] = RidgeStatistics(n_pair_features(n_desc), n_times).add(_edge_pair_features(inp, pairs),
                                                                                    e[pairs])
            if fitted:
                ei = inp.data["edge_index"]
                distance_stats.add(_pair_species(inp.data["species"], ei), pair_distances(inp.data["edge_attr"]), e)
        if cid in cache.get("_keep", ()):
            cache[cid] = inp
    fit_node = sum_statistics(node_stats[int(c)] for c in fit_ids)
    models: dict[str, Any] = {"density": fit_ridge(density_stats, 0.0), "has_edges": has_edges,
                              "distance": distance_stats if has_edges else None}

    def ridge(stats_of: dict[int, RidgeStatistics], fit: RidgeStatistics) -> tuple[RidgeModel, np.ndarray]:
        if len(val_ids) == 0:
            log.warning("baselines: T = %g has no validation configurations to choose the ridge penalty; "
                        "using %g", temperature, FALLBACK_PENALTY)
            return fit_ridge(fit, FALLBACK_PENALTY), np.full(n_times, FALLBACK_PENALTY)
        return select_penalty(fit, sum_statistics(stats_of[int(c)] for c in val_ids))

    models["ridge_S"] = ridge(node_stats, fit_node)
    if has_edges:
        models["ridge_E"] = ridge(edge_stats, sum_statistics(edge_stats[int(c)] for c in fit_ids))
    return models


def _predict_temperature(index: Path, eval_ids, settings, density_width, models, cache: dict,
                         show_progress: bool, temperature: float) -> list[dict[str, Any]]:
    """Pass over the evaluated configurations: every model's predictions at every time point."""
    out = []
    for cid in _progress([int(c) for c in eval_ids], f"baselines T={temperature:g} predict", show_progress):
        inp = cache.pop(cid, None) or _inputs(index, cid, settings, density_width)
        d = inp.data
        n_times = d["propensity"].shape[0]
        rec: dict[str, Any] = {
            "conf_id": cid, "species": d["species"], "node_mask": d["node_mask"], "edge_mask": d["edge_mask"],
            "S": d["propensity"], "E": d.get("pair_change"),
            "rel_S": d.get("propensity_reliability", np.full(n_times, np.nan)),
            "rel_E": d.get("pair_change_reliability", np.full(n_times, np.nan)),
            "ridge_S": models["ridge_S"][0].predict(inp.descriptors).T,                       # (T, N)
            "density_S": models["density"].predict(inp.density[:, None]).T,                 # (T, N)
        }
        if models["has_edges"]:
            # E predictions on the scored pairs only (NaN elsewhere, never read): the pair features of
            # every edge of a large configuration would take gigabytes
            pairs = _scored_pairs(inp, once=False)
            n_edges = d["edge_index"].shape[1]
            ridge_e = np.full((n_times, n_edges), np.nan)
            ridge_e[:, pairs] = models["ridge_E"][0].predict(_edge_pair_features(inp, pairs)).T
            codes = _pair_species(d["species"], d["edge_index"][:, pairs])
            r0 = pair_distances(d["edge_attr"][pairs])
            distance_e = np.full((n_times, n_edges), np.nan)
            for t in range(n_times):
                distance_e[t, pairs] = models["distance"].predict(codes, r0, t)
            rec["ridge_E"], rec["distance_E"] = ridge_e, distance_e
        out.append(rec)
    return out


def _score(records, key: str, target: str, t: int) -> dict[str, Any]:

    mask = "node_mask" if target == "S" else "edge_mask"
    return score_target([[r[key][t] for r in records]], [r[target][t] for r in records],
                        [r[mask] for r in records], [float(r[f"rel_{target}"][t]) for r in records]).as_dict()


def run_baselines(run_dir: str | Path, cfg: Config, split: str = "test", *,
                  show_progress: bool = False) -> list[dict[str, Any]]:
    """Fit and score every baseline at every (T, t) of the targets index; write the eval/baselines files.

    Args:
        run_dir: the run directory (its ``targets/index.h5`` must exist).
        cfg: the run's configuration (``train.validation_fraction``, ``train.seed``).
        split: "test", or "validation" (the validation part of the train split).
        show_progress: a progress bar over configurations.

    Returns:
        One JSON-ready dict per (model, T, t) in the schema of ``eval/metrics.json`` tasks, ordered by
        model, temperature, time index.
    """

    if split not in SPLITS:
        raise UserError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    run_dir = Path(run_dir)
    index = index_path(run_dir)
    grid = temperatures_and_times(index)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODELS}
    descriptors_used: dict[str, Any] = {}
    for temperature, times in grid.items():
        fit_ids, val_ids, eval_ids = _split_ids(index, cfg, temperature, split)
        settings, density_width = _fitted_settings(index, np.concatenate([fit_ids, val_ids, eval_ids]))
        descriptors_used[f"T{temperature:.3f}"] = {**settings.as_dict(), "density_width": density_width}
        # validation configurations evaluated with --split validation are read once, kept between passes
        cache: dict[Any, Any] = {"_keep": set(int(c) for c in eval_ids)}
        models = _fit_temperature(index, fit_ids, val_ids, settings, density_width, cache, show_progress,
                                  temperature, len(times))
        cache.pop("_keep")
        records = _predict_temperature(index, eval_ids, settings, density_width, models, cache, show_progress,
                                       temperature)
        for k, time in enumerate(times):
            common = {"temperature": float(temperature), "time_index": k,
                      # the float32 time of the evaluation's graphs, so that both files join on it
                      "time": float(np.float32(time)), "n_configurations": len(records),
                      "configurations": [r["conf_id"] for r in records], "replica_files": []}
            fit_record = {"train_configurations": [int(c) for c in fit_ids],
                          "validation_configurations": [int(c) for c in val_ids]}
            tag = f"T{temperature:.3f}/t{k:02d}"
            ridge_scores = {"S": _score(records, "ridge_S", "S", k)}
            penalties = {"S": float(models["ridge_S"][1][k])}
            if models["has_edges"]:
                ridge_scores["E"] = _score(records, "ridge_E", "E", k)
                penalties["E"] = float(models["ridge_E"][1][k])
            results["ridge"].append({"task": f"ridge/{tag}", "model": "ridge", **common, "scores": ridge_scores,
                                     "fit": {**fit_record, "penalty": penalties}})
            results["density"].append({"task": f"density/{tag}", "model": "density", **common,
                                       "scores": {"S": _score(records, "density_S", "S", k)}, "fit": fit_record})
            if models["has_edges"]:
                results["distance"].append({"task": f"distance/{tag}", "model": "distance", **common,
                                            "scores": {"E": _score(records, "distance_E", "E", k)},
                                            "fit": fit_record})
            log.info("baselines: T = %g, t = %g: rho_S ridge %.3f, density %.3f%s", temperature, time,
                     ridge_scores["S"]["ensemble"], results["density"][-1]["scores"]["S"]["ensemble"],
                     f"; rho_E ridge {ridge_scores['E']['ensemble']:.3f}, distance "
                     f"{results['distance'][-1]['scores']['E']['ensemble']:.3f}" if models["has_edges"] else "")
    tasks = [r for m in MODELS for r in results[m]]
    out = RunLayout(run_dir).eval
    suffix = "" if split == "test" else f"-{split}"
    write_text_atomic(out / f"baselines{suffix}.json",
                      json.dumps({"split": split, "tasks": tasks, "descriptors": descriptors_used}, indent=1))
    write_text_atomic(out / f"baselines{suffix}.csv", rho_csv(tasks))
    return tasks


class BaselinesStage(Stage):
    """Ridge, local-density and distance baselines fitted and scored like the networks (``eval/baselines.json``)."""

    name = "baselines"
    launch = "finish"
    summary = "ridge regression on radial descriptors, density and distance baselines (eval/baselines.json)"

    def done(self, run_dir: Path, cfg: Config) -> bool:
        layout = RunLayout(run_dir)
        return up_to_date(layout.baselines, [layout.index])

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> list[dict[str, Any]]:
        return run_baselines(run_dir, cfg)
