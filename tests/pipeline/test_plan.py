"""hpc-botan plan: the cost model by hand, against real files, and the table README quotes."""
import re

import h5py
import numpy as np
import pytest

from hpc_botan.calibrate.stage import provisional_config
from hpc_botan.config import load_config
from hpc_botan.io import h5md
from hpc_botan.pipeline import plan
from hpc_botan.simulate.speed_probe import loop_speeds
from tests.conftest import REPO, TINY, run_cli, simulated_run

#: the plan README quotes: the speed that 'hpc-botan plan paper' measured on the development machine
#: (one core, N = 4096), given explicitly so that the table does not depend on the machine that checks it
README_PLAN = ("plan", "paper", "--steps-per-second", "327", "--set", "launch.slurm.gpus_per_node=0", "--set",
               "launch.slurm.max_array_size=1001")


def test_md_steps_and_time_of_a_paper_task_by_hand():
    cfg = provisional_config(load_config("paper"))
    # melt 10^4 tau + quench 20 tau + 40 tau_alpha(4120) of NVT, at dt = 0.001
    assert plan.preparation_steps(cfg, 0.44) == 10_000_000 + 20_000 + 164_800_000
    # the last time point: 31.55 tau_alpha (the published 130000 / 4120) of the estimated 4120
    assert plan.run_steps(cfg, 0.44) == round(max(cfg.simulation.time_points[0.44]) / 0.001)
    assert 1.29e8 < plan.run_steps(cfg, 0.44) < 1.31e8
    # 32 runs one after the other at 1000 steps/s, or 4 partitions of 8 runs
    assert plan.task_seconds(1000, 2000, 32, 1, 1000.0) == 1 + 32 * 2
    assert plan.task_seconds(1000, 2000, 32, 4, 1000.0) == 1 + 8 * 2


def test_requeues_by_hand():
    # 60-minute jobs, warned 120 s early, losing up to 180 s: 3300 useful seconds per attempt
    assert plan.requeues_needed(3300, 60, 120, 180) == 0
    assert plan.requeues_needed(3301, 60, 120, 180) == 1
    assert plan.requeues_needed(10 * 3300, 60, 120, 180) == 9
    assert plan.requeues_needed(100, 1, 30, 40) is None      # an attempt cannot get anywhere


def test_disk_figures_match_real_files(need_lammps, tmp_path):
    run = simulated_run(tmp_path / "run", TINY, 2)
    traj = run / "simulate" / "T0.640" / "conf-00000.h5"
    with h5py.File(traj) as f:
        stored = sum(d.nbytes for d in _datasets(f) if d.name.endswith("position/value"))
    assert stored == 3 * 4 * 200 * 3 * 8                         # runs x (frames + 1) x N x 3 float64
    assert plan.trajectory_bytes(3, 3, 200) >= stored
    assert plan.trajectory_bytes(3, 3, 200) < 1.1 * stored
    assert h5md.read_configuration(traj).positions.shape == (3, 4, 200, 3)
    # a shard's arrays, counted from the format's table, equal the bytes h5py stores for them
    res = run_cli("targets", str(run))
    assert res.returncode == 0, res.stderr
    shard = next((run / "targets").glob("shard-*.h5"))
    with h5py.File(shard) as f:
        group = f[next(iter(k for k in f if k.startswith("conf_")))]
        n_edges = group["edge_index"].shape[1]
        stored = sum(group[name].nbytes for name in plan.ARRAYS)
    assert plan.shard_bytes(200, n_edges, 3) == stored


def _datasets(group):
    out = []
    group.visititems(lambda name, obj: out.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_edges_per_particle_of_the_shared_sample():
    # the shared configuration 1 (N = 4096, rho = 1.2) has 166,484 directed edges within 2.0
    assert abs(plan.edges_per_particle(1.2) * 4096 - 166_484) / 166_484 < 0.02


def test_loop_times_of_a_lammps_log():
    log = ("Loop time of 0.5 on 1 procs for 100 steps with 200 atoms\n\nPerformance: ...\n"
           "Loop time of 4.0 on 1 procs for 2000 steps with 200 atoms\n"
           "Loop time of 1e-05 on 1 procs for 0 steps with 200 atoms\n")
    assert loop_speeds(log) == [(100, 200.0), (2000, 500.0)]


def test_readme_quotes_the_plan_of_the_paper_preset():
    res = run_cli(*README_PLAN)
    assert res.returncode == 0, res.stderr
    table = [ln for ln in res.stdout.splitlines() if ln.startswith("|")]
    assert len(table) >= 12
    readme = (REPO / "README.md").read_text()
    assert "hpc-botan " + " ".join(README_PLAN) in readme
    for line in table:
        assert line in readme, f"README does not quote this line of '{' '.join(README_PLAN)}': {line}"
    # the T = 0.44 tasks outlive the preset's 24-hour limit many times over: the plan says so
    assert re.search(r"\| simulate \| 0.44 \| 500 \|.*\(> max_requeues 10\)", res.stdout)
    assert "1,539 Slurm jobs" in res.stdout and "simulate 2" in res.stdout   # 1500 tasks: 2 arrays below 1001


@pytest.mark.lammps
def test_plan_measures_this_machines_lammps(need_lammps):
    res = run_cli("plan", "quick", "--executor", "local", *[a for o in TINY for a in ("--set", o)])
    assert res.returncode == 0, res.stderr
    speed = re.search(r"Speed: ([\d,]+) steps/s for N = 200 with the (\w+) accelerator on (\S+)", res.stdout)
    assert speed and float(speed.group(1).replace(",", "")) > 100, res.stdout
    assert "| simulate | 0.64 | 2 |" in res.stdout


def test_bad_speed_is_one_line():
    res = run_cli("plan", "paper", "--steps-per-second", "-3")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("hpc-botan: error: --steps-per-second -3")


def test_summary_line_of_a_submission():
    rows = [plan.PlanRow("simulate", 0.64, 4, 10, 0.5, 2.0, "core", 1, 1e9), plan.PlanRow("finish", None, 1)]
    p = plan.Plan(rows=rows, chunks={"simulate": 1}, max_array_size=16, speed=1.0, speed_source="", max_requeues=3)
    line = plan.summary_line(p, jobs=5)
    assert line.startswith("plan: 5 Slurm job(s) to submit") and "core-hours" in line and "1 GB" in line
    assert np.isclose(p.disk_bytes, 1e9)
