"""One configuration at one time, cut to a slab: the data behind the map figures (Figs. 1a–b, 2a–e).

The paper shows a cross-section 11.1 < z < 11.9 (thickness 0.8 σ) of its 15.06 σ box, and
10.9 < z < 12.1 (1.2 σ) for the displacement field.  Our default slab is centred in the box
(z0 = L_z / 2) with those thicknesses, so a box of any size gets the same kind of cut; both are
options.  Distances across the slab boundary use the minimum image, so a slab may wrap around z = 0.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.data.descriptors import run_descriptors
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import read_catalog, read_configuration
from hpc_botan.plan.networks import finished_replicas, replica_predictions
from hpc_botan.plan.targets import index_path, temperatures_and_times
from hpc_botan.plan.tasks import evaluated_tasks
from hpc_botan.plots.common import check_time_index, default_time_index, run_tau_alpha, targets_index

log = logging.getLogger("hpc_botan.plots")

#: Slab thickness (σ) of the pair and propensity maps (paper: 11.1 < z < 11.9).
MAP_THICKNESS = 0.8
#: Slab thickness (σ) of the displacement field (paper: 10.9 < z < 12.1).
DISPLACEMENT_THICKNESS = 1.2
#: Pairs drawn as segments: A–A closer than this at t = 0 (the evaluated pairs), σ.
FIRST_SHELL = 1.35


def slab_mask(positions: np.ndarray, box: np.ndarray, z0: float, thickness: float, axis: int = 2) -> np.ndarray:
    """Particles whose coordinate along ``axis`` lies within thickness / 2 of ``z0`` (minimum image).

    Args:
        positions: (N, 3) positions, σ (wrapped or not).
        box: (3,) box lengths, σ.
        z0: slab centre, σ.
        thickness: full slab thickness, σ.

    Returns:
        (N,) bool.
    """
    length = float(box[axis])
    dz = np.asarray(positions)[:, axis] - z0
    dz -= length * np.round(dz / length)
    return np.abs(dz) < thickness / 2.0


def aa_pairs(species: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray, max_distance: float = FIRST_SHELL
             ) -> tuple[np.ndarray, np.ndarray]:
    """A–A pairs, each once (source < destination), closer than ``max_distance`` at t = 0.

    Args:
        species: (N,) 0 for A, 1 for B.
        edge_index: (2, E) source i, destination j (both directions present).
        edge_attr: (E, 3) r_j − r_i at t = 0, σ.

    Returns:
        (mask (E,) bool, r_ij(0) (E,) of every edge, σ).
    """
    src, dst = edge_index
    r = np.linalg.norm(edge_attr, axis=1)
    return (src < dst) & (species[src] == 0) & (species[dst] == 0) & (r < max_distance), r


def slab_pairs(species: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray, in_slab: np.ndarray,
               max_distance: float = FIRST_SHELL) -> np.ndarray:
    """Edges to draw: :func:`aa_pairs` with both ends in the slab (``in_slab`` (N,) from :func:`slab_mask`); (E,) bool."""
    keep, _ = aa_pairs(species, edge_index, edge_attr, max_distance)
    return keep & in_slab[edge_index[0]] & in_slab[edge_index[1]]


@dataclass
class Snapshot:
    """Targets (and optionally predictions) of one configuration at one time point.

    Shapes: N particles, E directed edges.  Positions wrapped into [0, L), σ.
    """

    conf_id: int
    temperature: float
    split: str
    time_index: int
    time: float                      # τ
    box: np.ndarray                  # (3,)
    positions: np.ndarray            # (N, 3)
    species: np.ndarray              # (N,)
    edge_index: np.ndarray           # (2, E)
    edge_attr: np.ndarray            # (E, 3) r_j − r_i, σ
    propensity: np.ndarray           # (N,) S_i, σ
    pair_change: np.ndarray | None   # (E,) E_ij, σ (None without trajectories)
    local_displacement: np.ndarray | None  # (N, 3), σ
    #: model ("botan", "ntgnn") → (S_i (N,), E_ij (E,)): ensemble mean of its finished replicas
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: model → number of replicas averaged
    n_replicas: dict[str, int] = field(default_factory=dict)

    def slab(self, z0: float, thickness: float, figure: str) -> np.ndarray:
        """(N,) bool: :func:`slab_mask` of this snapshot; a :class:`UserError` naming ``figure`` when it is empty."""
        in_slab = slab_mask(self.positions, self.box, z0, thickness)
        if not in_slab.any():
            raise UserError(f"{figure}: no particle in the slab |z − {z0:g}| < {thickness / 2:g}")
        return in_slab

    def slab_title(self, z0: float, thickness: float) -> str:
        """Figure title: which configuration, when, and which slab."""
        return (f"T = {self.temperature:g}, t = {self.time:g}, configuration {self.conf_id} ({self.split}), "
                f"slab |z − {z0:.2f}| < {thickness / 2:g}")


def choose_configuration(catalog: np.ndarray, temperature: float | None, conf_id: int | None) -> tuple[int, float, str]:
    """(configuration id, temperature, split) to show.

    Default: the lowest temperature, and its first test configuration (its first configuration of
    any split when it has no test split).  ``conf_id`` is a global id (``index.h5`` catalog ``id``).
    """
    if conf_id is not None:
        rows = catalog[catalog["id"] == conf_id]
        if rows.size == 0:
            raise UserError(f"--configuration {conf_id}: no such configuration (ids {int(catalog['id'].min())} … "
                            f"{int(catalog['id'].max())})")
        row = rows[0]
        if temperature is not None and not np.isclose(row["temperature"], temperature):
            raise UserError(f"--configuration {conf_id} is at T = {row['temperature']:g}, not {temperature:g}")
        return int(row["id"]), float(row["temperature"]), ("train", "test")[int(row["split"])]
    temps = sorted(set(float(t) for t in catalog["temperature"]))
    if temperature is None:
        temperature = temps[0]
    at_t = catalog[np.isclose(catalog["temperature"], temperature)]
    if at_t.size == 0:
        raise UserError(f"--temperature {temperature:g}: not in the targets (temperatures {temps})")
    test = at_t[at_t["split"] == 1]
    row = test[0] if test.size else at_t[0]
    return int(row["id"]), float(row["temperature"]), ("train", "test")[int(row["split"])]


def model_view(run_dir: Path, cfg, model: str, temperature: float, time_index: int):
    """The evaluated task (:func:`hpc_botan.train.stage.evaluated_tasks`) of ``model`` at (T, t), or None."""
    for task in evaluated_tasks(cfg, temperatures_and_times(index_path(run_dir)), (model,)):
        if np.isclose(task.temperature, temperature) and task.time_index == time_index:
            return task
    return None


def finished_model_files(run_dir: Path, cfg, model: str, temperature: float, time_index: int) -> list[Path]:
    """Checkpoint files of the finished replicas of the BOTAN fine-tune (``model="botan"``) or NT-GNN task."""
    task = model_view(run_dir, cfg, model, temperature, time_index)
    return finished_replicas(run_dir, task, cfg.train.n_replicas) if task is not None else []


def trained_time_indices(run_dir: Path, cfg, model: str, temperature: float, n_times: int) -> list[int]:
    """Time indices at ``temperature`` with at least one finished replica of ``model``."""
    return [k for k in range(n_times) if finished_model_files(run_dir, cfg, model, temperature, k)]


def load_snapshot(run_dir: str | Path, *, temperature: float | None = None, conf_id: int | None = None,
                  time_index: int | None = None, predict: bool = True) -> Snapshot:
    """Targets of one configuration at one time and, with ``predict``, the ensemble-mean predictions.

    Default time index: with ``predict``, among the time points with a finished BOTAN fine-tune, the
    one closest to τα from below (:func:`default_time_index`); without, among all time points.
    Raises UserError when the chosen inputs do not exist.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    index = targets_index(run_dir)
    cid, temp, split = choose_configuration(read_catalog(index), temperature, conf_id)
    data = read_configuration(index, cid, ["species", "positions0", "box", "times", "edge_index", "edge_attr",
                                           "propensity", "pair_change", "local_displacement"])
    times = data["times"]
    tau = run_tau_alpha(cfg, temp)
    if time_index is not None:   # a bad index is reported before anything slow (torch) is imported
        check_time_index(time_index, len(times), f"configuration {cid}")
    if predict:
        trained = trained_time_indices(run_dir, cfg, "botan", temp, len(times))
        if not trained:
            raise UserError(f"no finished BOTAN fine-tune replicas at T = {temp:g} under {run_dir / 'train'}; run "
                            f"'hpc-botan train {run_dir}' first")
        if time_index is None:
            k = trained[default_time_index(times[trained], tau)]
        else:
            k = check_time_index(time_index, len(times), f"configuration {cid}")
            if k not in trained:
                raise UserError(f"--time-index {time_index}: BOTAN is not trained at t = {times[k]:g} (T = {temp:g}); "
                                f"trained time indices: {', '.join(map(str, trained))}")
    else:
        k = default_time_index(times, tau) if time_index is None else \
            check_time_index(time_index, len(times), f"configuration {cid}")
    box = np.asarray(data["box"], dtype=np.float64)
    snap = Snapshot(
        conf_id=cid, temperature=temp, split=split, time_index=k, time=float(times[k]), box=box,
        positions=np.mod(data["positions0"], box), species=data["species"], edge_index=data["edge_index"],
        edge_attr=data["edge_attr"], propensity=data["propensity"][k],
        pair_change=data["pair_change"][k] if "pair_change" in data else None,
        local_displacement=data["local_displacement"][k] if "local_displacement" in data else None)
    if predict:
        snap = _with_predictions(run_dir, cfg, index, snap)
    return snap


