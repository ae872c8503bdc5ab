"""A paper-shaped rehearsal on real Slurm: split arrays, time limits outlived by requeues, same targets.

The paper preset's structure (3 temperatures, 32 isoconfigurational runs, 10 time points) at 200
particles and short times, with 18 configurations: on the CI cluster (``.ci/start_slurm.sh``:
MaxArraySize = 16, a ``short`` partition whose jobs share the cores) the simulate stage becomes
two job arrays, and every task is still running when Slurm signals it before its one-minute time
limit: it stops its LAMMPS run, requeues itself and continues from its restarts.  The targets
then equal those of the same configurations simulated locally without limits, bit for bit.

Slurm holds a requeued job for two minutes before it may start again (its BeginTime).  On this
test cluster, where nothing else waits, the test lets such jobs start after 10 s (``scontrol update
StartTime=now``, as an administrator may) to keep CI short; it changes when they start, not what
they do.
"""
import json
import re
import subprocess
import threading
import time

import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.io import shards
from hpc_botan.io.rundir import load_run_config
from hpc_botan.physics.configuration_targets import compute_targets
from hpc_botan.pipeline.run import submit_slurm, wait_for_chain, wait_until_left_queue
from hpc_botan.pipeline.status_command import status_lines
from hpc_botan.registry import STAGES
from hpc_botan.simulate.stage import prepare_run, run_configuration
from hpc_botan.targets.stage import work_items
from tests.conftest import run_cli

pytestmark = [pytest.mark.slurm, pytest.mark.lammps, pytest.mark.slow]

TEMPERATURES = [0.64, 0.56, 0.50]
#: ten time points up to 3 τ (3000 steps) per temperature: 18 tasks sharing 2 cores take about 80 s
#: each, longer than Slurm lets an attempt run before its warning
TIMES = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 2.0, 3.0]
PAPER_SHAPED = [
    "simulation.n_particles=200",
    f"simulation.temperatures={TEMPERATURES}",
    "simulation.tau_alpha={0.64: 16.5, 0.56: 52.0, 0.50: 217.0}",
    "simulation.time_points={" + ", ".join(f"{t}: {TIMES}" for t in TEMPERATURES) + "}",
    "simulation.n_configurations=6",
    "simulation.n_train=4",
    "simulation.n_runs=32",
    "simulation.melt_time=0.5",
    "simulation.quench_time=0.2",
    "simulation.equilibration_tau_alpha=0.005",
    "simulation.restart_every_steps=250",
    "lammps.thermo_every=1000",
    "launch.targets_ranks=1",
]
#: the short partition: a one-minute limit; Slurm checks time limits every 30 s and warns once the end
#: is within the warning time plus one check (15 + 30 s): 15 to 45 s into an attempt (measured with 10 s:
#: 20 to 50 s, and the 18 tasks started together were warned after about half of their work)
SHORT = ["launch.slurm.partition=short", "launch.slurm.time_min=1", "launch.slurm.signal_delay_s=15",
         "launch.slurm.max_requeues=10", "launch.slurm.array_parallelism=18"]
SIM_AND_TARGETS = STAGES[1:3]  # after calibrate, which these explicit time points do not need


class _BackgroundLoop:
    """A context whose ``_loop`` runs in a daemon thread until the context exits; ``_loop`` returns
    when ``self.stop`` is set.  An exception it stored in ``self.error`` is raised on exit."""

    error: BaseException | None = None

    def __enter__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


class _ReleaseRequeuedJobs(_BackgroundLoop):
    """While active, let the jobs of ``array_ids`` that wait for their BeginTime after a requeue start
    after ``settle_s`` instead of 120 s.  Released at once, a job can start while its previous attempt
    is still being torn down, and that start fails (seen here): the hold exists for a reason."""

    def __init__(self, array_ids: list[str], settle_s: float = 10.0):
        self.array_ids = array_ids
        self.settle_s = settle_s
        self.released = 0
        self.waiting_since: dict[str, float] = {}

    def _loop(self):
        while not self.stop.wait(1.0):
            out = subprocess.run(["squeue", "-h", "-r", "-t", "PD", "-o", "%i %r", "-j", ",".join(self.array_ids)],
                                 capture_output=True, text=True).stdout
            held = {line.split()[0] for line in out.splitlines() if line.split()[1:] == ["BeginTime"]}
            self.waiting_since = {job: self.waiting_since.get(job, time.time()) for job in held}
            for job, since in list(self.waiting_since.items()):
                if time.time() - since >= self.settle_s:
                    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
                    self.released += 1
                    del self.waiting_since[job]


