"""Prediction of S_i(t) and E_ij(t) for static structures that were never simulated.

A model directory is a run directory with ``config.yaml`` and ``train/<task>/replica-XX/``.  For
each structure this module

1. builds exactly the graph of the targets stage (pairs closer than
   :data:`~hpc_botan.physics.configuration_targets.GRAPH_CUTOFF` at t = 0, both directions, edge vector r_j − r_i
   with minimum image, sorted by (i, j)) and the node feature x = species as a float;
2. checks the structure against what the models were trained on (density, composition,
   temperature) and records every mismatch as a warning;
3. runs every finished replica (``best.pt``, the validation-selected weights) of every trained
   task at the chosen temperature — BOTAN fine-tuned tasks give S_i and E_ij, NT-GNN tasks S_i
   only (their edge output is never trained) — and keeps the replicas' predictions, their mean
   and their standard deviation (over replicas, ddof = 0, so 0 with one replica);
4. writes everything to one HDF5 file (and optionally two CSV files), atomically.

Output layout (``FILE``; all lengths σ, times τ)::

    /                                 attrs: format, model_dir, hpc_botan_version, models, n_structures
    /structures/00000                 attrs: source, frame, file_temperature (NaN if none), temperature
                                      (the trained temperature whose models were used), density,
                                      b_fraction, n_particles, n_edges, warnings (strings)
        positions  (N, 3) float64     wrapped into [0, L)
        species    (N,) int8          0 = A, 1 = B
        ids        (N,) int64         the file's particle ids (0 … N−1 where it has none)
        box        (3,) float64
        edge_index (2, E) int64       (source i, destination j), sorted
        r0         (E,) float32       |r_ij(0)|
        predictions/<model>/T<T:.3f>/t<k:02d>   attrs: time, time_index, temperature, task, replica_files
            S_mean (N,) float32, S_std (N,), S_replicas (R, N)
            E_mean (E,) float32, E_std (E,), E_replicas (R, E)      (botan only)
"""
from __future__ import annotations

import contextlib
import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import h5py
import numpy as np
import torch
from tqdm import tqdm

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path
from hpc_botan.io.hdf5_files import new_hdf5_file
from hpc_botan.io.output_paths import csv_paths
from hpc_botan.io.structures import Structure
from hpc_botan.model.bounded_memory import chunk_edges_for, held_bytes
from hpc_botan.model.registry import MODELS, registered_model
from hpc_botan.physics.configuration_targets import GRAPH_CUTOFF, structure_graph
from hpc_botan.physics.descriptors import DescriptorSettings, coarse_grained_descriptors
from hpc_botan.plan.world import prediction_memory_bytes
from hpc_botan.predict.domains import MpiHalo, assemble_edges, domain_graph, gather_to_root, slabs_for
from hpc_botan.version import __version__

log = logging.getLogger("hpc_botan.predict")

PREDICTIONS_FORMAT = "hpc_botan-predictions-1"
#: The registered model families (hpc_botan.model.registry), in the order a run trains them.
MODEL_FAMILIES = tuple(MODELS)
#: Relative difference of the number density from the trained one beyond which a structure is flagged.
DENSITY_TOLERANCE = 0.02
#: The training mixture's B fraction (Kob–Andersen 80:20) and how far a structure's may be from it.
TRAINING_B_FRACTION = 0.2
B_FRACTION_TOLERANCE = 0.05
#: Temperatures closer than this are the same temperature (files print 0.44 as 0.4400000001 …).
TEMPERATURE_TOLERANCE = 1e-6
#: Pairs closer than this (σ) mean duplicated or overlapping particles (a broken file): a KA
#: liquid never brings two particles within 0.6 σ, where the repulsion already exceeds 10² ε.
OVERLAP_DISTANCE = 0.1

PARTICLE_COLUMNS = ["structure", "source", "frame", "particle", "id", "species", "x", "y", "z", "model",
                    "temperature", "time_index", "time", "S_mean", "S_std"]
