"""Where a process runs (hpc_botan.plan.world): launcher worlds, GPU choice by construction, memory budgets."""
import pytest
import torch

from hpc_botan.errors import UserError
from hpc_botan.plan import world as world_module
from hpc_botan.plan.world import (
    FALLBACK_PREDICTION_BYTES,
    PREDICTION_MEMORY_FRACTION,
    World,
    available_memory_bytes,
    detect_world,
    launcher_local_rank,
    prediction_memory_bytes,
    select_backend,
    select_device,
)


def test_the_launchers_worlds():
    torchrun = detect_world(2, {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "n1",
                                "MASTER_PORT": "1234"})
    assert (torchrun.rank, torchrun.world_size, torchrun.local_rank, torchrun.launcher) == (3, 4, 1, "torchrun")
    assert (torchrun.n_slots, torchrun.slot, torchrun.data_rank, torchrun.is_replica_leader) == (2, 1, 1, False)
    srun = detect_world(1, {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "7",
                            "SLURM_JOB_NODELIST": "node1"})
    assert (srun.rank, srun.world_size, srun.launcher) == (1, 2, "srun")
    assert srun.master_port == detect_world(1, {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_JOB_ID": "7",
                                                "SLURM_JOB_NODELIST": "node1"}).master_port   # the same on every task
    assert detect_world(1, {}) == World()
    with pytest.raises(UserError, match="train.data_parallel: 3 must divide"):
        detect_world(3, {"RANK": "0", "WORLD_SIZE": "4"})


@pytest.mark.parametrize("env, rank", [({}, 0), ({"MPI_LOCALRANKID": "3"}, 3), ({"OMPI_COMM_WORLD_LOCAL_RANK": "2"}, 2),
                                       ({"SLURM_LOCALID": "1"}, 1), ({"LOCAL_RANK": "5", "SLURM_LOCALID": "1"}, 5),
                                       ({"MPI_LOCALRANKID": "x"}, 0)])
def test_the_local_rank_of_each_launcher(env, rank):
    assert launcher_local_rank(env) == rank


def test_each_rank_of_a_gpu_node_takes_its_own_gpu(monkeypatch):
    """By construction (no GPU here): with 2 visible GPUs, local ranks 0..3 take cuda:0, 1, 0, 1 and NCCL."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    devices = [select_device(World(local_rank=k)) for k in range(4)]
    assert [str(d) for d in devices] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert select_backend(devices[0]) == "nccl"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert str(select_device(World(local_rank=3))) == "cpu" and select_backend(torch.device("cpu")) == "gloo"


def test_the_prediction_memory_budget(monkeypatch):
    assert prediction_memory_bytes(2.5) == 2.5e9 == prediction_memory_bytes(2.5, processes_on_node=4)
    here = available_memory_bytes()
    assert here is not None and here > 1e8   # Linux: /proc/meminfo
    monkeypatch.setattr(world_module, "available_memory_bytes", lambda: 8e9)
    assert prediction_memory_bytes(None) == PREDICTION_MEMORY_FRACTION * 8e9
    assert prediction_memory_bytes(None, processes_on_node=2) == PREDICTION_MEMORY_FRACTION * 4e9
    monkeypatch.setattr(world_module, "available_memory_bytes", lambda: None)
    assert prediction_memory_bytes(None) == FALLBACK_PREDICTION_BYTES
