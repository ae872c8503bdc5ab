"""The training stage as a submitit job that Slurm may stop and requeue at will.

    from hpc_botan.launch.training_job import TrainingJob
    job = executor.submit(TrainingJob("runs/ka"))      # executor with tasks_per_node = K

Every task of the job becomes one rank of the R x D training world (submitit's job environment
is exported as torchrun's RANK / WORLD_SIZE / MASTER_ADDR variables).  On a timeout or a
preemption submitit calls :meth:`checkpoint`, which resubmits the same job: the requeued job
finds the run directory's checkpoints and continues where the replicas stopped (a run
directory resumes by itself, so there is no extra state to carry).
"""
from __future__ import annotations

import logging
from pathlib import Path

import submitit

from hpc_botan.config import Config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import RunLayout, load_run_config
from hpc_botan.launch.executors import RequeueableJob, ignore_stop_signal, make_executor, wait_for_jobs
from hpc_botan.train.stage import run_training, training_resources

log = logging.getLogger("hpc_botan.train")


class TrainingJob(RequeueableJob):
    """Picklable callable: train every (or the named) task of ``run_dir`` with this job's tasks."""

    def __init__(self, run_dir: str | Path, models: tuple[str, ...] = ("botan", "ntgnn"),
                 task_names: list[str] | None = None):
        self.run_dir = str(run_dir)
        self.models = tuple(models)
        self.task_names = list(task_names) if task_names else None

    def __call__(self) -> list[str]:
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        logging.basicConfig(level=logging.INFO if env.global_rank == 0 else logging.WARNING,
                            format="%(asctime)s %(name)s: %(message)s")
        cfg = load_run_config(self.run_dir)
        done = run_training(self.run_dir, cfg, models=self.models, task_names=self.task_names, show_progress=False)
        ignore_stop_signal()
        return [str(p) for p in done]


def submit_training(run_dir: str | Path, cfg: Config, kind: str, *, models: tuple[str, ...],
                    task_names: list[str] | None, wait: bool = True):
    """Submit one training job (``launch.train_nodes`` x ``launch.train_tasks_per_node`` processes).

    Returns the list of finished replica directories (``wait``) or the submitit job.
    """
    la = cfg.launch
    n_proc = la.train_nodes * la.train_tasks_per_node
    if n_proc % cfg.train.data_parallel:
        raise UserError(f"launch: {n_proc} training processes are not a multiple of train.data_parallel = "
                        f"{cfg.train.data_parallel}")
    resources = training_resources(la)
    executor = make_executor(kind, RunLayout(run_dir).jobs("train"), la, resources,
                             "hpc-botan-train", nodes=la.train_nodes, tasks_per_node=la.train_tasks_per_node)
    job = executor.submit(TrainingJob(run_dir, models, task_names))
    log.info("submitted training job %s (%d process(es))", job.job_id, n_proc)
    if not wait:
        return job
    return wait_for_jobs([job], "train")[0]
