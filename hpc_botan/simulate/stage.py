"""The simulate stage as picklable functions, one initial configuration per call.

Python API (also what ``hpc-botan simulate`` uses under submitit)::

    from hpc_botan.simulate.stage import prepare_run, configuration_tasks, run_configuration
    run_dir = prepare_run("quick", "runs/quick")            # writes runs/quick/config.yaml
    tasks = configuration_tasks(load_run_config(run_dir))   # one per (temperature, configuration)
    jobs = executor.map_array(run_configuration, [str(run_dir)] * len(tasks), range(len(tasks)))

:func:`run_configuration` reads everything from the run directory, so it runs on any node
that sees that directory, and skips what is finished: a complete trajectory file, a
prepared configuration, and each run already gathered.
"""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from hpc_botan.config import Config, load_config
from hpc_botan.errors import LammpsError
from hpc_botan.io import h5md
from hpc_botan.io.durable import exclusive_lock, write_text_atomic
from hpc_botan.io.lammps_restart import remove_restarts, usable_restart
from hpc_botan.io.lammps_text import read_data_file
from hpc_botan.io.rundir import RunLayout, load_run_config, open_run_dir
from hpc_botan.physics import ka
from hpc_botan.plan.configurations import (
    ConfigurationTask,
    configuration_tasks,
    pending_configurations,
    simulated,
    trajectory_path,
)
from hpc_botan.simulate.accelerators import AcceleratorChoice, choose_accelerator, count_visible_gpus
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, probe_capabilities, run_batch
from hpc_botan.simulate.stop_request import StopOnSignal
from hpc_botan.stage import Resources, Stage
from hpc_botan.version import __version__

log = logging.getLogger("hpc_botan.simulate")

PREPARE_SCRIPT = "prepare.in"
ISOCONF_SCRIPT = "isoconf.in"
#: In a configuration's work folder: its appearance stops the LAMMPS run in progress (stop_request)
STOP_FILE = "STOP"
#: LAMMPS checks for the stop file every this many steps (a few seconds at N = 4096 on one core)
STOP_CHECK_STEPS = 1000


def derive_seeds(master: int, t_index: int, index: int, n_runs: int) -> tuple[int, list[int]]:
    """Seeds for one configuration: (preparation seed, one velocity seed per run).

    Derived with numpy's SeedSequence from (master, t_index, index), so they do not depend
    on how many configurations or runs exist and adding more never changes earlier ones.
    Values lie in 1 … 2^30 (LAMMPS needs positive 32-bit seeds; prepare.in adds 1 and 2).
    """
    state = np.random.SeedSequence([master, t_index, index]).generate_state(n_runs + 1, dtype=np.uint32)
    seeds = [int(x % (2**30)) + 1 for x in state]
    return seeds[0], seeds[1:]


def frame_steps(cfg: Config, temperature: float) -> list[int]:
    """MD steps (≥ 1) of the recorded time points at ``temperature``."""
    return [round(t / cfg.simulation.timestep) for t in cfg.simulation.time_points[temperature]]


def find_inputs_dir(cfg: Config) -> Path:
    """Directory holding the LAMMPS input scripts (config, repository checkout, or installed copy)."""
    candidates = []
    if cfg.lammps.inputs_dir:
        candidates.append(Path(cfg.lammps.inputs_dir))
    candidates.append(Path(__file__).resolve().parents[2] / "lammps_inputs")
    candidates.append(Path(sys.prefix) / "share" / "hpc_botan" / "lammps_inputs")
    for c in candidates:
        if (c / PREPARE_SCRIPT).is_file() and (c / ISOCONF_SCRIPT).is_file():
            return c.resolve()
    raise LammpsError(f"lammps.inputs_dir: no {PREPARE_SCRIPT}/{ISOCONF_SCRIPT} in {', '.join(map(str, candidates))}")


def prepare_run(config: str | Config, run_dir: str | Path, overrides: list[str] | None = None) -> Path:
    """Resolve ``config`` (preset name, YAML path or :class:`Config`) and open ``run_dir`` for it."""
    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    return open_run_dir(run_dir, cfg)


