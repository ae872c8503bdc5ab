"""Typed configuration: dataclasses loaded from YAML, validated with key paths.

A configuration is a YAML mapping with one section per stage.  Unknown keys and bad
values are rejected with the key path and the reason, e.g.
``simulation.temperatures[0]: must be > 0, got -1``.  Two presets ship with the package
(``quick`` and ``paper``, see :func:`available_presets`); any key can be overridden
with ``--set section.key=value`` on the command line.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from hpc_botan.errors import ConfigError
from hpc_botan.learned_targets import learned_target
from hpc_botan.physics.time_points import N_PUBLISHED

log = logging.getLogger("hpc_botan.config")


#: The value of ``simulation.time_points`` (globally or per temperature) that asks for a pilot run.
CALIBRATED = "calibrated"


@dataclass
class CalibrationConfig:
    """The pilot run that measures τα where ``simulation.time_points`` is ``calibrated``.

    The pilot (``RUN_DIR/pilot``, its own seed) simulates a few configurations of each calibrated
    temperature, finds τα at the 1/e crossing of F_s (A particles, k = 2π), and the run then records
    at the published fractions t_k / τα of that measured τα (hpc_botan.physics.time_points).
    """

    #: Pilot initial configurations per calibrated temperature (never production ones: other seeds).
    n_configurations: int = 2
    #: Isoconfigurational NVE runs per pilot configuration.
    n_runs: int = 4
    #: How many published fractions to use, counted from the shortest (10: all, up to about 31.5 τα;
    #: 7: up to τα).
    n_time_points: int = 10
    #: Pilot length, in units of the *estimated* simulation.tau_alpha; F_s must fall to 1/e within it.
    max_time_tau_alpha: float = 3.0
    #: Pilot recording times per decade of time, log-spaced from one timestep to the end
    #: (τα is interpolated in log t between two of them).
    frames_per_decade: int = 10


@dataclass
class SimulationConfig:
    """The Kob–Andersen system and the simulation protocol (reduced LJ units, τ for times)."""

    #: Particles per configuration (A:B = 80:20).
    n_particles: int = 4096
    #: Number density N/V (cubic box).
    density: float = 1.2
    #: Temperatures to simulate.
    temperatures: list[float] = field(default_factory=lambda: [0.44])
    #: Initial configurations per temperature.
    n_configurations: int = 500
    #: Of those, the first ``n_train`` are the training set, the rest the test set.
    n_train: int = 400
    #: Isoconfigurational NVE runs per configuration.
    n_runs: int = 32
    #: Times (τ) at which positions are recorded, per temperature; ``calibrated`` (for every temperature,
    #: or as one temperature's entry) measures τα in a pilot run first and records at the published
    #: fractions of it (``calibration`` below; hpc-botan calibrate).  A run directory's config.yaml
    #: always holds the resolved lists.
    time_points: Union[Literal["calibrated"], dict[float, Union[list[float], Literal["calibrated"]]]] = \
        field(default_factory=dict)
    #: Estimated α-relaxation time (τ) per temperature; sets the equilibration length.  Where the time
    #: points are calibrated, the estimate sets the pilot's length and the measured value replaces it.
    tau_alpha: dict[float, float] = field(default_factory=dict)
    #: The pilot run of calibrated time points.
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    #: NVT time at the target temperature, in units of τα (the paper: about 40).
    equilibration_tau_alpha: float = 40.0
    #: Melt temperature and time (τ) before the quench.
    melt_temperature: float = 5.0
    melt_time: float = 10000.0
    #: Duration (τ) of the linear quench from the melt to the target temperature.
    quench_time: float = 20.0
    #: Integration time step (τ).
    timestep: float = 0.001
    #: Nosé–Hoover damping time (τ).
    thermostat_damping: float = 0.1
    #: Master seed; every configuration and run seed is derived from it.
    seed: int = 2024
    #: Every LAMMPS run of the simulate stage (preparation and each isoconfigurational run) saves its
    #: state every this many steps (0: only at the ends of the melt and the quench) and reads it back at
    #: once, so that a job stopped by its time limit continues from there and records the frames an
    #: uninterrupted run records, bit for bit.  10^5 steps: about 5 minutes at N = 4096 on one core
    #: (314 steps/s, docs/benchmarks.md), the most a stopped job loses per run; ``hpc-botan plan``
    #: shows it at the speed measured on your machine.  Part of the trajectories' identity: keep it
    #: for the life of a run directory.
    restart_every_steps: int = 100_000
    #: Form of the KA potential (hpc_botan.physics.ka): shifted_force (lj/smooth/linear, per-pair
    #: cutoffs 2.5 σ_αβ), shifted_force_global_cutoff (the same, cutoff 2.5 for every pair) or
    #: truncated_shifted (lj/cut at 2.5 σ_αβ, energy shift only: the original KA). docs/validation.md.
    potential: Literal["shifted_force", "shifted_force_global_cutoff", "truncated_shifted"] = "shifted_force"

    def calibrated_temperatures(self) -> list[float]:
        """The temperatures whose time points are still ``calibrated`` (to be measured by a pilot)."""
        if self.time_points == CALIBRATED:
            return list(self.temperatures)
        return [t for t in self.temperatures if self.time_points.get(t) == CALIBRATED]


@dataclass
class LammpsConfig:
    """How LAMMPS runs: accelerator, MPI ranks and the layout of an ensemble."""

    #: auto picks GPU package, then KOKKOS (GPU), then OPENMP, then plain styles.
    accelerator: Literal["auto", "gpu", "kokkos", "openmp", "none"] = "auto"
    #: GPUs per configuration job (GPU and KOKKOS accelerators).
    gpus: int = 1
    #: OpenMP threads per MPI rank (OPENMP accelerator).
    omp_threads: int = 1
    #: MPI ranks per configuration job; >1 launches LAMMPS under ``mpirun``.
    mpi_ranks: int = 1
    #: partitions: one LAMMPS multi-partition job, one run per partition (-partition Mx1);
    #: sequential: one run after the other, each on all ranks; auto: partitions when ranks > 1.
    ensemble_mode: Literal["auto", "sequential", "partitions"] = "auto"
    #: Launcher for multi-rank jobs (e.g. ``srun --mpi=pmi2`` on some clusters).
    mpirun: str = "mpirun"
    #: Neighbour-list skin (σ).
    neighbor_skin: float = 0.3
    #: Thermo output interval (steps) in the LAMMPS logs.
    thermo_every: int = 10000
    #: Directory with prepare.in / isoconf.in; default: the project's lammps_inputs/.
    inputs_dir: Optional[str] = None


@dataclass
class SlurmConfig:
    """Slurm parameters for jobs submitted through submitit (``--executor slurm``)."""

    partition: Optional[str] = None
    time_min: int = 60
    #: CPU cores per training process (the other jobs request what their stage uses:
    #: lammps.mpi_ranks × lammps.omp_threads, launch.targets_ranks, 1 for the finishing job).
    cpus_per_task: int = 1
    #: GPUs of each training node (one per training process); also says that the nodes have GPUs,
    #: so that simulation jobs with lammps.accelerator=auto request lammps.gpus.
    gpus_per_node: int = 0
    mem_gb: Optional[float] = None
    #: At most this many array tasks run at once (in all, shared by the chunks of a split array).
    array_parallelism: int = 64
    #: Arrays are split into chunks of at most this many tasks (Slurm refuses array indices
    #: >= MaxArraySize); null: read MaxArraySize from ``scontrol show config``.
    max_array_size: Optional[int] = None
    #: How many jobs you may have queued (array tasks count one each); null: your MaxSubmitJobs from
    #: sacctmgr, where accounting is on.  A submission that would pass it is refused before any sbatch.
    max_submit_jobs: Optional[int] = None
    #: A job stopped by its time limit is requeued (and continues from its restarts or checkpoints) at
    #: most this many times; preemptions do not count.  ``hpc-botan plan`` says how many a run needs.
    max_requeues: int = 10
    #: Slurm signals a job this many seconds before its time limit (``--signal=USR2@s``): the LAMMPS
    #: run in progress stops within seconds and the job requeues itself.
    signal_delay_s: int = 120
    #: Shell lines run before the job, e.g. ``module load lammps``.
    setup: list[str] = field(default_factory=list)
    #: Extra sbatch options, e.g. {account: myproj, qos: normal}.
    additional_parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class LaunchConfig:
    """Where jobs run; not part of a run's identity (a run may move from laptop to cluster)."""

    #: Concurrent configuration jobs with the local executor.
    local_parallelism: int = 2
    #: Training submitted through submitit (``hpc-botan train --executor``): nodes, and processes
    #: per node (one per GPU on GPU nodes); together the R x D world of train.n_replicas slots.
    train_nodes: int = 1
    train_tasks_per_node: int = 1
    #: MPI ranks of the targets stage when ``hpc-botan run`` launches it (one node; at most one
    #: rank per configuration is used).
    targets_ranks: int = 2
    #: Minutes a training rank waits for another before it gives up: a collective of its replica's
    #: data-parallel ranks, or the pretrained replica that its fine-tuning starts from.  Ranks with
    #: nothing (left) to train do not wait on the others (they leave when their share is done).
    train_timeout_min: float = 30.0
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


