"""The world of training processes, split into R replicas × D data-parallel ranks.

Launchers set the environment differently; :func:`detect_world` reads, in order, torchrun
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), Slurm tasks started
by ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first host of
``SLURM_JOB_NODELIST``), or nothing (one process).  Rank r belongs to replica slot r // D and
is data rank r % D inside it; every slot has its own process group, so a replica's gradient
all-reduce never waits for another replica.  Backend and device follow the hardware: NCCL and
``cuda:LOCAL_RANK`` where CUDA is available, gloo and the CPU otherwise.
"""
from __future__ import annotations

import datetime
import os
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from hpc_botan.errors import UserError


@dataclass(frozen=True)
class World:
    """Where this process sits; ``data_parallel`` is D (ranks per replica)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    data_parallel: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    launcher: str = "single"

    def __post_init__(self):
        if self.world_size % self.data_parallel:
            raise UserError(f"train.data_parallel: {self.data_parallel} must divide the number of processes "
                            f"({self.world_size})")

    @property
    def n_slots(self) -> int:
        """Replicas trained at the same time (R of R × D)."""
        return self.world_size // self.data_parallel

    @property
    def slot(self) -> int:
        return self.rank // self.data_parallel

    @property
    def data_rank(self) -> int:
        return self.rank % self.data_parallel

    @property
    def is_replica_leader(self) -> bool:
        """The rank that writes the replica's logs and checkpoints."""
        return self.data_rank == 0


def _first_slurm_host(nodelist: str) -> str:
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
        return out[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return nodelist.split(",")[0].split("[")[0]


def detect_world(data_parallel: int = 1, env: dict[str, str] | None = None) -> World:
    """The :class:`World` of this process from its launcher's environment variables."""
    env = dict(os.environ if env is None else env)
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun, submitit's TorchDistributedEnvironment
        return World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)), data_parallel,
                     env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", 29500)), "torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:  # srun python -m hpc_botan.train
        job = env.get("SLURM_JOB_ID", "0")
        port = 20000 + zlib.crc32(job.encode()) % 20000  # the same on every task of the job
        return World(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)),
                     data_parallel, _first_slurm_host(env.get("SLURM_JOB_NODELIST", "127.0.0.1")), port, "srun")
    return World(data_parallel=data_parallel)


def select_device(world: World) -> torch.device:
    """``cuda:LOCAL_RANK`` (modulo the visible GPUs) where CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", world.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def select_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


#: Counter in the rendezvous store of the ranks that have finished their share of a training run.
LEFT_KEY = "hpc_botan/ranks_left"


@dataclass
class ProcessGroups:
    """The initialised world: the replica-slot group of this rank (None for a single process)."""

    world: World
    device: torch.device
    backend: str
    slot_group: Any = None
    _owns_world: bool = field(default=False, repr=False)

    def all_true(self, flag: bool, group: Any = "slot") -> bool:
        """Collective AND of ``flag`` over the slot group (or the whole world with ``group=None``)."""
        if self.world.world_size == 1 or (group == "slot" and self.world.data_parallel == 1):
            return flag
        t = torch.tensor([0 if flag else 1], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.slot_group if group == "slot" else None)
        return int(t.item()) == 0

    def barrier(self) -> None:
        if self.world.world_size > 1:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def leave(self, poll_s: float = 1.0) -> None:
        """End this rank's part without a timed collective: rank 0 stays until every rank has left.

        Rank 0 hosts the rendezvous store that other ranks may still need (NCCL communicators are
        created lazily, at a group's first collective), so it waits, by polling a counter in that
        store, for as long as the others train; every other rank returns at once.  A rank that
        crashes instead makes the launcher (torchrun, srun) end the world.
        """
        if self.world.world_size == 1 or not dist.is_initialized():
            return
        store = dist.distributed_c10d._get_default_store()  # the world's own rendezvous store
        store.add(LEFT_KEY, 1)
        if self.world.rank == 0:
            while store.add(LEFT_KEY, 0) < self.world.world_size:
                time.sleep(poll_s)

    def close(self) -> None:
        if self._owns_world and dist.is_initialized():
            dist.destroy_process_group()


def init_process_groups(world: World, timeout_min: float = 30.0) -> ProcessGroups:
    """Initialise torch.distributed for ``world`` and one group per replica slot."""
    device = select_device(world)
    backend = select_backend(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world.world_size == 1:
        return ProcessGroups(world, device, backend)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method=f"tcp://{world.master_addr}:{world.master_port}",
                                rank=world.rank, world_size=world.world_size,
                                timeout=datetime.timedelta(minutes=timeout_min))
        owns = True
    else:
        owns = False
    slot_group = None
    for s in range(world.n_slots):  # every rank creates every group, in the same order
        ranks = list(range(s * world.data_parallel, (s + 1) * world.data_parallel))
        group = dist.new_group(ranks=ranks, backend=backend)
        if s == world.slot:
            slot_group = group
    return ProcessGroups(world, device, backend, slot_group, owns)