def select_accelerator(cfg: Config) -> AcceleratorChoice:
    """Pick the accelerator on the node where the job runs, and say which."""
    lm = cfg.lammps
    choice = choose_accelerator(lm.accelerator, probe_capabilities(), n_gpus=count_visible_gpus(), gpus=lm.gpus,
                                omp_threads=lm.omp_threads)
    log.info("LAMMPS accelerator: %s (%s) %s", choice.name, choice.reason, " ".join(choice.cmdargs))
    return choice


def simulation_resources(cfg: Config) -> Resources:
    """What one configuration job needs.

    GPUs (``lammps.gpus``) with ``accelerator: gpu | kokkos``, and with ``auto`` when the jobs go to
    nodes with GPUs (``launch.slurm.gpus_per_node > 0``): there ``auto`` picks the GPU styles.
    """
    lm = cfg.lammps
    on_gpus = lm.accelerator in ("gpu", "kokkos") or (lm.accelerator == "auto" and cfg.launch.slurm.gpus_per_node > 0)
    return Resources(cpus=lm.mpi_ranks * lm.omp_threads, gpus=lm.gpus if on_gpus else 0)


def common_variables(cfg: Config, accel: AcceleratorChoice, inputs: Path, work: Path) -> dict[str, list[str]]:
    """The variables both input scripts take from the config: potential (file, and table in ``work``), dt, skin."""
    s = cfg.simulation
    potential = inputs / ka.potential_file(s.potential, tabulated=accel.tabulated_potential)
    if not potential.is_file():
        raise LammpsError(f"{potential}: missing; lammps.inputs_dir holds no {s.potential} potential "
                          "(render it with: python -m hpc_botan.physics.ka DIR)")
    if accel.tabulated_potential:
        table = work / "ka_table.dat"
        if not table.is_file():
            write_text_atomic(table, ka.render_lammps_table(s.potential))
    else:
        table = inputs / "ka_table.dat"  # unused by the analytic potential
    return {
        "potential": [str(potential)],
        "ka_table": [str(table)],
        "dt": [repr(s.timestep)],
        "skin": [repr(cfg.lammps.neighbor_skin)],
        "thermo_every": [str(cfg.lammps.thermo_every)],
    }


def partitions_for(cfg: Config, n_jobs: int) -> int:
    """Number of LAMMPS partitions for an ensemble of ``n_jobs`` runs (1 = sequential)."""
    lm = cfg.lammps
    if lm.ensemble_mode == "sequential" or lm.mpi_ranks == 1:
        return 1
    if lm.ensemble_mode == "partitions":
        return lm.mpi_ranks
    return lm.mpi_ranks if n_jobs >= lm.mpi_ranks else 1