@dataclass
class PredictConfig:
    """How ``hpc-botan predict`` runs this run's networks; not part of a run's identity."""

    #: Memory (GB) one prediction process may use; the edges are processed in chunks that fit it
    #: (hpc_botan.model.bounded_memory).  null: 80 % of the memory available when prediction starts,
    #: shared among the MPI ranks of the node.  ``hpc-botan predict --memory-gb`` overrides it.
    memory_gb: Optional[float] = None


@dataclass
class SourceConfig:
    """Where the trajectories come from: this package's simulate stage, or an imported data set."""

    format: Literal["simulate", "pyg-botan", "deepmind", "glassbench"] = "simulate"
    #: The imported directory (formats other than simulate).
    path: Optional[str] = None


@dataclass
class ModelConfig:
    """The network (REFERENCE §3); the defaults are the reference BOTAN."""

    width: int = 64
    #: Message-passing steps.
    n_steps: int = 7
    #: The same edge/node update weights at every step (reference) or one set per step.
    shared_weights: bool = True
    #: One decoder for nodes and edges (reference) or one each.
    separate_decoders: bool = False
    #: heads: the ridge baseline's radial descriptors (S_i) and pair features (E_ij) enter the outputs
    #: through linear heads, zero at the start and fitted with the decoders' last layer, so the network
    #: contains its baseline (hpc_botan.model.descriptor_heads; docs/accuracy.md).  none: the reference.
    descriptors: Literal["none", "heads"] = "none"
    #: With heads: the heads also read the invariants of the instantaneous forces of the run's potential
    #: (|F_i|, |F_i|² per particle; (F_j − F_i)·r̂_ij, its square and |F_j − F_i|² per pair), computed in
    #: the network from the pair vectors: the ballistic limit of the motion (hpc_botan.model.force_features).
    force_features: bool = False


