import os
import signal
import subprocess
import sys

import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.launch.executors import Resources, map_tasks, slurm_parameters
from hpc_botan.pipeline.run import stage_resources


def square_or_fail(x):
    if x < 0:
        raise UserError(f"negative input {x}")
    return x * x


def test_slurm_parameters_from_the_config():
    cfg = load_config("quick", [
        "launch.slurm.partition=gpu", "launch.slurm.gpus_per_node=1", "launch.slurm.time_min=90",
        "launch.slurm.array_parallelism=8", "launch.slurm.mem_gb=16",
        "launch.slurm.setup=['module load lammps/2025-gpu']",
        "launch.slurm.additional_parameters={account: glass}", "launch.slurm.signal_delay_s=300",
    ])
    params = slurm_parameters(cfg.launch, Resources(cpus=4, gpus=0), "simulate")
    assert params == {
        "name": "simulate", "timeout_min": 90, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 4,
        "slurm_array_parallelism": 8, "slurm_signal_delay_s": 300, "slurm_partition": "gpu", "mem_gb": 16.0,
        "slurm_setup": ["module load lammps/2025-gpu"], "slurm_additional_parameters": {"account": "glass"},
    }


def test_a_job_requests_what_its_stage_uses():
    launch = load_config("quick", ["launch.slurm.cpus_per_task=8", "launch.slurm.gpus_per_node=4"]).launch
    assert slurm_parameters(launch, Resources(cpus=2), "x")["cpus_per_task"] == 2
    assert "gpus_per_node" not in slurm_parameters(launch, Resources(), "x")
    assert slurm_parameters(launch, Resources(gpus=2), "x")["gpus_per_node"] == 2


@pytest.mark.parametrize("accelerator, simulate_gpus", [("auto", 2), ("none", 0), ("openmp", 0), ("gpu", 2), ("kokkos", 2)])
def test_every_stage_of_a_gpu_chain(accelerator, simulate_gpus):
    """On GPU nodes only the simulation (with GPU styles) and the training request GPUs."""
    cfg = load_config("quick", ["launch.slurm.cpus_per_task=8", "launch.slurm.gpus_per_node=4", "lammps.gpus=2",
                                f"lammps.accelerator={accelerator}", "lammps.mpi_ranks=2", "launch.targets_ranks=16"])
    params = {stage: slurm_parameters(cfg.launch, r, stage) for stage, r in stage_resources(cfg).items()}
    assert {s: p["cpus_per_task"] for s, p in params.items()} == {"simulate": 2, "targets": 16, "train": 8,
                                                                    "finish": 1}
    assert {s: p.get("gpus_per_node", 0) for s, p in params.items()} == {"simulate": simulate_gpus, "targets": 0,
                                                                          "train": 4, "finish": 0}


def test_a_cpu_chain_requests_no_gpu():
    cfg = load_config("quick", ["launch.slurm.cpus_per_task=2"])
    params = [slurm_parameters(cfg.launch, r, s) for s, r in stage_resources(cfg).items()]
    assert all("gpus_per_node" not in p for p in params)


@pytest.mark.parametrize("kind", ["debug", "local"])
def test_map_tasks_returns_results_in_order(kind, tmp_path):
    launch = load_config("quick", ["launch.local_parallelism=2"]).launch
    out = map_tasks(square_or_fail, [(k,) for k in range(5)], kind=kind, folder=tmp_path, launch=launch,
                    resources=Resources(), name="t")
    assert out == [0, 1, 4, 9, 16]


def test_a_failing_local_task_is_one_line_with_the_log_path(tmp_path):
    launch = load_config("quick").launch
    with pytest.raises(UserError) as err:
        map_tasks(square_or_fail, [(2,), (-3,)], kind="local", folder=tmp_path, launch=launch,
                  resources=Resources(), name="t")
    msg = str(err.value)
    assert "negative input -3" in msg and "submitit logs:" in msg and "\n" not in msg


