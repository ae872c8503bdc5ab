"""The decisive test of the simulated dynamics: our NVE runs from the authors' own configurations.

The shared pyg-botan sample holds configurations that the authors equilibrated at T = 0.44 with
their potential, each with 32 isoconfigurational runs at t = 4120 τ (= τα).  Starting from the
same t = 0 structures, this script runs ``lammps_inputs/isoconf.in`` (our potential, our NVE
protocol, fresh Maxwell–Boltzmann velocities at T) to t = 4120 and compares the mean S_A, MSD_A
and F_s(k = 2π) of A particles with the authors' runs of the same configuration.  Any difference
comes from the dynamics (potential, integration), not from equilibration.

Runs are long (4.12 M steps, about 2 h on one core for N = 4096) and resumable: every
``--chunk`` steps the run's state goes to ``state.restart`` (isoconf.in's ``restart_every``), and
running the same command again continues each unfinished run from its last complete restart::

    python benchmarks/authors_configurations.py run --configurations 1 2 --runs 2 --jobs 2 \
        --out runs/authors_check
    python benchmarks/authors_configurations.py compare --out runs/authors_check

``compare`` prints one row per run and one per configuration (our mean against the authors',
z-scores against the authors' per-run spread) and writes ``RUN/compare.csv`` and ``RUN/fs.csv``
(our F_s(t) at every frame, from which τα(T = 0.44) of our liquid follows).

``--potential`` picks the KA form (``simulation.potential``: shifted_force, the default,
shifted_force_global_cutoff or truncated_shifted).  It is recorded in ``RUN/potential.txt`` when
the first run starts, and a directory is never continued with another form (a directory
without the file predates the option and holds shifted_force runs).
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpc_botan.io.durable import write_text_atomic
from hpc_botan.io.lammps_restart import remove_restarts, usable_restart
from hpc_botan.io.lammps_text import read_dump_frame, write_data_file
from hpc_botan.physics import ka
from hpc_botan.physics.targets import relaxation_time, self_intermediate_scattering
from hpc_botan.plan.world import resolve_launcher

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "pyg_botan_sample" / "train"
TEMPERATURE = 0.44
TIMESTEP = 0.001
#: t = τα of the published T = 0.44 data (tc07), in steps of 0.001 τ
FINAL_STEP = 4_120_000
#: frames kept for our own F_s(t) beside the restart chunks (τ: 1.3, 13, 130, 412, 1300)
EXTRA_STEPS = (1_300, 13_000, 130_000, 412_000, 1_300_000)
K = 2.0 * np.pi


def sample_file(config_id: int) -> Path:
    return SAMPLE / f"isoconfig_N4096T{TEMPERATURE:.2f}_{config_id}_tc07.npz"


def frame_steps(chunk: int) -> list[int]:
    """Every step at which a frame is written (a restart too, at the multiples of ``chunk``), ending at FINAL_STEP."""
    return sorted({*EXTRA_STEPS, *range(chunk, FINAL_STEP, chunk), FINAL_STEP})


@dataclass(frozen=True)
class Run:
    config_id: int
    run: int
    out: Path

    @property
    def dir(self) -> Path:
        return self.out / f"config{self.config_id:02d}" / f"run{self.run:02d}"

    @property
    def seed(self) -> int:
        return 1000 * self.config_id + self.run + 1

    def dump(self, step: int) -> Path:
        return self.dir / f"frame.{step}.dump"

    @property
    def restart(self) -> Path:
        return self.dir / "state.restart"


def run_complete(run: Run, n_atoms: int) -> bool:
    """Whether the run's last frame is on disk and readable (isoconf.in renames a dump once written)."""
    try:
        read_dump_frame(run.dump(FINAL_STEP), n_atoms)
        return True
    except (OSError, ValueError):
        return False


POTENTIAL_RECORD = "potential.txt"


def recorded_potential(out: Path) -> str | None:
    """The KA form that the runs under ``out`` use; None for a new directory."""
    path = out / POTENTIAL_RECORD
    if path.is_file():
        return path.read_text().strip()
    # before --potential existed every run was shifted_force
    return "shifted_force" if any(out.glob("config*/run*")) else None