PAIR_COLUMNS = ["structure", "source", "frame", "edge", "i", "j", "id_i", "id_j", "r0", "model", "temperature",
                "time_index", "time", "E_mean", "E_std"]


@dataclass(frozen=True)
class TrainedTask:
    """One trained task and its finished replicas."""

    name: str               # e.g. botan/finetune/T0.440/t00
    model: str              # botan | ntgnn
    temperature: float
    time_index: int
    time: float             # τ
    replica_files: tuple[str, ...]   # the replicas' model files, relative to the run directory
    output: int = 0         # the networks' output column of this time point (multi_time: > 0)
    trained_temperatures: tuple[float, ...] = ()   # the temperatures the networks learnt from

    @property
    def predicts_edges(self) -> bool:
        """Whether the family trains its edge output (NT-GNN, p = 1, does not: only BOTAN's E_ij are
        predictions)."""
        return registered_model(self.model).learns_edges


class Networks(Protocol):
    """What runs the trained networks: checkpoints of a run directory, or an exported model."""

    def predict(self, tasks: Sequence[TrainedTask], data) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each task, its replicas' (node (R, N), edge (R, E)) float32 predictions (σ) on one graph
        (:class:`GraphInput`)."""


@dataclass
class TrainedModels:
    """The finished tasks of a model source, what they were trained on, and what runs them."""

    source: Path            # the run directory or the exported-model file
    density: float          # the training number density, σ⁻³
    tasks: list[TrainedTask]
    networks: Networks
    #: the radial descriptors the networks' descriptor heads read (None: networks without them)
    descriptor_settings: DescriptorSettings | None = None
    #: memory (GB) a prediction process may use (the run's predict.memory_gb; None: from the free memory)
    memory_gb: float | None = None
    #: the networks' width W (the largest, where they differ): what the edge chunks are sized for
    width: int = 64

    @property
    def temperatures(self) -> list[float]:
        return sorted({t.temperature for t in self.tasks})

    def at(self, temperature: float) -> list[TrainedTask]:
        return [t for t in self.tasks if math.isclose(t.temperature, temperature, abs_tol=TEMPERATURE_TOLERANCE)]


def check_families(source: Path, tasks: Sequence[TrainedTask], models: Sequence[str], explicit: bool,
                   remedy: Callable[[str | None], str]) -> None:
    """Refuse a source without any task of ``models`` (or, if the user named them, of each one);
    ``remedy(family or None)`` says what to do."""
    if not tasks:
        raise UserError(f"{source}: no finished {' or '.join(models)} replica; {remedy(None)}")
    if explicit:
        for family in models:
            if not any(t.model == family for t in tasks):
                raise UserError(f"{source}: no finished {family} replica (--model {family}); {remedy(family)}")


def choose_temperature(structure: Structure, trained: Sequence[float], requested: float | None) -> float:
    """The trained temperature whose models predict ``structure``.

    ``requested`` (``--temperature``) if it was trained, else the file's temperature if it was
    trained, else the only trained temperature; with several and none of those, a UserError.
    """
    if requested is not None and not (math.isfinite(requested) and requested > 0):
        raise UserError(f"temperature {requested}: expected a positive temperature (reduced units)")
    for wanted in (requested, structure.temperature if requested is None else None):
        if wanted is not None:
            match = [t for t in trained if math.isclose(t, wanted, abs_tol=TEMPERATURE_TOLERANCE)]
            if match:
                return match[0]
    if len(trained) == 1:
        return trained[0]
    listed = ", ".join(f"{t:g}" for t in trained)
    said = (f"--temperature {requested:g} is not one of them" if requested is not None else
            f"the file says T = {structure.temperature:g}, not one of them" if structure.temperature is not None
            else "the file records no temperature")
    raise UserError(f"{structure.source}: models were trained at T = {listed} and {said}; "
                    f"choose one with --temperature")


def out_of_range_warnings(structure: Structure, density: float, trained: Sequence[float],
                          requested: float | None) -> list[str]:
    """Each way ``structure`` differs from the training data (number ``density``, σ⁻³; temperatures
    ``trained``), one line each (empty: none)."""
    where = f"{structure.source} frame {structure.frame}"
    found = []
    if abs(structure.density - density) > DENSITY_TOLERANCE * density:
        found.append(f"{where}: density {structure.density:.4g} differs from the trained {density:g} by more "
                     f"than {DENSITY_TOLERANCE:.0%}")
    unknown = sorted(set(np.unique(structure.species).tolist()) - {0, 1})
    if unknown:
        found.append(f"{where}: species other than A and B (LAMMPS types {[s + 1 for s in unknown]}); the models "
                     "know only A (0) and B (1)")
    b_fraction = float(np.mean(structure.species == 1))
    if abs(b_fraction - TRAINING_B_FRACTION) > B_FRACTION_TOLERANCE:
        found.append(f"{where}: B fraction {b_fraction:.3f}, far from the training mixture's "
                     f"{TRAINING_B_FRACTION:g} (80:20)")
    temperature = requested if requested is not None else structure.temperature
    if temperature is not None and not any(math.isclose(temperature, t, abs_tol=TEMPERATURE_TOLERANCE)
                                           for t in trained):
        found.append(f"{where}: temperature {temperature:g} is not a trained temperature "
                     f"({', '.join(f'{t:g}' for t in trained)})")
    return found


@dataclass
class StructureGraph:
    """The model input of one structure (N particles, E directed edges)."""

    edge_index: np.ndarray  # (2, E) int64, (source i, destination j), sorted
    edge_attr: np.ndarray | None   # (E, 3) float32, r_j − r_i (minimum image), σ; None where the graph
    #                                was assembled from spatial domains (only what the output holds)
    r0: np.ndarray          # (E,) float32, |r_ij(0)|, σ

    def as_data(self, species: np.ndarray, temperature: float = float("nan"),
                descriptors: np.ndarray | None = None, chunk_edges: int | None = None) -> "GraphInput":
        """The networks' input: x (N, 1) = species as float, edge_index, edge_attr, the temperature
        the models are asked for (read by networks of every temperature), for descriptor heads the
        particles' descriptors (N, F), and the edges per chunk of bounded-memory inference."""
        return graph_input(species, self.edge_index, self.edge_attr, temperature, descriptors, chunk_edges)


