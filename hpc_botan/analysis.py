"""Checks of the simulated physics from the trajectory files (``hpc-botan analyze …``)."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpc_botan.errors import UserError
from hpc_botan.io import h5md
from hpc_botan.io.durable import atomic_path
from hpc_botan.io.lammps_log import read_thermo
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.physics.targets import relaxation_time, self_intermediate_scattering
from hpc_botan.physics.time_points import PUBLISHED_TAU_ALPHA
from hpc_botan.plan.configurations import configuration_tasks, trajectory_path

log = logging.getLogger("hpc_botan.analysis")


@dataclass
class FsResult:
    """F_s(k, t) of A particles per temperature, over the finished configurations."""

    k: float
    #: temperature → (F,) times, τ
    times: dict[float, np.ndarray] = field(default_factory=dict)
    #: temperature → (C, F) F_s per configuration (averaged over runs and A particles)
    per_configuration: dict[float, np.ndarray] = field(default_factory=dict)
    #: temperature → (C,) τα per configuration (NaN where F_s stays above 1/e)
    tau_per_configuration: dict[float, np.ndarray] = field(default_factory=dict)

    def mean(self, temp: float) -> np.ndarray:
        return self.per_configuration[temp].mean(axis=0)

    def tau_alpha(self, temp: float) -> float:
        """τα of the configuration-averaged F_s."""
        return relaxation_time(self.times[temp], self.mean(temp))


def fs_analysis(run_dir: str | Path, k: float = 2.0 * np.pi) -> FsResult:
    """Compute F_s(k, t) for A particles from every finished trajectory file of ``run_dir``."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    result = FsResult(k=k)
    unfinished, unreadable = [], []
    for task in configuration_tasks(cfg):
        path = trajectory_path(run_dir, task)
        if not h5md.is_complete(path):
            unfinished.append(path)
            continue
        try:
            traj = h5md.read_configuration(path)
        except UserError as exc:
            unreadable.append(str(exc))
            continue
        disp = traj.positions[:, 1:] - traj.positions[:, :1]
        fs = self_intermediate_scattering(disp, k, mask=traj.species == 0)
        times = traj.times[1:]
        result.times.setdefault(task.temperature, times)
        result.per_configuration.setdefault(task.temperature, []).append(fs)
    if unfinished and result.per_configuration:
        log.warning("analyze: %d configuration(s) without a finished trajectory are left out (the first: %s)",
                    len(unfinished), unfinished[0])
    for problem in unreadable:
        log.warning("analyze: left out, unreadable: %s", problem)
    if not result.per_configuration:
        raise UserError(f"{run_dir}/simulate: no finished, readable trajectory files"
                        + (f" ({unreadable[0]})" if unreadable else "; run 'hpc-botan simulate' first"))
    for temp, rows in result.per_configuration.items():
        result.per_configuration[temp] = np.array(rows)
        result.tau_per_configuration[temp] = np.array(
            [relaxation_time(result.times[temp], row) for row in rows])
    return result


def format_fs_table(result: FsResult) -> str:
    """Human-readable table of F_s(t) and τα per temperature."""
    lines = []
    for temp in sorted(result.per_configuration):
        per = result.per_configuration[temp]
        taus = result.tau_per_configuration[temp]
        lines.append(f"T = {temp:g}: {per.shape[0]} configuration(s), k = {result.k:.4f}")
        lines.append(f"  {'t':>12} {'F_s mean':>10} {'spread':>8}")
        spread = per.std(axis=0)
        for t, f, s in zip(result.times[temp], per.mean(axis=0), spread):
            lines.append(f"  {t:12.4g} {f:10.4f} {s:8.4f}")
        tau = result.tau_alpha(temp)
        finite = taus[np.isfinite(taus)]
        tau_text = f"{tau:.4g}" if np.isfinite(tau) else f"> {result.times[temp][-1]:.4g} (F_s stays above 1/e)"
        lines.append(f"  tau_alpha (mean F_s) = {tau_text}")
        if finite.size:
            sem = finite.std(ddof=1) / np.sqrt(finite.size) if finite.size > 1 else float("nan")
            lines.append(f"  tau_alpha per configuration: mean {finite.mean():.4g}, std {finite.std():.3g}, "
                         f"sem {sem:.3g}, min {finite.min():.4g}, max {finite.max():.4g} (n = {finite.size})")
            lines.append("  tau_alpha of each configuration: " + ", ".join(f"{t:.4g}" for t in taus))
    return "\n".join(lines)


