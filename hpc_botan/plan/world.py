"""Which processes and devices a stage's work runs on: the launcher's world (torchrun, srun or one
process), the device and collective backend of a process, and the MPI launcher command.

Launchers set the environment differently; :func:`detect_world` reads, in order, torchrun
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), Slurm tasks started
by ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first host of
``SLURM_JOB_NODELIST``), or nothing (one process).  Rank r belongs to replica slot r // D and
is data rank r % D inside it.  Backend and device follow the hardware: NCCL and ``cuda:LOCAL_RANK``
where CUDA is available, gloo and the CPU otherwise.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpc_botan.errors import UserError

if TYPE_CHECKING:
    import torch


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


#: Variables in which launchers give a process its rank on its node: torchrun, MPICH's Hydra, Open MPI, srun.
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


def launcher_local_rank(env: dict[str, str] | None = None) -> int:
    """This process's rank on its node as its launcher gives it (0 without one): what chooses its GPU where
    several processes of one node predict (``mpirun -n K hpc-botan predict``: one spatial domain per GPU)."""
    env = os.environ if env is None else env
    for name in LOCAL_RANK_VARIABLES:
        if env.get(name, "").isdigit():
            return int(env[name])
    return 0


def select_device(world: World) -> "torch.device":
    """``cuda:LOCAL_RANK`` (modulo the visible GPUs) where CUDA is available, else the CPU."""
    import torch  # here, not at the top: the simulation stages read this module and never load torch

    if torch.cuda.is_available():
        return torch.device("cuda", world.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def select_backend(device: "torch.device") -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def resolve_launcher(command: str) -> list[str]:
    """Split a launcher command; find its program on PATH or next to this Python (an unactivated venv)."""
    words = shlex.split(command)
    if words and shutil.which(words[0]) is None:
        beside = Path(sys.executable).parent / words[0]
        if beside.is_file():
            words[0] = str(beside)
    return words


def available_memory_bytes() -> float | None:
    """Memory this process can still take (bytes): MemAvailable of /proc/meminfo, lowered to what the
    cgroup's limit leaves (a Slurm job's --mem); None where neither can be read (not Linux)."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(float(line.split()[1]) * 1024)
    except OSError:
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),      # cgroup v2
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",                        # cgroup v1
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            cap = Path(limit).read_text().strip()
            if cap != "max" and int(cap) < 1 << 60:
                found.append(float(int(cap) - int(Path(usage).read_text().strip())))
        except (OSError, ValueError):
            continue
    return min(found) if found else None


#: The share of the available memory prediction budgets for when no budget is given: the rest
#: is for whatever else runs on the node.
PREDICTION_MEMORY_FRACTION = 0.8
#: The budget where the available memory cannot be read (bytes).
FALLBACK_PREDICTION_BYTES = 4e9


def prediction_memory_bytes(memory_gb: float | None, processes_on_node: int = 1) -> float:
    """Bytes one prediction process may use: ``memory_gb`` if given, else its share of
    :data:`PREDICTION_MEMORY_FRACTION` of the available memory among ``processes_on_node``."""
    if memory_gb is not None:
        return float(memory_gb) * 1e9
    available = available_memory_bytes()
    if available is None:
        return FALLBACK_PREDICTION_BYTES
    return PREDICTION_MEMORY_FRACTION * available / max(1, processes_on_node)