@dataclass
class GraphInput:
    """One graph as tensors, with the attribute names of ``torch_geometric.data.Data`` (a plain class:
    predicting from an exported model must not import torch_geometric, seconds of start-up)."""

    x: torch.Tensor           # (N, 1) float32 type, 0 = A, 1 = B
    edge_index: torch.Tensor  # (2, E) int64
    edge_attr: torch.Tensor   # (E, 3) float32, σ
    temperature: float
    descriptors: torch.Tensor | None = None   # (N, F) float32, for networks with descriptor heads
    #: edges per chunk (:mod:`hpc_botan.model.bounded_memory`); None: the whole-graph forward
    chunk_edges: int | None = None
    #: the ghost exchange where the graph is one spatial domain (:class:`hpc_botan.predict.domains.MpiHalo`)
    halo: Callable | None = None


def graph_input(species: np.ndarray, edge_index: np.ndarray, edge_attr: np.ndarray, temperature: float,
                descriptors: np.ndarray | None = None, chunk_edges: int | None = None,
                halo: Callable | None = None) -> GraphInput:
    """:class:`GraphInput` of numpy arrays: species (N,) 0 = A / 1 = B, edge_index (2, E), edge_attr (E, 3)
    float32 σ, descriptors (N, F) or None."""
    return GraphInput(x=torch.from_numpy(species.astype(np.float32)).unsqueeze(1),
                      edge_index=torch.from_numpy(edge_index), edge_attr=torch.from_numpy(edge_attr),
                      temperature=float(temperature),
                      descriptors=None if descriptors is None else torch.from_numpy(
                          np.ascontiguousarray(descriptors, dtype=np.float32)),
                      chunk_edges=chunk_edges, halo=halo)