def write_fs_csv(result: FsResult, run_dir: str | Path) -> Path:
    """Write ``analysis/fs.csv`` (per temperature and time: mean and spread of F_s, τα); return its path."""
    csv_path = RunLayout(run_dir).analysis / "fs.csv"
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["temperature", "time", "fs_mean", "fs_std", "n_configurations", "tau_alpha"])
            for temp in sorted(result.per_configuration):
                per = result.per_configuration[temp]
                for t, f, s in zip(result.times[temp], per.mean(axis=0), per.std(axis=0)):
                    w.writerow([temp, t, f, s, per.shape[0], result.tau_alpha(temp)])
    return csv_path


@dataclass(frozen=True)
class ConfigurationEnergy:
    """Potential energy per particle (ε) of one configuration: its NVT equilibration and its NVE runs."""

    temperature: float
    configuration: int
    equilibration_time: float   # τ of NVT at T (the last thermo block of prepare.log)
    nvt_mean: float             # mean over the second half of the equilibration
    nvt_drift: float            # mean of the last quarter minus mean of the third quarter (ageing left)
    nve_mean: float             # mean over every thermo line with t > 0 of every run
    nve_temperature: float      # mean kinetic temperature of the runs


def energy_analysis(run_dir: str | Path) -> list[ConfigurationEnergy]:
    """The potential energies of every configuration with a finished trajectory, from the simulate logs.

    An equilibration that is long enough shows no drift (``nvt_drift`` within the thermal noise)
    and the same ``nve_mean`` as a longer one; a structure still ageing has a higher energy.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    rows = []
    for task in configuration_tasks(cfg):
        if not h5md.is_complete(trajectory_path(run_dir, task)):
            continue
        logs = RunLayout(run_dir).simulation_logs(task.name)
        # lammps_inputs/prepare.in: minimize, melt, quench, NVT at T, then 'run 0': NVT is the next-to-last block
        blocks = read_thermo(logs / "prepare.log")
        if len(blocks) < 5 or "PotEng" not in blocks[-2] or blocks[-2]["PotEng"].size < 2:
            raise UserError(f"{logs / 'prepare.log'}: no thermo output of the NVT equilibration (PotEng)")
        nvt = blocks[-2]
        time, pe = nvt["Time"] - nvt["Time"][0], nvt["PotEng"]
        span = time[-1]
        half, third, last = time >= span / 2, (time >= span / 2) & (time < 3 * span / 4), time >= 3 * span / 4
        drift = float(pe[last].mean() - pe[third].mean()) if third.any() and last.any() else float("nan")
        nve_pe, nve_t = [], []
        for run_log in sorted(logs.glob("run-*.log")):
            for block in read_thermo(run_log):
                keep = block["Time"] > 0
                nve_pe.append(block["PotEng"][keep])
                nve_t.append(block["Temp"][keep])
        nve_pe, nve_t = (np.concatenate(v) if v else np.array([np.nan]) for v in (nve_pe, nve_t))
        rows.append(ConfigurationEnergy(task.temperature, task.index, float(span), float(pe[half].mean()), drift,
                                        float(nve_pe.mean()), float(nve_t.mean())))
    if not rows:
        raise UserError(f"{run_dir}/simulate: no finished configuration; run 'hpc-botan simulate' first")
    return rows


def format_energy_table(rows: list[ConfigurationEnergy]) -> str:
    """One line per configuration, and the mean ± standard error per temperature."""
    lines = [f"  {'T':>6} {'conf':>5} {'NVT (τ)':>9} {'U NVT':>9} {'drift':>8} {'U NVE':>9} {'T NVE':>7}"]
    for r in rows:
        lines.append(f"  {r.temperature:6.3g} {r.configuration:5d} {r.equilibration_time:9.4g} {r.nvt_mean:9.4f} "
                     f"{r.nvt_drift:8.4f} {r.nve_mean:9.4f} {r.nve_temperature:7.4f}")
    for temp in sorted({r.temperature for r in rows}):
        u = np.array([r.nve_mean for r in rows if r.temperature == temp])
        d = np.array([r.nvt_drift for r in rows if r.temperature == temp and np.isfinite(r.nvt_drift)])
        drift = (f"NVT drift {d.mean():+.4f} ± {_standard_error(d):.4f}" if d.size
                 else "NVT drift: too few thermo lines (lammps.thermo_every)")
        lines.append(f"  T = {temp:g}: U (NVE) per particle {u.mean():.4f} ± {_standard_error(u):.4f} (standard error, "
                     f"n = {u.size}); {drift}")
    return "\n".join(lines)


def _standard_error(values: np.ndarray) -> float:
    """Standard error of the mean (ddof = 1); NaN for fewer than two values."""
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


@dataclass(frozen=True)
class TauAlphaPoint:
    """τα of one run directory at one temperature, beside the published value."""

    run_dir: str
    temperature: float
    n_particles: int
    equilibration_tau_alpha: float   # the run's simulation.equilibration_tau_alpha (× its tau_alpha estimate)
    tau_alpha: float                 # τ, where the configuration-averaged F_s reaches 1/e
    tau_mean: float                  # τ, mean of the configurations' τα
    tau_standard_error: float        # τ, standard error of that mean (ddof = 1)
    n_configurations: int
    published: float                 # τ (nan where the paper gives none)

    @property
    def ratio(self) -> float:
        """Mean τα of the configurations over the published τα."""
        return self.tau_mean / self.published

    @property
    def ratio_standard_error(self) -> float:
        """Standard error of :attr:`ratio` (the published value taken as exact)."""
        return self.tau_standard_error / self.published


def tau_alpha_points(run_dirs: list[str | Path], k: float = 2.0 * np.pi) -> list[TauAlphaPoint]:
    """τα(T) of every temperature of every run directory (:func:`fs_analysis`), beside the published τα."""
    points = []
    for run_dir in map(Path, run_dirs):
        cfg = load_run_config(run_dir)
        result = fs_analysis(run_dir, k=k)
        for temp in sorted(result.per_configuration):
            taus = result.tau_per_configuration[temp]
            finite = taus[np.isfinite(taus)]
            published = next((v for t, v in PUBLISHED_TAU_ALPHA.items() if abs(t - temp) < 1e-6), float("nan"))
            points.append(TauAlphaPoint(str(run_dir), temp, cfg.simulation.n_particles,
                                        cfg.simulation.equilibration_tau_alpha, result.tau_alpha(temp),
                                        float(finite.mean()) if finite.size else float("nan"),
                                        _standard_error(finite), int(finite.size), published))
    return points


def format_tau_alpha_table(points: list[TauAlphaPoint]) -> str:
    """Markdown table of :func:`tau_alpha_points`: ours, published, ratio ± standard error."""
    lines = ["| run | T | N | NVT (× τα estimate) | τα (mean F_s) | τα per configuration, mean ± SE (n) | "
             "published | ratio ± SE |", "|---|---|---|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {Path(p.run_dir).name} | {p.temperature:g} | {p.n_particles} | {p.equilibration_tau_alpha:g} | "
                     f"{p.tau_alpha:.4g} | {p.tau_mean:.4g} ± {p.tau_standard_error:.2g} ({p.n_configurations}) | "
                     f"{p.published:g} | {p.ratio:.3f} ± {p.ratio_standard_error:.3f} |")
    return "\n".join(lines)