@dataclass
class PretrainConfig:
    """Edges-only pretraining (p = 0) that every BOTAN fine-tuning starts from."""

    enabled: bool = True
    #: train: pretrain on this run's data (the paper's recipe); published: the replicas are the authors'
    #: eight pretrained networks shipped with the package (T = 0.44, N = 4096, edges at t = 13;
    #: hpc_botan/model/published_weights/NOTICE.md), replica k = model{k+1}, nothing is pretrained here.
    #: Needs the reference architecture (model.width 64, n_steps 7, shared_weights) and at most 8 replicas.
    source: Literal["train", "published"] = "train"
    epochs: int = 2000
    #: Temperature of the pretraining data; null = the lowest simulated temperature.
    temperature: Optional[float] = None
    #: Index into that temperature's time points (paper: t = 13 at T = 0.44, index 2).
    time_index: int = 2


@dataclass
class NtGnnConfig:
    """NT-GNN: the same network trained on nodes only (p = 1), from scratch."""

    enabled: bool = True
    epochs: int = 1000
    #: Whole graphs per optimiser step and rank (the published NT-GNN used 5).
    batch_graphs: int = 5
    #: Adam's peak learning rate for NT-GNN; null = train.learning_rate.  NT-GNN starts from scratch, so
    #: a fine-tuning rate (train.learning_rate 1e-5 from published weights) is far too small for it.
    learning_rate: Optional[float] = None


