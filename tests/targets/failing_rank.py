"""Run ``hpc-botan targets RUN_DIR`` under MPI with the target computation failing on rank 1 (a bug, not a UserError).

Used by tests/targets/test_stage.py: ``mpirun -n 2 python tests/targets/failing_rank.py RUN_DIR``.
"""
import sys

from mpi4py import MPI

import hpc_botan.targets.stage as stage
from hpc_botan.cli import main

if MPI.COMM_WORLD.Get_rank() == 1:
    def broken(*args, **kwargs):
        raise RuntimeError("injected failure on rank 1")

    stage.compute_targets = broken

sys.exit(main(["targets", sys.argv[1]]))
