"""The MPI world of a command (targets, import, predict): the launcher's ranks, or one process without MPI.

MPI is initialised only when a launcher (mpirun, mpiexec, srun) started the process: a command run
by hand is a world of one, and then needs none of MPI's start-up (shared-memory segments, network
transports), which can fail for reasons that have nothing to do with the work (a file-size limit,
a node without a high-speed network) and would only end in MPI's own error stack.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

#: Variables that the process managers of MPICH (Hydra), Open MPI, PMIx and Slurm's srun --mpi set
#: in every rank they start.
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMI_FD", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                      "HYDRA_CONTROL_FD")


def launched_by_mpi(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is a rank started by an MPI launcher."""
    return any(name in environ for name in LAUNCHER_VARIABLES)


class SingleProcess:
    """The subset of ``mpi4py``'s communicator that the targets stage uses, for a world of one."""

    def Get_rank(self) -> int:  # noqa: N802 (mpi4py's names)
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def allgather(self, value: Any) -> list[Any]:
        return [value]

    def bcast(self, value: Any, root: int = 0) -> Any:
        return value


def world():
    """``MPI.COMM_WORLD`` under an MPI launcher, else a :class:`SingleProcess`."""
    if not launched_by_mpi():
        return SingleProcess()
    # mpi4py initialises MPI when imported: only in a rank that a launcher started
    from mpi4py import MPI

    return MPI.COMM_WORLD