@dataclass
class TrainConfig:
    """Training recipe (REFERENCE §3): Adam, clip, one full graph per step, cubic augmentation."""

    #: per_time: one network per (T, t), the paper's recipe; multi_time: one network per T that
    #: predicts every trained time point at once (one decoder column per time point).
    mode: Literal["per_time", "multi_time"] = "per_time"
    #: separate: one network per temperature; joint: one network for every temperature of the run,
    #: with the temperature as a second node feature (T-BOTAN), scored at every temperature.
    temperatures: Literal["separate", "joint"] = "separate"
    #: With joint: temperatures left out of training and only evaluated (interpolation tests).
    holdout_temperatures: list[float] = field(default_factory=list)
    #: p in L = p·MSE(S) + (1 − p)·MSE(E) for BOTAN fine-tuning.
    node_weight: float = 0.4
    #: What the network's node and edge outputs learn: labels of hpc_botan.learned_targets (S: the
    #: propensity S_i, R: the cage-relative displacement R_i; E: the pair-distance change E_ij).  p
    #: weighs the node target, 1 − p the edge target.
    node_target: str = "S"
    edge_target: str = "E"
    #: Learn each time point's S_i and E_ij standardised by the mean and spread of the training
    #: split (stored in the model, undone in every prediction, so outputs stay in σ).
    standardize: bool = True
    #: false: standardise S_i only and leave E_ij in σ, so that E_ij weighs in the loss as little as
    #: with raw targets (the fine-tuning then keeps the pretrained edge output; docs/accuracy.md).
    standardize_edges: bool = True
    epochs: int = 1000
    #: Whole graphs per optimiser step and rank for BOTAN (reference: 1, no minibatching).
    batch_graphs: int = 1
    learning_rate: float = 1.0e-4
    #: constant, or cosine decay to min_lr_fraction × learning_rate at the last step.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    #: Linear warm-up over this many epochs' optimiser steps (0: none).
    warmup_epochs: int = 0
    min_lr_fraction: float = 0.0
    adam_eps: float = 1.0e-8
    grad_clip: float = 1.0
    #: Training-graph augmentation: the 48 cubic symmetries, random rotations, or none.
    augmentation: Literal["cubic", "rotation", "none"] = "cubic"
    #: Which particles enter the loss (reference: all) and which edges (reference: all).
    loss_nodes: Literal["all", "A"] = "all"
    loss_edges: Literal["all", "AA"] = "all"
    #: Independent model replicas per (T, t), each with its own seed and directory.
    n_replicas: int = 1
    #: Data-parallel ranks per replica (each takes a different graph per step; effective
    #: batch = data_parallel x batch_graphs graphs).
    data_parallel: int = 1
    #: Share of the training configurations held out for validation (model selection).
    validation_fraction: float = 0.1
    #: Use only the first N configurations (targets order) of each temperature's train split, validation
    #: included; null = all.  For data-efficiency studies: smaller training sets from one simulation, the
    #: networks and the baselines on the same subset (benchmarks/data_efficiency_simulated.py).
    max_configurations: Optional[int] = None
    #: How a task that starts from another's weights (fine-tuning) sets its output heads: keep the
    #: pretrained last layer, or least_squares: the last decoder layer solved to minimise the
    #: training loss with everything below it fixed (linear probe, then fine-tune; docs/accuracy.md).
    head_init: Literal["keep", "least_squares"] = "keep"
    #: What selects best.pt on the validation split: the loss, or ρ (p·ρ_S + (1 − p)·ρ_E).
    select_on: Literal["loss", "rho"] = "loss"
    #: Time-point indices to fine-tune on; null = every time point.
    time_indices: Optional[list[int]] = None
    #: Write a checkpoint every this many optimiser steps (and at every epoch end).
    checkpoint_every_steps: int = 200
    #: Where each replica logs its epochs: metrics.csv always; tensorboard adds event files in
    #: replica-XX/tensorboard (losses, validation ρ, per head for multi-time networks, learning
    #: rate): tensorboard --logdir RUN_DIR/train.  Not part of the run's identity.
    log: list[Literal["csv", "tensorboard"]] = field(default_factory=lambda: ["csv"])
    seed: int = 0
    #: Arithmetic: fp32, or bf16 autocast (CPUs with AVX512-BF16, GPUs); see docs/training.md.
    precision: Literal["fp32", "bf16"] = "fp32"
    #: torch.compile the network (inductor); first step pays the compile time.
    compile: bool = False
    #: Recompute each message-passing step in the backward instead of holding its activations:
    #: a training step's memory per edge falls by about 30 %, and the step takes about 1.8-2.4 times as long
    #: (docs/benchmarks.md); for graphs too large to train otherwise.  Changes no result.
    checkpoint_activations: bool = False
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    ntgnn: NtGnnConfig = field(default_factory=NtGnnConfig)