def structure_descriptors(structure: Structure, settings: DescriptorSettings) -> np.ndarray:
    """The radial descriptors (N, F) of ``structure`` that descriptor heads read (the training data's)."""
    try:
        return coarse_grained_descriptors(structure.positions, structure.species, structure.box, settings)
    except ValueError as exc:
        raise UserError(f"{structure.source}: the models' descriptor heads: {exc}") from None


def check_box(structure: Structure) -> None:
    """Refuse (one line) a box in which the graph's minimum image would not hold."""
    if GRAPH_CUTOFF >= 0.5 * structure.box.min():
        raise UserError(f"{structure.source}: box {structure.box.tolist()} is too small; every edge must be "
                        f"longer than {2 * GRAPH_CUTOFF:g} (twice the graph cutoff)")


def build_graph(structure: Structure) -> StructureGraph:
    """The targets stage's graph of ``structure`` (same function, same edge order)."""
    check_box(structure)
    g = structure_graph(structure.positions, structure.species, structure.box)
    return StructureGraph(edge_index=g["edge_index"], edge_attr=g["vectors"].astype(np.float32),
                          r0=g["dist0"].astype(np.float32))


@dataclass
class TaskPrediction:
    """Predictions of one task's R replicas for one structure."""

    task: TrainedTask
    s_replicas: np.ndarray              # (R, N) float32, S_i, σ
    e_replicas: np.ndarray | None       # (R, E) float32, E_ij, σ; None for NT-GNN

    @staticmethod
    def _mean_std(replicas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the mean is taken as evaluation takes it (float32, over the replica axis), so ρ agrees exactly
        return np.mean(replicas, axis=0), np.std(replicas, axis=0)

    @property
    def s_mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        return self._mean_std(self.s_replicas)

    @property
    def e_mean_std(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.e_replicas is None else self._mean_std(self.e_replicas)


@dataclass
class StructurePrediction:
    """A structure, its graph, the temperature whose models were used, warnings and predictions."""

    structure: Structure
    graph: StructureGraph
    temperature: float
    warnings: list[str]
    predictions: list[TaskPrediction] = field(default_factory=list)


def predict_structure(models: TrainedModels, structure: Structure, requested_temperature: float | None = None, *,
                      memory_gb: float | None = None, comm=None) -> StructurePrediction | None:
    """Every trained task's replicas at the chosen temperature on one structure.

    The edges go through the networks in chunks that fit ``memory_gb`` (default: the models'
    predict.memory_gb, else 80 % of the available memory).  With ``comm`` (an mpi4py communicator of K > 1
    ranks, each calling this with the same arguments) the structure is cut into K spatial domains
    (:mod:`hpc_botan.predict.domains`); rank 0 returns the whole prediction, the others None.
    """
    temperature = choose_temperature(structure, models.temperatures, requested_temperature)
    tasks = models.at(temperature)
    budget = prediction_memory_bytes(models.memory_gb if memory_gb is None else memory_gb,
                                     1 if comm is None else comm.size)
    if comm is None or comm.size == 1:
        started = time.perf_counter()
        graph = build_graph(structure)
        log.debug("predict: %s frame %d: %d particles, %d edges, T = %g", structure.source, structure.frame,
                  structure.n_particles, graph.edge_index.shape[1], temperature)
        settings = models.descriptor_settings
        chunk = _chunk_edges(budget, structure.n_particles, graph.edge_index.shape[1], models.width, structure.source)
        data = graph.as_data(structure.species, temperature,
                             None if settings is None else structure_descriptors(structure, settings), chunk)
        graph_s = time.perf_counter() - started
        predictions = models.networks.predict(tasks, data)
        log.debug("predict: graph %.1f s, networks %.1f s (chunks of %d edges)", graph_s,
                  time.perf_counter() - started - graph_s, chunk)
    else:
        assembled = _predict_in_domains(models, tasks, structure, temperature, budget, comm)
        if assembled is None:
            return None
        graph, predictions = assembled
    result = StructurePrediction(structure, graph, temperature,
                                 out_of_range_warnings(structure, models.density, models.temperatures,
                                                       requested_temperature))
    result.warnings += _graph_warnings(structure, graph, temperature, requested_temperature, tasks)
    for task, (s, e) in zip(tasks, predictions):
        result.predictions.append(TaskPrediction(task, s, e if task.predicts_edges else None))
    return result


def _chunk_edges(budget: float, n_nodes: int, n_edges: int, width: int, source: str) -> int:
    """:func:`chunk_edges_for`, with a warning where the whole-graph arrays alone exceed ``budget`` (bytes)."""
    needed = held_bytes(n_nodes, n_edges, width)
    if needed > budget:
        log.warning("predict: %s: its %d edges need about %.1f GB, more than the %.1f GB allowed (--memory-gb, "
                    "predict.memory_gb or 80 %% of the available memory); use more MPI ranks (mpirun -n K) or a "
                    "larger budget if it runs out of memory", source, n_edges, needed / 1e9, budget / 1e9)
    return chunk_edges_for(budget, n_nodes, n_edges, width)


def _graph_warnings(structure: Structure, graph: StructureGraph, temperature: float,
                    requested_temperature: float | None, tasks: Sequence[TrainedTask]) -> list[str]:
    """Overlapping particles, a temperature the file does not record, a temperature a joint network extrapolates to."""
    found = []
    close = graph.r0 < OVERLAP_DISTANCE
    if close.any():  # each pair is two directed edges
        found.append(f"{structure.source} frame {structure.frame}: {int(close.sum()) // 2} pair(s) of "
                     f"particles closer than {OVERLAP_DISTANCE:g} σ (the closest {float(graph.r0.min()):.3g}"
                     " σ): overlapping particles, no liquid has them; check the file")
    if requested_temperature is None and structure.temperature is None:
        found.append(f"structures that record no temperature are predicted with the models of "
                     f"T = {temperature:g} (choose with --temperature)")
    for task in tasks:
        trained = task.trained_temperatures
        if len(trained) > 1 and not min(trained) - TEMPERATURE_TOLERANCE <= temperature <= max(trained) + \
                TEMPERATURE_TOLERANCE:
            note = (f"{task.name}: T = {temperature:g} lies outside the temperatures this network learnt "
                    f"({min(trained):g} … {max(trained):g}); its predictions there extrapolate")
            if note not in found:
                found.append(note)
    return found


def _predict_in_domains(models: TrainedModels, tasks: Sequence[TrainedTask], structure: Structure,
                        temperature: float, budget: float, comm):
    """This rank's spatial domain through every task's networks, gathered on rank 0 into the whole graph
    (edges in (i, j) order) and the tasks' (node (R, N), edge (R, E)) predictions; None on other ranks."""
    started = time.perf_counter()
    check_box(structure)
    slabs = slabs_for(structure.box, comm.size, GRAPH_CUTOFF, structure.source)
    domain = domain_graph(structure.positions, structure.box, slabs, comm.rank, GRAPH_CUTOFF)
    settings = models.descriptor_settings
    # descriptors reach farther than the graph: computed on the whole structure, rows of this domain kept
    descriptors = None if settings is None else structure_descriptors(structure, settings)[domain.nodes]
    n_local, n_edges = len(domain.nodes), domain.edge_index.shape[1]
    if comm.rank == 0:
        log.info("predict: %s frame %d: %d particles in %d slabs along %s (%.3g σ wide); rank 0 holds %d of them, "
                 "%d ghosts and %d edges", structure.source, structure.frame, structure.n_particles, comm.size,
                 "xyz"[slabs.axis], slabs.width, int(domain.own.sum()), int((~domain.own).sum()), n_edges)
    data = graph_input(structure.species[domain.nodes], domain.edge_index, domain.edge_attr.astype(np.float32),
                       temperature, descriptors, _chunk_edges(budget, n_local, n_edges, models.width, structure.source),
                       MpiHalo(comm, domain))
    graph_s = time.perf_counter() - started
    local = models.networks.predict(tasks, data)
    networks_s = time.perf_counter() - started - graph_s
    own = np.flatnonzero(domain.own)
    global_edges = domain.global_edges
    r0 = np.linalg.norm(domain.edge_attr, axis=1).astype(np.float32)
    arrays = [domain.nodes[own], global_edges, r0, *[a for s, e in local for a in (s[:, own], e)]]
    del local, data, domain
    gathered = gather_to_root(comm, arrays)
    log.debug("predict: rank %d: graph %.1f s, networks %.1f s, gather %.1f s", comm.rank, graph_s, networks_s,
              time.perf_counter() - started - graph_s - networks_s)
    if gathered is None:
        return None
    n = structure.n_particles
    order = assemble_edges([part[1] for part in gathered])
    edge_index = np.concatenate([part[1] for part in gathered], axis=1)[:, order]
    r0 = np.concatenate([part[2] for part in gathered])[order]
    predictions = []
    for k in range(len(tasks)):
        node = np.empty((gathered[0][3 + 2 * k].shape[0], n), dtype=np.float32)
        for part in gathered:
            node[:, part[0]] = part[3 + 2 * k]
        edge = np.concatenate([part[4 + 2 * k] for part in gathered], axis=1)[:, order]
        predictions.append((node, edge))
    log.debug("predict: rank 0 assembled the whole graph in %.1f s", time.perf_counter() - started)
    return StructureGraph(edge_index=np.ascontiguousarray(edge_index), edge_attr=None, r0=r0), predictions


def _strings(items) -> np.ndarray:
    """Variable-length UTF-8 strings for an HDF5 attribute (an empty list is allowed)."""
    return np.array(list(items), dtype=h5py.string_dtype())


def _group_path(task: TrainedTask) -> str:
    return f"predictions/{task.model}/T{task.temperature:.3f}/t{task.time_index:02d}"


def write_structure(group, result: StructurePrediction) -> None:
    """One structure's inputs and predictions into the HDF5 group ``group`` (layout: module docstring)."""
    s = result.structure
    group.attrs["source"] = s.source
    group.attrs["frame"] = s.frame
    group.attrs["file_temperature"] = np.nan if s.temperature is None else s.temperature
    group.attrs["temperature"] = result.temperature
    group.attrs["density"] = s.density
    group.attrs["b_fraction"] = float(np.mean(s.species == 1))
    group.attrs["n_particles"] = s.n_particles
    group.attrs["n_edges"] = result.graph.edge_index.shape[1]
    group.attrs["warnings"] = _strings(result.warnings)
    group.create_dataset("positions", data=s.positions)
    group.create_dataset("species", data=s.species)
    group.create_dataset("ids", data=s.ids)
    group.create_dataset("box", data=s.box)
    group.create_dataset("edge_index", data=result.graph.edge_index)
    group.create_dataset("r0", data=result.graph.r0)
    for pred in result.predictions:
        g = group.create_group(_group_path(pred.task))
        g.attrs["time"] = pred.task.time
        g.attrs["time_index"] = pred.task.time_index
        g.attrs["temperature"] = pred.task.temperature
        g.attrs["task"] = pred.task.name
        g.attrs["replica_files"] = _strings(pred.task.replica_files)
        mean, std = pred.s_mean_std
        g.create_dataset("S_mean", data=mean)
        g.create_dataset("S_std", data=std)
        g.create_dataset("S_replicas", data=pred.s_replicas)
        if pred.e_replicas is not None:
            mean, std = pred.e_mean_std
            g.create_dataset("E_mean", data=mean)
            g.create_dataset("E_std", data=std)
            g.create_dataset("E_replicas", data=pred.e_replicas)


def particle_rows(k: int, result: StructurePrediction) -> Iterator[list]:
    """CSV rows (columns :data:`PARTICLE_COLUMNS`) of one structure: one per particle, model and time."""
    s = result.structure
    for pred in result.predictions:
        mean, std = pred.s_mean_std
        for i in range(s.n_particles):
            x, y, z = s.positions[i]
            yield [k, s.source, s.frame, i, int(s.ids[i]), int(s.species[i]), f"{x:.6f}", f"{y:.6f}", f"{z:.6f}",
                   pred.task.model, pred.task.temperature, pred.task.time_index, pred.task.time,
                   f"{mean[i]:.6g}", f"{std[i]:.6g}"]


def pair_rows(k: int, result: StructurePrediction) -> Iterator[list]:
    """CSV rows (columns :data:`PAIR_COLUMNS`): one per directed edge and time of every BOTAN task."""
    s = result.structure
    src, dst = result.graph.edge_index
    for pred in result.predictions:
        if pred.e_replicas is None:
            continue
        mean, std = pred.e_mean_std
        for e in range(len(src)):
            i, j = int(src[e]), int(dst[e])
            yield [k, s.source, s.frame, e, i, j, int(s.ids[i]), int(s.ids[j]), f"{result.graph.r0[e]:.6f}",
                   pred.task.model, pred.task.temperature, pred.task.time_index, pred.task.time,
                   f"{mean[e]:.6g}", f"{std[e]:.6g}"]


def run_prediction(trained: TrainedModels, structures: Sequence[Structure], out: str | Path, *,
                   temperature: float | None = None, write_csv: bool = False,
                   show_progress: bool = True, memory_gb: float | None = None, comm=None) -> list[Path]:
    """Predict every structure with every task of ``trained``; write ``out`` (and CSVs).

    All files are written under temporary names and renamed together at the end, so a failure
    leaves any existing ``out`` untouched.  Returns the written paths.  ``memory_gb``: see
    :func:`predict_structure`.  With ``comm`` (mpi4py, K > 1 ranks, all calling this alike) every
    structure is cut into K spatial domains and rank 0 alone writes; the other ranks return [].
    """
    for s in structures:  # refuse an ambiguous temperature before any model runs
        choose_temperature(s, trained.temperatures, temperature)
    if comm is not None and comm.size > 1 and comm.rank != 0:
        for s in structures:
            predict_structure(trained, s, temperature, memory_gb=memory_gb, comm=comm)
        return []
    out = Path(out)
    targets = [out, *csv_paths(out)] if write_csv else [out]
    with contextlib.ExitStack() as stack:
        tmp = [stack.enter_context(atomic_path(p)) for p in targets[1:]]
        writers = []
        if write_csv:
            for path, columns in zip(tmp, (PARTICLE_COLUMNS, PAIR_COLUMNS)):
                fh = stack.enter_context(open(path, "w", newline=""))
                writer = csv.writer(fh)
                writer.writerow(columns)
                writers.append(writer)
        # built in memory and written at the end: a full disk is one clean error (io.hdf5_files)
        with new_hdf5_file(out) as f:
            f.attrs["format"] = PREDICTIONS_FORMAT
            f.attrs["model_dir"] = str(trained.source.resolve())
            f.attrs["hpc_botan_version"] = __version__
            f.attrs["models"] = _strings(sorted({t.model for t in trained.tasks}))
            f.attrs["n_structures"] = len(structures)
            f.attrs["requested_temperature"] = np.nan if temperature is None else temperature
            root = f.create_group("structures")
            bar = tqdm(structures, desc="predict", unit="structure", disable=not show_progress)
            said: set[str] = set()
            for k, s in enumerate(bar):
                result = predict_structure(trained, s, temperature, memory_gb=memory_gb, comm=comm)
                for line in result.warnings:  # stored with every structure, said once
                    if line not in said:
                        log.warning("predict: %s", line)
                        said.add(line)
                write_structure(root.create_group(f"{k:05d}"), result)
                if write_csv:
                    writers[0].writerows(particle_rows(k, result))
                    writers[1].writerows(pair_rows(k, result))
    return targets
