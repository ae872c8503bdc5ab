"""Simulate-stage benchmarks (run by hand; results go to docs/benchmarks.md).

1. Runner overhead: one isoconfigurational run through hpc_botan's runner (LAMMPS Python
   module, frames gathered into .npy) against a plain ``lmp -in isoconf.in`` of the same
   input with the same variables.  Ratio of wall times, median over repeats, alternating
   the order so that drift hits both sides alike.
2. Ensemble throughput: R runs one after another on one rank against one LAMMPS
   multi-partition job (``mpirun -n 2``, ``-partition 2x1``), in timesteps/s and
   atom-steps/s.

    python benchmarks/bench_simulate.py --n-particles 4096 --steps 5000 --runs 4 --repeats 3

Needs the machine to itself: anything else running skews the ratio.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hpc_botan.physics import ka  # noqa: E402
from hpc_botan.plan.world import resolve_launcher  # noqa: E402
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, run_batch  # noqa: E402

INPUTS = REPO / "lammps_inputs"


def prepare(work: Path, n: int) -> Path:
    data = work / "bench.data"
    n_a, _ = ka.species_counts(n)
    job = LammpsJob(str(INPUTS / "prepare.in"),
                    {"potential": [str(INPUTS / "ka_potential.lmp")], "N": [str(n)], "n_a": [str(n_a)],
                     "n_melt": ["2000"], "n_quench": ["2000"], "n_equil": ["2000"], "seed": ["11"],
                     "out": [str(data)]},
                    str(work / "prepare.log"))
    run_batch(Batch([job]))
    return data


def frames(steps: int, n_frames: int = 10) -> list[str]:
    out = sorted({max(1, round(steps ** (k / (n_frames - 1)))) for k in range(n_frames)})
    return [str(x) for x in out]


def iso_job(work: Path, data: Path, tag: str, seed: int, steps: int, n: int) -> LammpsJob:
    variables = {"potential": [str(INPUTS / "ka_potential.lmp")], "data": [str(data)], "seed": [str(seed)],
                 "T": ["0.64"], "frames": frames(steps), "dump_prefix": [str(work / tag)]}
    return LammpsJob(str(INPUTS / "isoconf.in"), variables, str(work / f"{tag}.log"),
                     frames_npy=str(work / f"{tag}.npy"), n_atoms=n)


def plain_lmp(job: LammpsJob) -> float:
    args = [resolve_launcher("lmp")[0], "-in", job.script, "-screen", "none", "-log", job.log, "-nocite"]
    for name, values in job.variables.items():
        args += ["-var", name, *values]
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - t0


def through_runner(job: LammpsJob) -> float:
    t0 = time.perf_counter()
    run_batch(Batch([job]))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-particles", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    n = args.n_particles
    work = Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    data = prepare(work, n)

    plain, runner = [], []
    for k in range(args.repeats):
        order = [("plain", plain_lmp), ("runner", through_runner)]
        for name, fn in order if k % 2 == 0 else order[::-1]:
            (plain if name == "plain" else runner).append(fn(iso_job(work, data, f"{name}{k}", 5 + k, args.steps, n)))
    overhead = statistics.median(r / p for r, p in zip(runner, plain)) - 1.0

    seq_jobs = [iso_job(work, data, f"seq{r}", 100 + r, args.steps, n) for r in range(args.runs)]
    t0 = time.perf_counter()
    run_batch(Batch(seq_jobs))
    t_seq = time.perf_counter() - t0
    par_jobs = [iso_job(work, data, f"par{r}", 100 + r, args.steps, n) for r in range(args.runs)]
    t0 = time.perf_counter()
    run_batch(Batch(par_jobs, partitions=2), mpi_ranks=2, spec_path=work / "par.json")
    t_par = time.perf_counter() - t0
    total_steps = args.runs * args.steps

    result = {
        "n_particles": n, "steps_per_run": args.steps, "runs": args.runs, "repeats": args.repeats,
        "plain_lmp_s": plain, "runner_s": runner, "runner_overhead": overhead,
        "sequential_s": t_seq, "partitions_s": t_par,
        "sequential_steps_per_s": total_steps / t_seq, "partitions_steps_per_s": total_steps / t_par,
        "sequential_atom_steps_per_s": total_steps * n / t_seq, "partitions_atom_steps_per_s": total_steps * n / t_par,
        "speedup": t_seq / t_par,
    }
    print(json.dumps(result, indent=2))
    print(f"runner overhead vs plain lmp: {100 * overhead:+.1f} % (median of {args.repeats})")
    print(f"ensemble of {args.runs} x {args.steps} steps, N = {n}: sequential {total_steps / t_seq:.0f} steps/s "
          f"({total_steps * n / t_seq / 1e6:.2f} M atom-steps/s); 2 partitions {total_steps / t_par:.0f} steps/s "
          f"({total_steps * n / t_par / 1e6:.2f} M atom-steps/s); speed-up {t_seq / t_par:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