def claim_potential(out: Path, potential: str) -> None:
    """Record ``potential`` for ``out``, or stop (one line) if its runs were made with another form."""
    recorded = recorded_potential(out)
    if recorded is not None and recorded != potential:
        raise SystemExit(f"{out}: its runs use --potential {recorded}, not {potential}; use another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / POTENTIAL_RECORD, potential + "\n")


def do_run(run: Run, chunk: int, lmp: str, suffix: tuple[str, ...] = (), potential: str = "shifted_force") -> str:
    data = np.load(sample_file(run.config_id))
    n_atoms = data["types"].size
    run.dir.mkdir(parents=True, exist_ok=True)
    conf = run.out / f"config{run.config_id:02d}" / "initial.data"
    if not conf.is_file():
        box = np.full(3, ka.box_length(n_atoms, 1.2))
        write_data_file(conf, data["types"].astype(int), np.mod(data["initial_positions"], box), box)
    steps = frame_steps(chunk)
    if run_complete(run, n_atoms):
        return f"config {run.config_id} run {run.run}: complete"
    resume_from = usable_restart(run.restart)
    variables = {
        "data": str(conf), "T": repr(TEMPERATURE), "dt": repr(TIMESTEP), "seed": str(run.seed),
        "potential": str(REPO / "lammps_inputs" / ka.potential_file(potential)),
        "dump_prefix": str(run.dir / "frame"), "restart_every": str(chunk), "restart_file": str(run.restart),
        "thermo_every": "100000",
    }
    if resume_from is not None:  # the script skips the frames written before that restart
        variables.update(resume="1", resume_from=str(resume_from))
    cmd = [*resolve_launcher(lmp), *suffix, "-in", str(REPO / "lammps_inputs" / "isoconf.in"), "-nocite", "-screen", "none",
           "-log", str(run.dir / f"log.{'resumed' if resume_from else 'start'}.{int(time.time())}.lammps")]
    for name, value in variables.items():
        cmd += ["-var", name, value]
    cmd += ["-var", "frames", *map(str, steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"config {run.config_id} run {run.run}: LAMMPS failed, see {run.dir}: "
                         f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    remove_restarts(run.restart)
    return f"config {run.config_id} run {run.run}: finished{' (resumed)' if resume_from else ''}"


def cmd_run(args) -> None:
    runs = [Run(c, r, Path(args.out)) for r in range(args.runs) for c in args.configurations]
    for run in runs:
        if not sample_file(run.config_id).is_file():
            raise SystemExit(f"{sample_file(run.config_id)}: no such sample file")
    claim_potential(Path(args.out), args.potential)
    with ThreadPoolExecutor(args.jobs) as pool:
        suffix = ("-sf", args.suffix, "-pk", args.suffix, "1") if args.suffix == "omp" else ()
        for message in pool.map(lambda r: do_run(r, args.chunk, args.lmp, suffix, args.potential), runs):
            print(message, flush=True)


def observables(displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-run mean S, MSD and F_s(2π) of the selected particles; displacements (R, N_sel, 3) in σ."""
    d = np.linalg.norm(displacements, axis=-1)
    fs = np.array([self_intermediate_scattering(x[None, None], K)[0] for x in displacements])
    return d.mean(axis=1), (d ** 2).mean(axis=1), fs


def cmd_compare(args) -> None:
    out = Path(args.out)
    rows, fs_rows = [], []
    names = ("S_A", "MSD_A", "Fs_A")
    for conf_dir in sorted(out.glob("config*")):
        config_id = int(conf_dir.name.removeprefix("config"))
        data = np.load(sample_file(config_id))
        mask = data["types"] == 0
        x0 = data["initial_positions"]
        theirs = observables((data["positions"] - x0)[:, mask])
        ours_runs = []
        for run_dir in sorted(conf_dir.glob("run*")):
            steps = sorted(int(m.group(1)) for p in run_dir.glob("frame.*.dump")
                           if (m := re.match(r"frame\.(\d+)\.dump", p.name)))
            frames = {s: read_dump_frame(run_dir / f"frame.{s}.dump", mask.size)[2] for s in steps}
            # our frames are unwrapped from the data file's positions wrapped into [0, L)
            x0_ours = np.mod(x0, ka.box_length(mask.size, 1.2))
            for s, x in frames.items():
                fs_rows.append({"config": config_id, "run": run_dir.name, "t": s * TIMESTEP,
                                "Fs_A": float(self_intermediate_scattering((x - x0_ours)[None, None][:, :, mask])[0])})
            if FINAL_STEP in frames:
                ours_runs.append((run_dir.name, observables((frames[FINAL_STEP] - x0_ours)[None, mask])))
        t_mean = [v.mean() for v in theirs]
        t_sd = [v.std(ddof=1) for v in theirs]
        for name, (s, m, f) in ours_runs:
            row = {"config": config_id, "what": name}
            for q, ours, mu, sd in zip(names, (s, m, f), t_mean, t_sd):
                row[q] = float(ours[0])
                row[f"z_{q}"] = float((ours[0] - mu) / sd)
            rows.append(row)
        row = {"config": config_id, "what": f"authors ({len(theirs[0])} runs)"}
        row.update({q: float(mu) for q, mu in zip(names, t_mean)})
        row.update({f"sd_{q}": float(sd) for q, sd in zip(names, t_sd)})
        rows.append(row)
        if ours_runs:
            n = len(ours_runs)
            row = {"config": config_id, "what": f"ours ({n} runs)"}
            for k, (q, mu, sd) in enumerate(zip(names, t_mean, t_sd)):
                mean = float(np.mean([o[k][0] for _, o in ours_runs]))
                row[q] = mean
                # the difference of two means, in units of its own standard error
                row[f"z_{q}"] = float((mean - mu) / (sd * np.sqrt(1 / n + 1 / len(theirs[0]))))
            rows.append(row)
    if not rows:
        raise SystemExit(f"{out}: no config*/run* directories; run the 'run' command first")
    fields = ["config", "what", *names, *(f"z_{q}" for q in names), *(f"sd_{q}" for q in names)]
    with open(out / "compare.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(rows)
    with open(out / "fs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["config", "run", "t", "Fs_A"])
        w.writeheader()
        w.writerows(fs_rows)
    print(f"potential: {recorded_potential(out)}")
    print(f"{'config':>6} {'what':<18}" + "".join(f"{q:>9} {'z':>6}" for q in names))
    for row in rows:
        cells = "".join(f"{row[q]:9.4f} {row.get('z_' + q, float('nan')):6.2f}" for q in names)
        print(f"{row['config']:>6} {row['what']:<18}{cells}")
    # τα of our liquid from these configurations: F_s averaged over every run at each frame time
    times = sorted({r["t"] for r in fs_rows})
    mean_fs = [np.mean([r["Fs_A"] for r in fs_rows if r["t"] == t]) for t in times]
    if times:
        print(f"our F_s(k=2π) averaged over runs reaches 1/e at t = {relaxation_time(np.array(times), np.array(mean_fs)):.0f}"
              f" (published τα = 4120; NaN: not yet reached at t = {times[-1]:g})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run (or resume) our NVE runs from the authors' configurations")
    p.add_argument("--configurations", type=int, nargs="+", default=[1, 2], help="sample ids (1-10)")
    p.add_argument("--runs", type=int, default=2, help="runs per configuration")
    p.add_argument("--jobs", type=int, default=2, help="LAMMPS processes at once (one core each)")
    p.add_argument("--chunk", type=int, default=100_000, help="steps between restart files")
    p.add_argument("--lmp", default="lmp", help="LAMMPS executable")
    p.add_argument("--potential", choices=ka.POTENTIALS, default="shifted_force",
                   help="KA form, as simulation.potential (default: shifted_force, per-pair cutoffs)")
    p.add_argument("--suffix", choices=["omp", "none"], default="omp",
                   help="LAMMPS accelerator suffix: omp (lj/smooth/linear/omp, one thread; 14%% faster here) or none")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("compare", help="compare finished runs with the authors' 32 runs")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_compare)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