def run_configuration(run_dir: str | Path, task_index: int) -> str:
    """Simulate one initial configuration and its ensemble; return the trajectory file path.

    Picklable and idempotent: returns at once if the file is complete, reuses a prepared
    configuration and finished runs after an interruption.  Deterministic for a given
    configuration and ``lammps`` section (same seeds, same rank layout).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    tasks = configuration_tasks(cfg)
    task = tasks[task_index]
    s = cfg.simulation
    out = trajectory_path(run_dir, task)
    if h5md.is_complete(out, n_runs=s.n_runs, n_atoms=s.n_particles):
        log.info("%s: complete, skipped", task.name)
        return str(out)

    lock = RunLayout(run_dir).simulation_lock(task.name)
    with exclusive_lock(lock, f"configuration {task.name} of {run_dir}"):
        if h5md.is_complete(out, n_runs=s.n_runs, n_atoms=s.n_particles):  # another job just finished it
            return str(out)
        work = RunLayout(run_dir).simulation_work(task.name)
        with StopOnSignal(work / STOP_FILE):
            _simulate(run_dir, cfg, task, out)
    log.info("%s: written %s", task.name, out)
    return str(out)


def potential_form(accel: AcceleratorChoice) -> str:
    """``analytic`` (lj/smooth/linear) or ``tabulated`` (pair_style table): what a trajectory was made with."""
    return "tabulated" if accel.tabulated_potential else "analytic"


def refuse_mixed_potential_forms(run_dir: Path, cfg: Config, form: str) -> None:
    """:class:`LammpsError` if finished trajectories of ``run_dir`` were made with another potential form.

    The two forms agree to 1e-6 in the forces, but not bit for bit: one data set, one form.
    """
    for task in configuration_tasks(cfg):
        path = trajectory_path(run_dir, task)
        if not h5md.is_complete(path):
            continue
        recorded = h5md.read_parameters(path).get("potential_form", "analytic")  # older files: analytic only
        if recorded != form:
            raise LammpsError(f"{path}: made with the {recorded} potential, but this node would use the {form} one "
                              f"(lammps.accelerator = {cfg.lammps.accelerator}); a run directory never mixes the "
                              f"two: set lammps.accelerator to the one used so far, or use a new run directory")


def restart_variables(cfg: Config, restart_file: Path, stop_file: Path) -> dict[str, list[str]]:
    """The input scripts' restart variables for one LAMMPS run (see ``lammps_inputs/isoconf.in``).

    Periodic restarts every ``simulation.restart_every_steps`` into ``restart_file``; if a complete
    restart of this run is there (an earlier attempt was stopped or killed), the run continues
    from it (:func:`hpc_botan.io.lammps_restart.usable_restart`).
    """
    # every job of a batch sets all of them: one LAMMPS instance runs the batch, and the scripts
    # change resume and resume_from themselves
    variables = {"restart_every": [str(cfg.simulation.restart_every_steps)], "restart_file": [str(restart_file)],
                 "stop_file": [str(stop_file)], "stop_check": [str(STOP_CHECK_STEPS)], "resume": ["0"],
                 "resume_from": [str(restart_file)]}
    resume_from = usable_restart(restart_file)
    if resume_from is not None:
        log.info("%s: continuing from its restart %s", restart_file.stem, resume_from.name)
        variables.update(resume=["1"], resume_from=[str(resume_from)])
    return variables


def _simulate(run_dir: Path, cfg: Config, task: ConfigurationTask, out: Path) -> None:
    s = cfg.simulation
    work, logs = RunLayout(run_dir).simulation_work(task.name), RunLayout(run_dir).simulation_logs(task.name)
    work.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    inputs = find_inputs_dir(cfg)
    accel = select_accelerator(cfg)
    refuse_mixed_potential_forms(run_dir, cfg, potential_form(accel))
    common = common_variables(cfg, accel, inputs, work)
    prep_seed, run_seeds = derive_seeds(s.seed, task.t_index, task.index, s.n_runs)
    n_a, _ = ka.species_counts(s.n_particles)
    run_kwargs = dict(mpi_ranks=cfg.lammps.mpi_ranks, mpirun=cfg.lammps.mpirun, env=accel.env)

    stop_file = work / STOP_FILE
    data = work / "prepared.data"
    prepare_restart = work / "prepare.restart"
    if not data.is_file():
        tau = s.tau_alpha[task.temperature]
        tmp_data = work / ".prepared.data.tmp"
        variables = {
            **common,
            "N": [str(s.n_particles)], "n_a": [str(n_a)], "rho": [repr(s.density)],
            "T": [repr(task.temperature)], "T_melt": [repr(s.melt_temperature)],
            "tdamp": [repr(s.thermostat_damping)],
            "n_melt": [str(round(s.melt_time / s.timestep))],
            "n_quench": [str(round(s.quench_time / s.timestep))],
            "n_equil": [str(round(s.equilibration_tau_alpha * tau / s.timestep))],
            "seed": [str(prep_seed)], "out": [str(tmp_data)],
            **restart_variables(cfg, prepare_restart, stop_file),
        }
        log.info("%s: preparing (seed %d)", task.name, prep_seed)
        job = LammpsJob(str(inputs / PREPARE_SCRIPT), variables, str(logs / "prepare.log"), stop_file=str(stop_file))
        run_batch(Batch([job], list(accel.cmdargs), 1), **run_kwargs)
        tmp_data.replace(data)
    remove_restarts(prepare_restart)

    ids, species, positions0, images0, bounds = read_data_file(data)
    box = bounds[:, 1] - bounds[:, 0]
    steps = frame_steps(cfg, task.temperature)
    npys = [work / f"run-{r:03d}.npy" for r in range(s.n_runs)]
    pending = [r for r in range(s.n_runs) if not npys[r].is_file()]
    if pending:
        jobs = [
            LammpsJob(
                str(inputs / ISOCONF_SCRIPT),
                {**common, "T": [repr(task.temperature)], "seed": [str(run_seeds[r])], "data": [str(data)],
                 "frames": [str(x) for x in steps], "dump_prefix": [str(work / f"run-{r:03d}")],
                 **restart_variables(cfg, work / f"run-{r:03d}.restart", stop_file)},
                str(logs / f"run-{r:03d}.log"),
                frames_npy=str(npys[r]),
                n_atoms=s.n_particles,
                stop_file=str(stop_file),
            )
            for r in pending
        ]
        partitions = partitions_for(cfg, len(jobs))
        log.info("%s: %d of %d runs to do, %s", task.name, len(jobs), s.n_runs,
                 f"{partitions} LAMMPS partitions" if partitions > 1 else "one after another")
        run_batch(Batch(jobs, list(accel.cmdargs), partitions), **run_kwargs,
                  spec_path=work / "ensemble.batch.json")

    positions = np.empty((s.n_runs, len(steps) + 1, s.n_particles, 3))
    positions[:, 0] = positions0 - bounds[:, 0]  # frame 0: the prepared structure, in [0, L)
    for r, npy in enumerate(npys):
        # LAMMPS unwraps relative to the data file's image flags; express every frame
        # relative to the wrapped frame 0 instead (a no-op when all flags are 0)
        positions[r, 1:] = np.load(npy) - images0 * box - bounds[:, 0]
    if not np.isfinite(positions).all():  # a run that blew up is not a finished configuration
        raise LammpsError(f"{task.name}: LAMMPS returned NaN or inf positions (the integration blew up; check "
                          f"simulation.timestep); nothing was written, the logs are in {work}")
    all_steps = np.array([0, *steps], dtype=np.int64)
    traj = h5md.ConfigurationTrajectories(
        species=species, ids=ids, box=box, steps=all_steps, times=all_steps * s.timestep,
        positions=positions, run_seeds=np.array(run_seeds),
        attrs={
            "temperature": task.temperature, "configuration_index": task.index, "t_index": task.t_index,
            "prepare_seed": prep_seed, "density": s.density, "timestep": s.timestep,
            "config_yaml": cfg.to_yaml(), "accelerator": accel.name, "potential_form": potential_form(accel),
            "lammps_version": probe_capabilities().version, "hpc_botan_version": __version__,
            "numpy_version": np.__version__, "h5py_version": h5md.h5py.__version__,
            "python_version": sys.version.split()[0],
        },
    )
    h5md.write_configuration(out, traj)
    shutil.rmtree(work)


class SimulateStage(Stage):
    """Every initial configuration and its isoconfigurational runs (LAMMPS), one part per configuration."""

    name = "simulate"
    launch = "array"
    summary = "LAMMPS: melt, quench, equilibrate, isoconfigurational NVE runs (one H5MD file per configuration)"

    def applies(self, cfg: Config) -> bool:
        return simulated(cfg)

    def parts(self, run_dir: Path, cfg: Config) -> list[str]:
        return [f"conf-{k:05d}" for k in pending_configurations(run_dir, cfg)]

    def done(self, run_dir: Path, cfg: Config) -> bool:
        return not pending_configurations(run_dir, cfg)

    def resources(self, cfg: Config) -> Resources:
        return simulation_resources(cfg)

    def check_local(self, run_dir: Path, cfg: Config) -> None:
        """A missing LAMMPS or style is reported here, not from a subprocess."""
        select_accelerator(cfg)

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> str | list[str]:
        if part:
            return run_configuration(run_dir, int(part.split("-")[1]))
        return [run_configuration(run_dir, k) for k in pending_configurations(run_dir, cfg)]
