"""``hpc-botan run --executor slurm`` against a real Slurm cluster: the chain of jobs completes.

Needs a reachable Slurm cluster (in CI: the single-node cluster of .ci/start_slurm.sh); skips
with the reason elsewhere, fails instead under .ci/run.
"""
import json
import subprocess

import pytest

from hpc_botan.config import load_config
from hpc_botan.launch.executors import Resources, slurm_parameters
from tests.conftest import run_cli
from tests.pipeline.test_run import TINY_PIPELINE, sets

pytestmark = [pytest.mark.slurm, pytest.mark.lammps, pytest.mark.slow]


def test_dependencies_are_sbatch_options():
    launch = load_config("quick", ["launch.slurm.additional_parameters={account: glass}"]).launch
    params = slurm_parameters(launch, Resources(), "x", after=["101", "102"])
    assert params["slurm_additional_parameters"] == {"account": "glass", "dependency": "afterok:101:102",
                                                     "kill-on-invalid-dep": "no"}
    assert "slurm_additional_parameters" in slurm_parameters(launch, Resources(), "x")
    assert "dependency" not in slurm_parameters(launch, Resources(), "x")["slurm_additional_parameters"]


def test_the_chain_of_jobs_completes_on_slurm(need_slurm, need_lammps, tmp_path):
    run = tmp_path / "run"
    # per_time: the training array then has one element per (T, t) (the local pipeline test covers multi_time)
    args = ["run", "quick", "--out", str(run), "--executor", "slurm", *sets(TINY_PIPELINE),
            "--set", "launch.slurm.time_min=20", "--set", "train.mode=per_time"]
    res = run_cli(*args, timeout=1500)
    assert res.returncode == 0, res.stderr[-4000:]
    # the plan's one line comes before the first submission
    plan_line = res.stderr.index("plan: ")
    assert plan_line < res.stderr.index("submitted Slurm job array") and "Slurm job(s) to submit" in res.stderr
    lines = res.stdout.strip().splitlines()
    stages = [ln.split(":")[1].strip() for ln in lines if ln.startswith("run: ") and "Slurm job" in ln]
    assert stages == ["simulate", "targets", "pretrain", "train", "finish"]
    assert lines[-1] == f"run: report {run / 'report' / 'report.html'}"
    jobs = json.loads((run / "pipeline" / "slurm-jobs.json").read_text())
    assert len(jobs["simulate"]) == 2 and len(jobs["train"]) == 3  # arrays: configurations, (T, t) grid
    # every stage really ran as a Slurm job, in order (each waited for the previous one)
    timings = {p.stem: json.loads(p.read_text()) for p in (run / "pipeline" / "timings").glob("*.json")}
    assert all(t["executor"] == "slurm" for k, t in timings.items() if not k.startswith("simulate"))
    start = {s: min(t["started"] for k, t in timings.items() if k.split(".")[0] == s)
             for s in ("simulate", "targets", "train", "evaluate", "report")}
    end = {s: max(t["finished"] for k, t in timings.items() if k.split(".")[0] == s) for s in start}
    assert end["simulate"] <= start["targets"] and end["targets"] <= start["train"] <= end["train"] <= start["evaluate"]
    assert len(list((run / "train").glob("*/**/replica-*/final.pt"))) == 2 * 7
    assert (run / "report" / "report.html").is_file()
    # each job asked for what its stage uses (submitit's sbatch scripts): the finishing job 1 CPU, no GPU anywhere
    scripts = {folder: [p.read_text() for p in (run / folder / "submitit").glob("*/*_submission.sh")]
               for folder in ("simulate", "targets", "train", "eval")}
    assert all(scripts.values()), {k: len(v) for k, v in scripts.items()}
    assert all("#SBATCH --cpus-per-task=1\n" in text for text in scripts["eval"])
    assert not any("gpu" in text for texts in scripts.values() for text in texts)

    # nothing is left to train or simulate: a second run only submits the finishing job
    again = run_cli(*args, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [ln.split(":")[1].strip() for ln in again.stdout.splitlines() if "Slurm job" in ln] == ["finish"]


def test_a_failing_job_cancels_the_rest_of_the_chain(need_slurm, need_lammps, tmp_path):
    run = tmp_path / "run"
    # the targets job fails (its MPI launcher does not exist) after the simulation array succeeded
    res = run_cli("run", "quick", "--out", str(run), "--executor", "slurm", *sets(TINY_PIPELINE),
                  "--set", "launch.slurm.time_min=20", "--set", "lammps.mpirun=no-such-mpirun",
                  timeout=900)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("hpc-botan: error: job ") and "no-such-mpirun" in last, last
    ids = [i for ids in json.loads((run / "pipeline" / "slurm-jobs.json").read_text()).values() for i in ids]
    live = subprocess.run(["squeue", "-h", "-j", ",".join(ids)], capture_output=True, text=True).stdout.strip()
    assert live == ""  # the jobs after the failed one were cancelled, not left pending
    assert not (run / "report").exists()