#: Settings added to a run's identity after run directories existed, each with the value that does
#: what runs did before it existed.  Every such addition must be registered here; otherwise every
#: existing checkpoint would be refused as "of another configuration" after an upgrade.
LATER_IDENTITY_KEYS: dict[str, Any] = {
    "train.head_init": "keep",
    "train.pretrain.source": "train",
    "train.ntgnn.learning_rate": None,
    "train.max_configurations": None,
    "train.node_target": "S",
    "train.edge_target": "E",
    "model.descriptors": "none",
    "model.force_features": False,
    "simulation.potential": "shifted_force",
    # the pilot settings matter only where a temperature is calibrated
    "simulation.calibration": {"n_configurations": 2, "n_runs": 4, "n_time_points": 10, "max_time_tau_alpha": 3.0,
                               "frames_per_decade": 10},
}


#: Settings outside ``launch`` that change what is logged, not what is computed.
NOT_IDENTITY_KEYS = ("train.log", "train.checkpoint_activations")


@dataclass
class Config:
    """The whole configuration of a run directory."""

    source: SourceConfig = field(default_factory=SourceConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    lammps: LammpsConfig = field(default_factory=LammpsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def identity(self) -> dict[str, Any]:
        """The part that defines the results (everything but ``launch`` and ``predict``).

        A key of :data:`LATER_IDENTITY_KEYS` left at its registered value is omitted, so that run
        directories and checkpoints made before the key existed keep their identity.
        """
        d = self.to_dict()
        d.pop("launch")
        d.pop("predict")
        for dotted, value in LATER_IDENTITY_KEYS.items():
            *sections, key = dotted.split(".")
            parent = d
            for section in sections:
                parent = parent[section]
            if key in parent and parent[key] == value:
                del parent[key]
        for dotted in NOT_IDENTITY_KEYS:
            section, key = dotted.split(".", 1)
            d[section].pop(key, None)
        return d


# --------------------------------------------------------------------------- loading

_NoneType = type(None)
_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        args = typing.get_args(tp)
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (int → float etc.)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return _build(tp, value, path)
    if origin is Union:
        args = typing.get_args(tp)
        if value is None and _NoneType in args:
            return None
        return _convert_union(value, [a for a in args if a is not _NoneType], path)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, item_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {
            _convert(k, key_tp, f"{path} key {k!r}"): _convert(v, item_tp, f"{path}[{k}]")
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads 3e-3 as a string; it needs 3.0e-3.  Users write 3e-3.
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a bug, not a user error


def _convert_union(value: Any, members: list[Any], path: str) -> Any:
    """The first of ``members`` that ``value`` fits; else one :class:`ConfigError`.

    When ``value`` has the shape of none of them, the message names every alternative.  When it
    has the shape of exactly one (a list, a mapping) but fails inside it, that member's own message
    is the more useful one: it names the offending item.
    """
    if len(members) == 1:  # Optional[X]: X's own message ("expected a number, got 'x'")
        return _convert(value, members[0], path)
    inside = []
    for member in members:
        try:
            return _convert(value, member, path)
        except ConfigError as exc:
            message = str(exc)
            if message.startswith(path) and not message.startswith(f"{path}:"):
                inside.append(message)
    if len(inside) == 1:
        raise ConfigError(inside[0])
    names = " or ".join(_type_name(m) for m in members)
    raise ConfigError(f"{path}: expected {names}, got {value!r}" + "".join(f"; {m}" for m in inside))


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{path}.{name}" if path else name)
    return cls(**kwargs)


def _check(cond: bool, path: str, reason: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{path}: {reason}, got {value!r}")


def validate(cfg: Config) -> Config:
    """Check values that types cannot express; raise :class:`ConfigError` with the key path."""
    s = cfg.simulation
    _check(s.n_particles >= 10, "simulation.n_particles", "must be >= 10", s.n_particles)
    _check(s.density > 0, "simulation.density", "must be > 0", s.density)
    _check(len(s.temperatures) > 0, "simulation.temperatures", "must list at least one temperature", s.temperatures)
    _check(len(set(s.temperatures)) == len(s.temperatures), "simulation.temperatures", "must not repeat", s.temperatures)
    for i, t in enumerate(s.temperatures):
        _check(t > 0, f"simulation.temperatures[{i}]", "must be > 0", t)
    _check(s.n_configurations >= 1, "simulation.n_configurations", "must be >= 1", s.n_configurations)
    _check(0 <= s.n_train <= s.n_configurations, "simulation.n_train",
           f"must be between 0 and n_configurations ({s.n_configurations})", s.n_train)
    _check(s.n_runs >= 1, "simulation.n_runs", "must be >= 1", s.n_runs)
    _check(s.timestep > 0, "simulation.timestep", "must be > 0", s.timestep)
    _check(s.restart_every_steps >= 0, "simulation.restart_every_steps", "must be >= 0", s.restart_every_steps)
    _check(s.equilibration_tau_alpha >= 0, "simulation.equilibration_tau_alpha", "must be >= 0", s.equilibration_tau_alpha)
    _check(s.melt_temperature > 0, "simulation.melt_temperature", "must be > 0", s.melt_temperature)
    _check(s.melt_time >= 0, "simulation.melt_time", "must be >= 0", s.melt_time)
    _check(s.quench_time >= 0, "simulation.quench_time", "must be >= 0", s.quench_time)
    _check(s.thermostat_damping > 0, "simulation.thermostat_damping", "must be > 0", s.thermostat_damping)
    _check(0 < s.seed < 2**31 - 16, "simulation.seed", "must be in 1 .. 2^31-17", s.seed)
    for section in ("time_points", "tau_alpha"):
        table = getattr(s, section)
        if table == CALIBRATED:
            continue
        for t in s.temperatures:
            _check(t in table, f"simulation.{section}", f"needs an entry for temperature {t}", sorted(table))
    explicit = {} if s.time_points == CALIBRATED else {t: v for t, v in s.time_points.items() if v != CALIBRATED}
    for t, times in explicit.items():
        path = f"simulation.time_points[{t}]"
        _check(len(times) > 0, path, "must list at least one time", times)
        steps = [round(x / s.timestep) for x in times]
        _check(all(x > 0 for x in times), path, "times must be > 0", times)
        _check(all(a < b for a, b in zip(steps, steps[1:])), path,
               f"times must increase by at least one timestep ({s.timestep})", times)
        _check(steps[0] >= 1, path, f"first time must be >= timestep ({s.timestep})", times)
    for t, tau in s.tau_alpha.items():
        _check(tau > 0, f"simulation.tau_alpha[{t}]", "must be > 0", tau)
    _validate_calibration(s)
    lm = cfg.lammps
    _check(lm.gpus >= 1, "lammps.gpus", "must be >= 1", lm.gpus)
    _check(lm.omp_threads >= 1, "lammps.omp_threads", "must be >= 1", lm.omp_threads)
    _check(lm.mpi_ranks >= 1, "lammps.mpi_ranks", "must be >= 1", lm.mpi_ranks)
    _check(lm.neighbor_skin > 0, "lammps.neighbor_skin", "must be > 0", lm.neighbor_skin)
    _check(lm.thermo_every >= 1, "lammps.thermo_every", "must be >= 1", lm.thermo_every)
    _check(bool(lm.mpirun.strip()), "lammps.mpirun", "must not be empty", lm.mpirun)
    if lm.inputs_dir is not None:
        _check(Path(lm.inputs_dir).is_dir(), "lammps.inputs_dir", "must be an existing directory", lm.inputs_dir)
    if cfg.source.format != "simulate":
        _check(cfg.source.path is not None, "source.path", f"is needed for format {cfg.source.format}", None)
    m = cfg.model
    _check(m.width >= 1, "model.width", "must be >= 1", m.width)
    _check(m.n_steps >= 1, "model.n_steps", "must be >= 1", m.n_steps)
    if m.force_features:
        _check(m.descriptors == "heads", "model.force_features", "needs model.descriptors: heads (the force "
               "invariants enter through the descriptor heads)", m.force_features)
    tr = cfg.train
    _check(0.0 <= tr.node_weight <= 1.0, "train.node_weight", "must be in [0, 1]", tr.node_weight)
    learned_target(tr.node_target, "node", "train.node_target")
    learned_target(tr.edge_target, "edge", "train.edge_target")
    for key in ("epochs", "batch_graphs", "n_replicas", "data_parallel", "checkpoint_every_steps"):
        _check(getattr(tr, key) >= 1, f"train.{key}", "must be >= 1", getattr(tr, key))
    _check(tr.learning_rate > 0, "train.learning_rate", "must be > 0", tr.learning_rate)
    _check(tr.adam_eps > 0, "train.adam_eps", "must be > 0", tr.adam_eps)
    _check(tr.grad_clip > 0, "train.grad_clip", "must be > 0", tr.grad_clip)
    _check(tr.warmup_epochs >= 0, "train.warmup_epochs", "must be >= 0", tr.warmup_epochs)
    if tr.holdout_temperatures:
        _check(tr.temperatures == "joint", "train.holdout_temperatures", "needs train.temperatures = joint",
               tr.holdout_temperatures)
    _check(0.0 <= tr.min_lr_fraction <= 1.0, "train.min_lr_fraction", "must be in [0, 1]", tr.min_lr_fraction)
    if tr.max_configurations is not None:
        _check(tr.max_configurations >= 1, "train.max_configurations", "must be >= 1 (or null)", tr.max_configurations)
    _check(0.0 <= tr.validation_fraction < 1.0, "train.validation_fraction", "must be in [0, 1)", tr.validation_fraction)
    _check(tr.pretrain.epochs >= 1, "train.pretrain.epochs", "must be >= 1", tr.pretrain.epochs)
    _check(tr.ntgnn.epochs >= 1, "train.ntgnn.epochs", "must be >= 1", tr.ntgnn.epochs)
    if tr.ntgnn.learning_rate is not None:
        _check(tr.ntgnn.learning_rate > 0, "train.ntgnn.learning_rate", "must be > 0 (or null)", tr.ntgnn.learning_rate)
    _check(tr.ntgnn.batch_graphs >= 1, "train.ntgnn.batch_graphs", "must be >= 1", tr.ntgnn.batch_graphs)
    if tr.pretrain.enabled and tr.pretrain.source == "published":
        _validate_published_start(cfg)
    if tr.pretrain.temperature is not None:
        _check(tr.pretrain.temperature in s.temperatures, "train.pretrain.temperature",
               f"must be one of simulation.temperatures {s.temperatures}", tr.pretrain.temperature)
    if cfg.predict.memory_gb is not None:
        _check(cfg.predict.memory_gb > 0, "predict.memory_gb", "must be > 0 (or null)", cfg.predict.memory_gb)
    la = cfg.launch
    _check(la.local_parallelism >= 1, "launch.local_parallelism", "must be >= 1", la.local_parallelism)
    _check(la.targets_ranks >= 1, "launch.targets_ranks", "must be >= 1", la.targets_ranks)
    _check(la.slurm.time_min >= 1, "launch.slurm.time_min", "must be >= 1", la.slurm.time_min)
    _check(la.slurm.cpus_per_task >= 1, "launch.slurm.cpus_per_task", "must be >= 1", la.slurm.cpus_per_task)
    _check(la.slurm.gpus_per_node >= 0, "launch.slurm.gpus_per_node", "must be >= 0", la.slurm.gpus_per_node)
    _check(la.slurm.array_parallelism >= 1, "launch.slurm.array_parallelism", "must be >= 1", la.slurm.array_parallelism)
    if la.slurm.max_array_size is not None:
        _check(la.slurm.max_array_size >= 1, "launch.slurm.max_array_size", "must be >= 1 (or null)",
               la.slurm.max_array_size)
    if la.slurm.max_submit_jobs is not None:
        _check(la.slurm.max_submit_jobs >= 1, "launch.slurm.max_submit_jobs", "must be >= 1 (or null)",
               la.slurm.max_submit_jobs)
    _check(la.slurm.max_requeues >= 0, "launch.slurm.max_requeues", "must be >= 0", la.slurm.max_requeues)
    _check(la.slurm.signal_delay_s >= 1, "launch.slurm.signal_delay_s", "must be >= 1", la.slurm.signal_delay_s)
    return cfg


def _validate_published_start(cfg: Config) -> None:
    """train.pretrain.source = published: the shipped networks must fit the model section and the replicas."""
    m, tr = cfg.model, cfg.train
    for key, reference in (("width", 64), ("n_steps", 7), ("shared_weights", True)):
        _check(getattr(m, key) == reference, f"model.{key}",
               f"must be {reference!r} (the published networks' architecture) with train.pretrain.source: published",
               getattr(m, key))
    _check(tr.n_replicas <= 8, "train.n_replicas", "must be <= 8 with train.pretrain.source: published (8 networks "
           "were published)", tr.n_replicas)


def _validate_calibration(s: SimulationConfig) -> None:
    c = s.calibration
    _check(c.n_configurations >= 1, "simulation.calibration.n_configurations", "must be >= 1", c.n_configurations)
    _check(c.n_runs >= 1, "simulation.calibration.n_runs", "must be >= 1", c.n_runs)
    _check(1 <= c.n_time_points <= N_PUBLISHED, "simulation.calibration.n_time_points",
           f"must be in 1 .. {N_PUBLISHED} (the published time points)", c.n_time_points)
    _check(c.max_time_tau_alpha > 0, "simulation.calibration.max_time_tau_alpha", "must be > 0", c.max_time_tau_alpha)
    _check(c.frames_per_decade >= 1, "simulation.calibration.frames_per_decade", "must be >= 1", c.frames_per_decade)
    for t in s.calibrated_temperatures():
        # the pilot needs a few recorded times before F_s can cross 1/e between two of them
        steps = c.max_time_tau_alpha * s.tau_alpha[t] / s.timestep
        _check(steps >= 10, "simulation.calibration.max_time_tau_alpha",
               f"the pilot at T = {t} would last {steps:.3g} timesteps (max_time_tau_alpha x tau_alpha[{t}] / "
               "timestep); it needs at least 10", c.max_time_tau_alpha)


def require_resolved_time_points(cfg: Config, command: str = "this command") -> None:
    """:class:`ConfigError` if any time points are still ``calibrated``: they are measured first."""
    pending = cfg.simulation.calibrated_temperatures()
    if pending:
        temps = ", ".join(f"{t:g}" for t in pending)
        raise ConfigError(f"simulation.time_points: 'calibrated' at T = {temps} is measured by a pilot run first; "
                          f"{command} needs the resolved lists: run 'hpc-botan calibrate CONFIG --out RUN_DIR' "
                          "(or 'hpc-botan run') first")


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> Config:
    """Build and validate a :class:`Config`; errors are prefixed with ``source``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a YAML mapping at the top level")
    try:
        return validate(_build(Config, data, ""))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def available_presets() -> list[str]:
    """Names of the presets shipped in ``hpc_botan/presets``."""
    root = resources.files("hpc_botan") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{source}: not a config (YAML nested too deep)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def read_yaml_file(path: str | Path) -> Any:
    """The YAML document of the file ``path``; a :class:`ConfigError` (one line, naming it) if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); a config file is YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return _read_yaml(text, str(path))


def _key_parts(key: str) -> list[str | float]:
    """The parts of a ``--set`` key: ``simulation.tau_alpha.0.64`` is [simulation, tau_alpha, 0.64]
    (two digit parts in a row are one number: the key of a per-temperature mapping)."""
    parts: list[str | float] = []
    words = key.split(".")
    k = 0
    while k < len(words):
        if words[k].isdigit() and k + 1 < len(words) and words[k + 1].isdigit():
            parts.append(float(f"{words[k]}.{words[k + 1]}"))
            k += 2
        else:
            parts.append(words[k])
            k += 1
    return parts


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY.PATH=VALUE")
        key, raw = item.split("=", 1)
        parts = _key_parts(key.strip())
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {part} is not a section")
        node[parts[-1]] = _read_yaml(raw, f"--set {key}")
    return data


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """Load a preset by name or a YAML file by path, apply overrides, validate.

    Raises :class:`ConfigError` (one line, naming the file and key) on any problem.
    """
    path = Path(name_or_path)
    if path.is_file():
        source = str(path)
        if name_or_path in available_presets():
            log.warning("%s: the file %s is used, not the preset of the same name (give a path such as ./%s, or "
                        "run elsewhere, to make the choice explicit)", name_or_path, path.resolve(), name_or_path)
        data = read_yaml_file(path)
    elif name_or_path in available_presets():
        source = f"preset {name_or_path}"
        text = (resources.files("hpc_botan") / "presets" / f"{name_or_path}.yaml").read_text()
        data = _read_yaml(text, source)
    else:
        raise ConfigError(
            f"{name_or_path}: no such config file and no such preset "
            f"(presets: {', '.join(available_presets())})"
        )
    data = data if data is not None else {}
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a YAML mapping at the top level")
        data = apply_overrides(data, overrides)
    log.debug("config: %s with overrides %s", source, overrides or "none")
    return config_from_dict(data, source)
