"""The process groups of a training world (:class:`hpc_botan.plan.world.World`: R replica slots × D
data-parallel ranks): every slot has its own process group, so a replica's gradient all-reduce never
waits for another replica.  NCCL on GPUs, gloo on CPUs.
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from hpc_botan.plan.world import World, select_backend, select_device

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
