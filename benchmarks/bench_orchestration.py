"""What running the paper preset through hpc_botan costs beyond the molecular dynamics itself.

Measured here, then multiplied out for the paper's 1500 configurations and 48 000 runs in
docs/benchmarks.md ("Orchestration overhead"):

1. ``restart``   one checkpoint of a LAMMPS run (write the restart, clear, read it back) at N = 4096:
                 a run with ``restart_every`` against the same run without, per checkpoint.
2. ``run``       the fixed cost of one isoconfigurational run (LAMMPS setup, 10 dumps, gathering
                 the frames into .npy): a run of 10 steps with 10 frames at N = 4096.
3. ``startup``   a simulate task's start: a fresh Python that imports what an array task unpickles
                 and picks the LAMMPS accelerator; beside it the same with the whole pipeline imported
                 (what tasks paid before the job bodies got their own module).
4. ``status``    finding the unfinished configurations (``hpc-botan status``, every ``run``): the
                 completeness check of C trajectory files.
5. ``submit``    submitting a split array through submitit to the local Slurm (``--slurm``):
                 seconds per sbatch and per task.

    python benchmarks/bench_orchestration.py --repeats 3            # 1-4
    python benchmarks/bench_orchestration.py --only submit --slurm  # 5, needs sbatch
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from hpc_botan.io import h5md  # noqa: E402
from hpc_botan.simulate.lammps_runner import Batch, LammpsJob, run_batch  # noqa: E402

INPUTS = REPO / "lammps_inputs"
POTENTIAL = str(INPUTS / "ka_potential.lmp")


def _prepare(work: Path, n: int) -> Path:
    from hpc_botan.physics import ka

    data = work / "bench.data"
    n_a, _ = ka.species_counts(n)
    run_batch(Batch([LammpsJob(str(INPUTS / "prepare.in"),
                               {"potential": [POTENTIAL], "N": [str(n)], "n_a": [str(n_a)], "n_melt": ["1000"],
                                "n_quench": ["500"], "n_equil": ["1000"], "seed": ["11"], "out": [str(data)]},
                               str(work / "prepare.log"))]))
    return data


def _isoconf(work: Path, data: Path, tag: str, frames: list[int], n: int, restart_every: int) -> float:
    variables = {"potential": [POTENTIAL], "data": [str(data)], "seed": ["5"], "T": ["0.64"],
                 "frames": [str(f) for f in frames], "dump_prefix": [str(work / tag)],
                 "restart_every": [str(restart_every)], "restart_file": [str(work / f"{tag}.restart")],
                 "resume": ["0"], "resume_from": [str(work / f"{tag}.restart")], "thermo_every": ["100000"]}
    job = LammpsJob(str(INPUTS / "isoconf.in"), variables, str(work / f"{tag}.log"),
                    frames_npy=str(work / f"{tag}.npy"), n_atoms=n)
    t0 = time.perf_counter()
    run_batch(Batch([job]))
    return time.perf_counter() - t0


def bench_restart(n: int, steps: int, every: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = _prepare(work, n)
        plain, restarted = [], []
        for k in range(repeats):  # alternate, so that drift hits both alike
            for label, re in (("a", 0), ("b", every)) if k % 2 == 0 else (("b", every), ("a", 0)):
                t = _isoconf(work, data, f"{label}{k}", [steps], n, re)
                (plain if re == 0 else restarted).append(t)
        n_checkpoints = steps // every - (1 if steps % every == 0 else 0)
        t0, t1 = statistics.median(plain), statistics.median(restarted)
        return {"n_particles": n, "steps": steps, "restart_every": every, "checkpoints": n_checkpoints,
                "plain_s": t0, "with_restarts_s": t1, "per_checkpoint_s": (t1 - t0) / n_checkpoints,
                "steps_per_s": steps / t0}


def bench_run(n: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = _prepare(work, n)
        times = [_isoconf(work, data, f"r{k}", list(range(1, 11)), n, 0) for k in range(repeats)]
        return {"n_particles": n, "frames": 10, "steps": 10, "seconds": statistics.median(times)}


STARTUP = """
import time
t0 = time.perf_counter()
import {module}
import hpc_botan.simulate.stage as stage
from hpc_botan.config import load_config
stage.select_accelerator(load_config("paper"))
print(time.perf_counter() - t0)
"""


def bench_startup(repeats: int) -> dict:
    out = {}
    for label, module in (("job_bodies", "hpc_botan.pipeline.job_bodies"), ("whole_pipeline", "hpc_botan.pipeline.run")):
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", STARTUP.format(module=module)], check=True, capture_output=True,
                           cwd=REPO)
            walls.append(time.perf_counter() - t0)
        out[label] = statistics.median(walls)
    return out


def bench_status(n_files: int) -> dict:
    from hpc_botan.config import load_config
    from hpc_botan.plan.configurations import configuration_tasks, pending_configurations, trajectory_path
    from hpc_botan.simulate.stage import prepare_run

    cfg = load_config("quick", ["simulation.n_particles=64", f"simulation.n_configurations={n_files}",
                                f"simulation.n_train={n_files - 1}", "simulation.n_runs=32"])
    s = cfg.simulation
    with tempfile.TemporaryDirectory() as tmp:
        run = prepare_run(cfg, Path(tmp) / "run")
        f = len(s.time_points[s.temperatures[0]])
        steps = np.arange(f + 1, dtype=np.int64)
        for task in configuration_tasks(cfg):
            h5md.write_configuration(trajectory_path(run, task), h5md.ConfigurationTrajectories(
                species=np.zeros(64, dtype=np.int8), ids=np.arange(1, 65), box=np.full(3, 4.0), steps=steps,
                times=steps * 1.0, positions=np.zeros((32, f + 1, 64, 3)), run_seeds=np.arange(32), attrs={}))
        t0 = time.perf_counter()
        pending = pending_configurations(run, cfg)
        seconds = time.perf_counter() - t0
    assert pending == []
    return {"files": n_files, "seconds": seconds, "per_file_ms": 1000 * seconds / n_files}


def _noop(k: int) -> int:
    return k


def bench_submit(n_tasks: int, max_array_size: int) -> dict:
    from hpc_botan.config import load_config
    from hpc_botan.launch.executors import Resumable, make_executor, submit_array
    from hpc_botan.stage import Resources

    launch = load_config("quick", [f"launch.slurm.max_array_size={max_array_size}", "launch.slurm.time_min=5"]).launch
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        executor = make_executor("slurm", tmp, launch, Resources(), "bench-submit")
        t0 = time.perf_counter()
        jobs = submit_array(executor, launch, Resumable(_noop), [(k,) for k in range(n_tasks)])
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = [j.result() for j in jobs]
        done = time.perf_counter() - t1
    assert results == list(range(n_tasks))
    n_arrays = -(-n_tasks // max_array_size)
    return {"tasks": n_tasks, "arrays": n_arrays, "submit_s": seconds, "per_sbatch_s": seconds / n_arrays,
            "per_task_ms": 1000 * seconds / n_tasks, "until_all_done_s": done}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("restart", "run", "startup", "status", "submit"), action="append")
    p.add_argument("--n-particles", type=int, default=4096)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--restart-every", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--status-files", type=int, default=1500)
    p.add_argument("--slurm", action="store_true", help="also submit a split array to Slurm (5)")
    p.add_argument("--submit-tasks", type=int, default=64)
    p.add_argument("--max-array-size", type=int, default=16)
    args = p.parse_args()
    todo = args.only or ["restart", "run", "startup", "status"] + (["submit"] if args.slurm else [])
    results = {}
    if "restart" in todo:
        results["restart"] = bench_restart(args.n_particles, args.steps, args.restart_every, args.repeats)
    if "run" in todo:
        results["run"] = bench_run(args.n_particles, args.repeats)
    if "startup" in todo:
        results["startup"] = bench_startup(args.repeats)
    if "status" in todo:
        results["status"] = bench_status(args.status_files)
    if "submit" in todo:
        results["submit"] = bench_submit(args.submit_tasks, args.max_array_size)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