def test_a_user_error_under_the_debug_executor_opens_no_debugger(tmp_path):
    """submitit's debug executor opens pdb on any exception; a user mistake must come back as one line."""
    import subprocess
    import sys

    script = ("from hpc_botan.config import load_config\n"
              "from hpc_botan.launch.executors import Resources, map_tasks\n"
              "from tests.launch.test_executors import square_or_fail\n"
              f"map_tasks(square_or_fail, [(2,), (-3,)], kind='debug', folder={str(tmp_path)!r}, "
              "launch=load_config('quick').launch, resources=Resources(), name='t')\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert "(Pdb)" not in res.stdout, res.stdout[-2000:]
    assert res.returncode != 0 and "UserError: negative input -3" in res.stderr



def test_split_array_stays_below_max_array_size_and_shares_the_parallelism():
    from hpc_botan.launch.executors import split_array

    chunks = split_array(1500, 1001, 64)       # the paper's simulate stage on a default Slurm
    assert [(c.start, c.stop) for c in chunks] == [(0, 1001), (1001, 1500)]
    assert sum(c.parallelism for c in chunks) == 64 and chunks[0].parallelism > chunks[1].parallelism
    chunks = split_array(50, 16, 10)
    assert [c.size for c in chunks] == [16, 16, 16, 2]
    assert all(c.size <= 16 for c in chunks) and sum(c.parallelism for c in chunks) == 10
    assert chunks[-1].parallelism >= 1
    # every task is in exactly one chunk, in order
    assert [k for c in chunks for k in range(c.start, c.stop)] == list(range(50))
    assert sum(c.parallelism for c in split_array(5, 2, 100)) == 5      # never more than the tasks
    assert [c.parallelism for c in split_array(40, 10, 2)] == [1, 1, 1, 1]   # one each at least
    assert split_array(0, 16, 4) == []
    for n in range(1, 60):
        for size in (1, 3, 16):
            for par in (1, 4, 64):
                chunks = split_array(n, size, par)
                assert all(1 <= c.parallelism <= c.size <= size for c in chunks)
                assert sum(c.parallelism for c in chunks) == max(min(par, n), len(chunks))


def test_slurm_limits_are_read_from_scontrol_and_sacctmgr_output():
    from hpc_botan.launch.executors import parse_max_submit, parse_scontrol_config

    text = "Configuration data as of 2026-12-04T04:00:00\nMaxArraySize            = 16\nMaxJobCount = 10000\n" \
           "SLURM_VERSION           = 24.11.5\n"
    assert parse_scontrol_config(text)["MaxArraySize"] == "16"
    assert parse_max_submit("\n") is None
    assert parse_max_submit("5000\n\n200\n") == 200
    assert parse_max_submit("|\n") is None


def test_too_many_jobs_are_refused_before_any_submission(monkeypatch):
    from hpc_botan.launch import executors

    launch = load_config("quick", ["launch.slurm.max_submit_jobs=1000"]).launch
    monkeypatch.setattr(executors, "queued_job_count", lambda: 120)
    executors.check_submit_limit(launch, 880)
    with pytest.raises(executors.UserError, match=r"881 Slurm jobs.*120 of yours.*MaxSubmitJobs = 1000"):
        executors.check_submit_limit(launch, 881)


def test_array_parts_requeue_themselves():
    import pickle

    import submitit

    from hpc_botan.launch.executors import Resumable

    part = Resumable(square_or_fail)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        assert isinstance(part, submitit.helpers.Checkpointable) and part(3) == 9
        again = pickle.loads(pickle.dumps(part.checkpoint(4)))   # what submitit pickles for the requeued job
    finally:  # a finished part ignores the warning, a checkpointed one SIGTERM: not this process
        for sig, handler in before.items():
            signal.signal(sig, handler)
    assert again.function.fn is square_or_fail and again.args == (4,)


#: what submitit's local executor sets for a one-process job (its JobEnvironment reads them)
LOCAL_JOB_ENV = {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "1", "SUBMITIT_LOCAL_NTASKS": "1",
                 "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_LOCAL_NODEID": "0",
                 "SUBMITIT_LOCAL_GLOBALID": "0", "SUBMITIT_LOCAL_LOCALID": "0"}


@pytest.mark.parametrize("job", ["part", "training"])
def test_a_finished_job_outlives_a_late_time_limit_warning(job):
    # Slurm's warning may come while submitit writes the result or while Python exits, which puts
    # back the default action (termination, status 140 = 128 + SIGUSR2): Slurm would count the
    # finished task as failed and the jobs after it would never start (seen on the CI cluster)
    finish = {"part": "from hpc_botan.launch.executors import Resumable\nResumable(int)('3')\n",
              "training": ("from hpc_botan.launch import training_job as tj\n"
                           "tj.run_training = lambda *a, **k: []\n"
                           "tj.load_run_config = lambda run_dir: None\n"
                           "tj.TrainingJob('run')()\n")}[job]
    code = finish + "import os, signal, time\nos.kill(os.getpid(), signal.SIGUSR2)\ntime.sleep(0.2)\nprint('alive')\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **LOCAL_JOB_ENV})
    assert res.returncode == 0 and res.stdout.strip() == "alive", (res.returncode, res.stderr[-2000:])


@pytest.mark.parametrize("job", ["part", "training"])
def test_a_requeue_survives_the_termination_slurm_sends_with_it(job):
    # submitit checkpoints, then runs `scontrol requeue`, and Slurm answers with SIGTERM to every
    # process of the job: a scontrol killed before it exits made a requeued task look failed (seen
    # on the CI cluster).  After the checkpoint, a child that SIGTERMs itself, as Slurm would, lives on
    checkpoint = {"part": "from hpc_botan.launch.executors import Resumable\nResumable(int).checkpoint('3')\n",
                  "training": "from hpc_botan.launch.training_job import TrainingJob\nTrainingJob('run').checkpoint()\n"}
    code = checkpoint[job] + ("import subprocess\n"
                              "print(subprocess.run(['sh', '-c', 'kill -TERM $$; echo survived'],"
                              " capture_output=True, text=True).stdout.strip())\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "survived", (res.returncode, res.stderr[-2000:])