def _with_predictions(run_dir: Path, cfg, index: Path, snap: Snapshot) -> Snapshot:
    """``snap`` with the ensemble-mean predictions of the BOTAN fine-tune and (if trained) NT-GNN replicas."""
    data = TargetsDataset(index, temperature=snap.temperature, time_indices=[snap.time_index],
                          descriptors=run_descriptors(index, cfg))
    row = int(np.nonzero(data.catalog["id"] == snap.conf_id)[0][0])
    graph = data[row]
    predictions, counts = {}, {}
    for model in ("botan", "ntgnn"):
        files = finished_model_files(run_dir, cfg, model, snap.temperature, snap.time_index)
        if not files:
            continue
        output = model_view(run_dir, cfg, model, snap.temperature, snap.time_index).output
        per_replica = replica_predictions(cfg, files, [graph], output)   # R × 1 × (node (N, 1), edge (E, 1))
        predictions[model] = (np.mean([rep[0][0][:, 0] for rep in per_replica], axis=0),
                              np.mean([rep[0][1][:, 0] for rep in per_replica], axis=0))
        counts[model] = len(files)
        log.info("plots: %s ensemble of %d replica(s) on configuration %d", model, len(files), snap.conf_id)
    return replace(snap, predictions=predictions, n_replicas=counts)
