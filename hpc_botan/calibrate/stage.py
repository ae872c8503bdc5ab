"""Calibrated time points: a pilot run measures τα, the run records at published fractions of it.

Where ``simulation.time_points`` is ``calibrated`` (for every temperature or for some),
:func:`calibrate` resolves the configuration before any production simulation:

1. ``RUN_DIR/pilot`` is a run directory of its own (:func:`pilot_config`): the same physics,
   potential and LAMMPS settings, ``simulation.calibration.n_configurations`` configurations of
   each calibrated temperature with ``calibration.n_runs`` runs each, recorded at log-spaced
   times up to ``calibration.max_time_tau_alpha`` × the estimated ``simulation.tau_alpha``, and a
   seed derived from ``simulation.seed`` so that no pilot configuration is a production one.
2. It is simulated with the simulate stage's own jobs, then τα is the 1/e crossing of the
   configuration-averaged F_s of A particles at k = 2π (:func:`hpc_botan.analysis.fs_analysis`).
   ``RUN_DIR/pilot/calibration.json`` records it (τα per configuration, their mean, the F_s curve).
3. The resolved configuration (time points = the first ``calibration.n_time_points`` published
   fractions × the measured τα, rounded to whole MD steps; ``tau_alpha`` = the measured value) is written to
   ``RUN_DIR/config.yaml``: every later stage reads only resolved lists.

Re-running resumes: a finished pilot is not simulated again (its calibration.json is read), and
the same configuration with ``calibrated`` resolves to the lists stored in ``RUN_DIR/config.yaml``,
so the run directory accepts it.  A pilot made with other settings (a longer
``max_time_tau_alpha`` after a pilot that was too short) is replaced while the run has no
config.yaml yet, since nothing depends on it; the old one is renamed ``pilot.superseded-N``, not
deleted (its trajectories may still be worth reading, and deleting them is the user's call).

:class:`CalibrateStage` is this step as the first stage of the registry (a ``resolve`` stage:
``hpc-botan run`` resolves the configuration with it before it plans the other stages).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from hpc_botan.analysis import fs_analysis
from hpc_botan.config import CALIBRATED, CalibrationConfig, Config, config_from_dict
from hpc_botan.errors import ConfigError, UserError
from hpc_botan.io.durable import write_text_atomic
from hpc_botan.io.rundir import (
    CONFIG_NAME,
    PILOT_DIR,
    RunLayout,
    check_run_dir_path,
    first_difference,
    holds_only_pilots,
    load_run_config,
    open_run_dir,
    set_pilot_aside,
)
from hpc_botan.launch.executors import map_tasks
from hpc_botan.physics.time_points import calibrated_time_points, pilot_frames
from hpc_botan.plan.configurations import pending_configurations
from hpc_botan.simulate.stage import run_configuration, select_accelerator, simulation_resources
from hpc_botan.stage import Resources, Stage

log = logging.getLogger("hpc_botan.calibrate")

CALIBRATION_FILE = "calibration.json"
#: Stretching exponent assumed when a too-short pilot's last F_s is extrapolated to 1/e (β of
#: exp(-(t/τ)^β); KA liquids have 0.7 … 1, the smaller value suggests the longer pilot).
_BETA_FOR_ADVICE = 0.7


def pilot_seed(seed: int) -> int:
    """The pilot's master seed, derived from ``simulation.seed`` (in 1 … 2^31 − 17, never ``seed`` itself).

    With another master seed every preparation and velocity seed of the pilot differs from the
    production ones (:func:`hpc_botan.simulate.stage.derive_seeds`), so no pilot configuration is reused.
    """
    state = np.random.SeedSequence([seed, 0x70117]).generate_state(1, dtype=np.uint32)[0]
    candidate = int(state) % (2**31 - 18) + 1
    return candidate if candidate != seed else candidate % (2**31 - 18) + 1


def pilot_config(cfg: Config) -> Config:
    """The configuration of ``RUN_DIR/pilot`` for the calibrated temperatures of ``cfg``.

    Everything but these simulation settings is ``cfg``'s: temperatures (the calibrated ones),
    n_configurations = n_train = calibration.n_configurations, n_runs = calibration.n_runs,
    explicit time points (:func:`pilot_frames` up to max_time_tau_alpha × the estimate), the
    estimated tau_alpha (the pilot's equilibration), the derived seed, and a default calibration
    section (the pilot is not calibrated itself; its settings are in the values above).
    """
    s = cfg.simulation
    c = s.calibration
    temps = s.calibrated_temperatures()
    if not temps:
        raise ValueError("pilot_config: no temperature has calibrated time points")
    sim = dataclasses.replace(
        s, temperatures=temps, n_configurations=c.n_configurations, n_train=c.n_configurations, n_runs=c.n_runs,
        time_points={t: pilot_frames(s.tau_alpha[t], c.max_time_tau_alpha, s.timestep, c.frames_per_decade)
                     for t in temps},
        tau_alpha={t: s.tau_alpha[t] for t in temps}, seed=pilot_seed(s.seed), calibration=CalibrationConfig())
    return config_from_dict(dataclasses.replace(cfg, simulation=sim).to_dict(), "the pilot's configuration")


def resolved_config(cfg: Config, tau_alpha: dict[float, float]) -> Config:
    """``cfg`` with every calibrated temperature's time points and τα taken from ``tau_alpha`` (τ).

    The time points are rounded to whole MD steps: they are the times the trajectories will carry
    (the targets stage checks the two against each other).  Raises :class:`UserError` when they do
    not fit (two within one timestep).
    """
    s = cfg.simulation
    n = s.calibration.n_time_points
    table = {t: CALIBRATED for t in s.temperatures} if s.time_points == CALIBRATED else dict(s.time_points)
    times = {t: (calibrated_time_points(tau_alpha[t], t, n, s.timestep) if v == CALIBRATED else v)
             for t, v in table.items()}
    taus = {**s.tau_alpha, **{t: tau_alpha[t] for t in s.calibrated_temperatures()}}
    out = dataclasses.replace(cfg, simulation=dataclasses.replace(s, time_points=times, tau_alpha=taus))
    try:
        return config_from_dict(out.to_dict(), "the calibrated configuration")
    except ConfigError as exc:
        raise UserError(f"{exc} (measured tau_alpha {_format_taus(tau_alpha)} x the published fractions, on whole "
                        f"steps of simulation.timestep = {s.timestep:g}); lower simulation.timestep") from None


def provisional_config(cfg: Config) -> Config:
    """``cfg`` resolved with the *estimated* τα, not validated: for planning (how many time points) only."""
    s = cfg.simulation
    if not s.calibrated_temperatures():
        return cfg
    table = {t: CALIBRATED for t in s.temperatures} if s.time_points == CALIBRATED else dict(s.time_points)
    times = {t: (calibrated_time_points(s.tau_alpha[t], t, s.calibration.n_time_points) if v == CALIBRATED else v)
             for t, v in table.items()}
    return dataclasses.replace(cfg, simulation=dataclasses.replace(s, time_points=times))


def _format_taus(taus: dict[float, float]) -> str:
    return ", ".join(f"{v:.4g} at T = {t:g}" for t, v in sorted(taus.items()))


def _without_time_points(cfg: Config) -> dict[str, Any]:
    identity = cfg.identity()
    identity["simulation"] = {k: v for k, v in identity["simulation"].items() if k not in ("time_points", "tau_alpha")}
    return identity


def _check_run_dir(run_dir: Path, cfg: Config) -> None:
    """Before a pilot: refuse a run directory that cannot be this configuration's, whatever τα turns out."""
    path = run_dir / CONFIG_NAME
    if path.is_file():
        stored = load_run_config(run_dir)
        diff = first_difference(_without_time_points(cfg), _without_time_points(stored))
        if diff:
            raise UserError(f"{path}: this run directory holds a different configuration (differs at {diff}); "
                            "use another --out, or the same configuration to resume")
        if not (run_dir / PILOT_DIR / CALIBRATION_FILE).is_file():
            raise UserError(f"{path}: this run directory's time points were not calibrated (it has no "
                            f"{PILOT_DIR}/{CALIBRATION_FILE}); use another --out, or its own time points")
    elif run_dir.exists() and not holds_only_pilots(run_dir):
        raise UserError(f"{run_dir}: exists, is not empty and has no {CONFIG_NAME}; refusing to write into it")


def _open_pilot(run_dir: Path, pcfg: Config) -> Path:
    """Open ``run_dir/pilot`` for ``pcfg``; a pilot of other settings is set aside while nothing depends on it."""
    pilot = run_dir / PILOT_DIR
    if (pilot / CONFIG_NAME).is_file() and not (run_dir / CONFIG_NAME).is_file():
        diff = first_difference(pcfg.identity(), load_run_config(pilot).identity())
        if diff:
            kept = set_pilot_aside(run_dir)
            log.warning("calibrate: %s was made with other settings (differs at %s); it is kept as %s and the "
                        "pilot simulated again", pilot, diff, kept)
    return open_run_dir(pilot, pcfg)


def _pilot_finished(pilot: Path, pcfg: Config) -> bool:
    """Whether ``pilot`` holds every configuration of ``pcfg``, made with these very settings."""
    if not (pilot / CONFIG_NAME).is_file():
        return False
    try:
        if load_run_config(pilot).identity() != pcfg.identity():
            return False
    except UserError:
        return False
    return not pending_configurations(pilot, pcfg)


def _simulate_pilot(pilot: Path, pcfg: Config, executor: str) -> None:
    pending = pending_configurations(pilot, pcfg)
    if not pending:
        log.info("calibrate: the pilot in %s finished earlier, not simulated again", pilot)
        return
    if executor != "slurm":
        select_accelerator(pcfg)  # a missing LAMMPS is reported now, not from a job
    s = pcfg.simulation
    log.info("calibrate: pilot of %d configuration(s) x %d runs at T = %s, up to t = %s", len(pending), s.n_runs,
             ", ".join(f"{t:g}" for t in s.temperatures),
             ", ".join(f"{s.time_points[t][-1]:.4g}" for t in s.temperatures))
    map_tasks(run_configuration, [(str(pilot), k) for k in pending], kind=executor,
              folder=RunLayout(pilot).jobs("simulate"), launch=pcfg.launch, resources=simulation_resources(pcfg),
              name="pilot")


def too_short_message(temperature: float, last_time: float, last_fs: float, cfg: Config) -> str:
    """The one-line advice when F_s of the pilot at ``temperature`` stayed above 1/e up to ``last_time`` (τ)."""
    s = cfg.simulation
    c = s.calibration
    estimate = s.tau_alpha[temperature]
    if 0.0 < last_fs < 1.0:
        # F_s ≈ exp(-(t/τ)^β) through the last point gives τ = t / (−ln F)^(1/β); twice that, to be safe
        guess = last_time / (-math.log(last_fs)) ** (1.0 / _BETA_FOR_ADVICE)
        needed = max(2.0 * c.max_time_tau_alpha, math.ceil(2.0 * guess / estimate))
    else:
        needed = 10.0 * c.max_time_tau_alpha
    return (f"simulation.time_points: the pilot at T = {temperature:g} ran to t = {last_time:.4g} "
            f"({c.max_time_tau_alpha:g} x the estimated tau_alpha {estimate:g}) and F_s is still {last_fs:.3f}, above "
            f"1/e = 0.368: tau_alpha is longer; run it longer with --set simulation.calibration.max_time_tau_alpha="
            f"{needed:g} (or a larger simulation.tau_alpha estimate for T = {temperature:g})")


def measure(pilot: Path, cfg: Config) -> dict[str, Any]:
    """τα per calibrated temperature from the finished pilot in ``pilot``: the calibration.json record.

    Raises :class:`UserError` (one line, with how long to run instead) where F_s never reaches 1/e.
    """
    result = fs_analysis(pilot)
    ps = load_run_config(pilot).simulation
    # relative to this file's directory only: a run directory may move between machines
    record: dict[str, Any] = {"k": result.k, "pilot": {"config": CONFIG_NAME, "seed": ps.seed,
                                                       "n_configurations": ps.n_configurations, "n_runs": ps.n_runs},
                              "temperatures": {}}
    for t in cfg.simulation.calibrated_temperatures():
        times, fs = result.times[t], result.mean(t)
        tau = result.tau_alpha(t)
        if not math.isfinite(tau):
            if fs[0] <= math.exp(-1.0):
                raise UserError(f"simulation.time_points: the pilot's F_s at T = {t:g} is already {fs[0]:.3f} at its "
                                f"first recorded time t = {times[0]:.4g}, below 1/e: tau_alpha is shorter than one "
                                "recorded interval; lower simulation.timestep")
            raise UserError(too_short_message(t, float(times[-1]), float(fs[-1]), cfg))
        per_conf = result.tau_per_configuration[t]
        finite = per_conf[np.isfinite(per_conf)]
        record["temperatures"][repr(t)] = {
            "tau_alpha": tau,
            "tau_estimate": cfg.simulation.tau_alpha[t],
            "tau_per_configuration": [float(x) if np.isfinite(x) else None for x in per_conf],
            "tau_mean_of_configurations": float(finite.mean()) if finite.size else None,
            "n_configurations": int(per_conf.size),
            "times": [float(x) for x in times],
            "fs_mean": [float(x) for x in fs],
        }
    return record


def measured_tau_alpha(record: dict[str, Any]) -> dict[float, float]:
    """Temperature → measured τα (τ) of a calibration.json record."""
    return {float(t): float(v["tau_alpha"]) for t, v in record["temperatures"].items()}


def calibrate(run_dir: str | Path, cfg: Config, executor: str | None = "local") -> tuple[Path, Config]:
    """Resolve ``cfg``'s calibrated time points with a pilot in ``run_dir/pilot``; open ``run_dir`` for the result.

    ``executor`` runs the pilot's configurations (local, slurm, debug: as in ``hpc-botan simulate``);
    ``None`` refuses to simulate (a finished pilot is still used).  Returns the run directory and the
    resolved configuration, which is now its config.yaml.  A configuration without calibrated time
    points is only opened.
    """
    run_dir = check_run_dir_path(run_dir)
    if not cfg.simulation.calibrated_temperatures():
        return open_run_dir(run_dir, cfg), cfg
    _check_run_dir(run_dir, cfg)
    pcfg = pilot_config(cfg)
    if executor is None and not _pilot_finished(run_dir / PILOT_DIR, pcfg):
        raise UserError(f"{run_dir / PILOT_DIR}: the pilot run that calibrates simulation.time_points is not "
                        "finished; run 'hpc-botan calibrate CONFIG --out RUN_DIR' first (--executor slurm runs it "
                        "as Slurm jobs), then this command again")
    pilot = _open_pilot(run_dir, pcfg)
    if executor is not None:
        _simulate_pilot(pilot, pcfg, executor)
    path = pilot / CALIBRATION_FILE
    record = None
    if path.is_file():
        try:
            record = json.loads(path.read_text())
            taus = measured_tau_alpha(record)
            if set(taus) != set(cfg.simulation.calibrated_temperatures()):
                record = None
        except (ValueError, KeyError, TypeError, AttributeError):
            record = None  # unreadable: measured again from the trajectories
    if record is None:
        record = measure(pilot, cfg)
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    resolved = resolved_config(cfg, measured_tau_alpha(record))
    return open_run_dir(run_dir, resolved), resolved


class CalibrateStage(Stage):
    """The pilot that measures τα where the time points are ``calibrated``: the first stage of such a run.

    A ``resolve`` stage (:data:`hpc_botan.stage.LAUNCH_KINDS`): :meth:`resolve` (:func:`calibrate`)
    writes the resolved ``RUN_DIR/config.yaml`` before the other stages are planned.  It applies to a
    configuration that still says ``calibrated``; the run directory's own configuration is resolved,
    so for it the stage is finished when the pilot measured τα (``pilot/calibration.json``).
    """

    name = "calibrate"
    launch = "resolve"
    summary = "pilot run that measures tau_alpha and sets the calibrated time points (pilot/calibration.json)"

    def applies(self, cfg: Config) -> bool:
        return bool(cfg.simulation.calibrated_temperatures())

    def absent_because(self, cfg: Config) -> str:
        return "time points given in the config" if cfg.source.format == "simulate" else super().absent_because(cfg)

    def done(self, run_dir: Path, cfg: Config) -> bool:
        """Whether the pilot finished and τα is measured (for a configuration that still says
        ``calibrated``: a pilot made with its settings)."""
        pilot = Path(run_dir) / PILOT_DIR
        if not (pilot / CALIBRATION_FILE).is_file():
            return False
        return not self.applies(cfg) or _pilot_finished(pilot, pilot_config(cfg))

    def resources(self, cfg: Config) -> Resources:
        """What one of the pilot's configuration jobs requests."""
        return simulation_resources(pilot_config(cfg) if self.applies(cfg) else cfg)

    def resolve(self, run_dir: str | Path, cfg: Config, executor: str | None) -> tuple[Path, Config]:
        return calibrate(run_dir, cfg, executor=executor)

    def provisional(self, cfg: Config) -> Config:
        return provisional_config(cfg)

    def run(self, run_dir: Path, cfg: Config, part: str = "", *, show_progress: bool = True) -> Config:
        """The pilot's configurations as local subprocesses, then the resolved configuration."""
        return self.resolve(run_dir, cfg, executor="local")[1]