class _PollStatus(_BackgroundLoop):
    """While active, read ``hpc-botan status`` every ``every_s`` seconds; ``left`` collects the
    configurations left to simulate, and an error in status is raised on exit."""

    def __init__(self, run, cfg, every_s: float = 5.0):
        self.run, self.cfg, self.every_s = run, cfg, every_s
        self.left: list[int] = []

    def _loop(self):
        try:
            while not self.stop.wait(self.every_s):
                self.left.append(_left(status_lines(self.run, self.cfg, SIM_AND_TARGETS)[0]))
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            self.error = error


def _left(lines: list[str]) -> int:
    """Configurations left to simulate, from the simulate line of ``hpc-botan status``."""
    line = next(ln for ln in lines if ln.startswith("simulate"))
    if "finished" in line:
        return 0
    return int(re.search(r"(\d+) part\(s\) left", line).group(1))


def test_paper_shaped_run_through_split_arrays_and_requeues(need_slurm, need_lammps, tmp_path):
    assert [s.name for s in SIM_AND_TARGETS] == ["simulate", "targets"]
    cfg = load_config("quick", PAPER_SHAPED + SHORT)
    run = prepare_run(cfg, tmp_path / "slurm")
    chain = submit_slurm(run, cfg, stages=SIM_AND_TARGETS)
    assert [s.stage for s in chain] == ["simulate", "targets"]
    assert len(chain[0].ids) == 18 and len(chain[0].dependency_ids) == 2    # 16 + 2 tasks: MaxArraySize = 16

    # hpc-botan status while the jobs run: never an error, the count only goes down.  The pipeline's
    # own wait follows the jobs: a task that failed for good cancels the rest and raises at once
    with _ReleaseRequeuedJobs([i for s in chain for i in s.dependency_ids]) as release, \
            _PollStatus(run, cfg) as status:
        wait_for_chain(chain)
        wait_until_left_queue(chain)
    left = status.left + [_left(status_lines(run, cfg, SIM_AND_TARGETS)[0])]
    assert release.released >= 18
    assert left == sorted(left, reverse=True) and left[0] > 0, left
    res = run_cli("status", str(run))
    assert res.returncode == 3 and "simulate   finished" in res.stdout and "targets    finished" in res.stdout, \
        res.stdout + res.stderr

    # every simulate task outlived its time limit at least once and continued from restarts
    logs = {}
    for path in (run / "simulate" / "submitit").rglob("*_log.err"):
        task = re.match(r"(\d+_\d+)_", path.name).group(1)
        logs[task] = logs.get(task, "") + path.read_text()
    assert len(logs) == 18
    requeued = [t for t, text in logs.items() if "Requeued job" in text]
    assert sorted(requeued) == sorted(logs), {t: text[-500:] for t, text in logs.items() if t not in requeued}
    assert all("continuing from its restart" in text for text in logs.values())

    # the same configurations, locally and without limits: the same targets, bit for bit.  Four of the
    # 18 (every configuration's seeds are its own, so a subset is a fair witness): the first and last
    # task of the first array, both of the second (an offset error between arrays would show there)
    a_index = run / "targets" / "index.h5"
    catalog = shards.read_catalog(a_index)
    assert len(catalog) == 18 and sorted(catalog["id"]) == list(range(18))
    local = prepare_run(load_config("quick", PAPER_SHAPED), tmp_path / "local")
    items = work_items(load_run_config(local), local)
    for conf_id in (0, 15, 16, 17):
        run_configuration(local, conf_id)
        meta, load = items[conf_id]
        (row,) = catalog[catalog["id"] == conf_id]
        assert (row["t_index"], row["index"]) == (meta.t_index, meta.index), row
        expected = compute_targets(*load())
        stored = shards.read_configuration(a_index, conf_id)
        for name in shards.ARRAYS:
            np.testing.assert_array_equal(stored[name], getattr(expected, name), err_msg=f"configuration {conf_id}: {name}")
    jobs = json.loads((run / "pipeline" / "slurm-jobs.json").read_text())
    assert len(jobs["simulate"]) == 18
