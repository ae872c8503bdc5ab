"""Waiting for a Slurm chain, and the guards of ``hpc-botan run``, without a cluster (fake jobs)."""
import subprocess

import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.durable import exclusive_lock
from hpc_botan.pipeline import run as pipeline_run
from hpc_botan.pipeline.run import SubmittedStage, check_training_world, run_local, wait_for_chain


class FakeJob:
    """A submitit job that finishes after ``polls`` calls of done()."""

    def __init__(self, job_id, polls=0, result="ok"):
        self.job_id = job_id
        self.polls = polls
        self.value = result

    def done(self):
        self.polls -= 1
        return self.polls < 0

    def result(self):
        return self.value

    class paths:
        stderr = "log.err"


@pytest.fixture
def cancelled(monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline_run, "cancel", lambda chain: calls.append([i for s in chain for i in s.dependency_ids]))
    monkeypatch.setattr(pipeline_run.time, "sleep", lambda s: None)
    return calls


def test_dependency_ids_of_an_array_are_its_array_ids():
    stage = SubmittedStage("train", [FakeJob("123_0"), FakeJob("123_1")])
    assert stage.dependency_ids == ["123"] and stage.ids == ["123_0", "123_1"]
    split = SubmittedStage("simulate", [FakeJob("7_0"), FakeJob("7_1"), FakeJob("9_0"), FakeJob("12")])
    assert split.dependency_ids == ["7", "9", "12"]


def test_a_squeue_failure_concludes_nothing(monkeypatch, cancelled):
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: None)
    chain = [SubmittedStage("simulate", [FakeJob("7", polls=5)]), SubmittedStage("finish", [FakeJob("8", result="r")])]
    assert wait_for_chain(chain, grace_seconds=0.0) == "r"
    assert cancelled == []


def test_a_job_that_left_the_queue_without_result_cancels_the_chain(monkeypatch, cancelled):
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {ids[0]: "CANCELLED"})
    chain = [SubmittedStage("targets", [FakeJob("9", polls=10 ** 6)]), SubmittedStage("finish", [FakeJob("10")])]
    with pytest.raises(UserError, match=r"targets job 9 ended without a result \(Slurm state CANCELLED"):
        wait_for_chain(chain, grace_seconds=0.0)
    assert cancelled == [["9", "10"]]


def test_a_job_whose_dependency_failed_cancels_the_chain(monkeypatch, cancelled):
    # kill-on-invalid-dep=no: Slurm keeps it pending for ever, so the wait must not
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {ids[0]: pipeline_run.NEVER_STARTS})
    chain = [SubmittedStage("simulate", [FakeJob("20_0")]), SubmittedStage("targets", [FakeJob("21", polls=10 ** 6)])]
    with pytest.raises(UserError, match=r"targets job 21 can never start: a job it depends on failed"):
        wait_for_chain(chain, grace_seconds=0.0)
    assert cancelled == [["20", "21"]]


def test_squeue_reasons_mark_jobs_that_can_never_start(monkeypatch):
    out = "21 PENDING DependencyNeverSatisfied\n22 PENDING Dependency\n20_3 RUNNING None\n23 PENDING BeginTime\n"
    monkeypatch.setattr(pipeline_run.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, stdout=out, stderr=""))
    assert pipeline_run._squeue_states(["20", "21", "22", "23"], all_states=True) == {
        "21": pipeline_run.NEVER_STARTS, "22": "PENDING", "20_3": "RUNNING", "23": "PENDING"}


def test_a_rerun_cancels_jobs_of_an_earlier_run_that_can_never_start(monkeypatch, tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "slurm-jobs.json").write_text('{"simulate": ["20"], "targets": ["21"]}')
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {"21": pipeline_run.NEVER_STARTS})
    cancelled = []
    monkeypatch.setattr(pipeline_run, "cancel_jobs", cancelled.extend)
    pipeline_run.refuse_if_jobs_queued(tmp_path)
    assert cancelled == ["21"]


def test_a_running_job_is_waited_for(monkeypatch, cancelled):
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {ids[0]: "RUNNING"})
    assert wait_for_chain([SubmittedStage("train", [FakeJob("11_0", polls=3, result=[1])])], grace_seconds=0.0) == [1]
    assert cancelled == []


def test_a_finished_chain_is_waited_for_until_slurm_lists_it_no_more(monkeypatch, cancelled, tmp_path):
    # the result file lands while squeue still shows the job RUNNING, then COMPLETING, then not at all
    listed = iter([{"12": "RUNNING"}, {"12": "RUNNING"}, {"12": "COMPLETING"}, {}])
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: next(listed))
    pipeline_run.wait_until_left_queue([SubmittedStage("finish", [FakeJob("12")])])
    assert next(listed) == {}  # it stopped asking at the first answer with nothing queued or running


def test_a_rerun_is_refused_only_while_jobs_are_queued_or_running(monkeypatch, tmp_path):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "slurm-jobs.json").write_text('{"finish": ["12"]}')
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {"12": "COMPLETING"})
    pipeline_run.refuse_if_jobs_queued(tmp_path)
    monkeypatch.setattr(pipeline_run, "_squeue_states", lambda ids, all_states: {"12": "PENDING"})
    with pytest.raises(UserError, match=r"job\(s\) 12 of an earlier 'hpc-botan run' are still queued"):
        pipeline_run.refuse_if_jobs_queued(tmp_path)


def test_an_impossible_training_world_is_refused_before_anything_runs():
    cfg = load_config("quick", ["launch.train_tasks_per_node=3", "train.data_parallel=2"])
    with pytest.raises(UserError, match="3 training processes .* not a multiple of train.data_parallel = 2"):
        check_training_world(cfg)


def test_two_runs_on_one_directory_are_refused(tmp_path):
    run = tmp_path / "run"
    with exclusive_lock(run / "pipeline" / ".run.lock", "test"):
        with pytest.raises(UserError, match="another 'hpc-botan run'"):
            run_local(run, load_config("quick"))
