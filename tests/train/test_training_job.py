"""Training as a submitit job: two processes through the local executor, and a Slurm job that is
preempted (SIGUSR2, as Slurm sends before a timeout or preemption), requeued and resumed."""
from __future__ import annotations

import shutil
import subprocess
import time

import torch

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from tests.conftest import run_cli
from tests.train.conftest import RESUME_ENV, TINY_TRAIN, torch_threads

TASK = "botan/finetune/T0.440/t00"


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _model(run, replica=0):
    return load_checkpoint(run / "train" / TASK / f"replica-{replica:02d}" / "final.pt")["model"]


def test_training_job_with_two_local_processes(synthetic_run):
    res = run_cli("train", str(synthetic_run), "--executor", "local", "--no-progress",
                  *_sets(TINY_TRAIN + ["train.n_replicas=2", "launch.train_tasks_per_node=2"]))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "submitted training job" in res.stderr and "2 process(es)" in res.stderr
    assert "2 finished replica(s)" in res.stdout
    assert not all(torch.equal(a, b) for a, b in zip(_model(synthetic_run, 0).values(),
                                                      _model(synthetic_run, 1).values()))


def _squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def _wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_slurm_training_job_is_requeued_and_resumes_bit_identical(need_slurm, synthetic_run, tmp_path):
    settings = TINY_TRAIN + ["train.epochs=12", "train.checkpoint_every_steps=1"]
    reference = tmp_path / "reference"
    shutil.copytree(synthetic_run, reference)
    with torch_threads():
        assert main(["-q", "train", str(reference), "--no-progress", *_sets(settings)]) == 0

    # the job inherits the submitting environment, so it trains on the same number of threads
    res = run_cli("train", str(synthetic_run), "--executor", "slurm", "--no-wait",
                  *_sets(settings + ["launch.slurm.time_min=10"]), env=RESUME_ENV)
    assert res.returncode == 0, res.stderr[-3000:]
    job_id = res.stdout.split("submitted job")[1].split()[0]
    replica = synthetic_run / "train" / TASK / "replica-00"
    try:
        _wait_for(lambda: (replica / "checkpoint.pt").is_file(), 300, "the first checkpoint")
        # what Slurm does before a preemption or a timeout: SIGUSR2 to the job's processes
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
        _wait_for(lambda: _squeue_state(job_id) in ("PENDING", ""), 60, "the requeue")
        assert not (replica / "final.pt").exists(), "the job finished before it was preempted"
        # Slurm holds a requeued job back for a while; let it start again now. Not in the same second as
        # the requeue: slurmd refuses a credential issued in the second its predecessor was revoked in
        # ("Job credential revoked"), and the job would be killed instead of started
        time.sleep(2.5)
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], timeout=30)
        # the resumed job's own result, not only the queue: right after a requeue squeue may list nothing
        _wait_for(lambda: (replica / "final.pt").is_file() and _squeue_state(job_id) == "", 600,
                  "the requeued job to finish")
    finally:
        subprocess.run(["scancel", job_id], timeout=30)
    logs = "".join(p.read_text() for p in (synthetic_run / "train" / "submitit").rglob("*_log.err"))
    assert "Requeued job" in logs and "resuming at epoch" in logs, logs[-3000:]
    a, b = _model(reference), _model(synthetic_run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_plain_sbatch_torchrun_script(need_slurm, synthetic_run, tmp_path):
    """slurm/train_torchrun.sbatch: one torchrun per node, here 2 CPU processes = 2 replica slots."""
    import os
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "slurm" / "train_torchrun.sbatch"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "GPUS_PER_NODE": "2"}
    res = subprocess.run(["sbatch", "--wait", "--gpus-per-node=0", "--cpus-per-task=2", "--time=10", str(script),
                          str(synthetic_run), *_sets(TINY_TRAIN + ["train.n_replicas=2"])],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = "\n".join(p.read_text() for p in tmp_path.glob("hpc-botan-train-*.out"))
    assert res.returncode == 0, res.stderr + output
    assert "2 replica slot(s) x 1 data-parallel rank(s) on cpu (gloo)" in output
    assert "2 finished replica(s)" in output
    for r in (0, 1):
        assert (synthetic_run / "train" / TASK / f"replica-{r:02d}" / "final.pt").is_file()
