"""``python -m hpc_botan.train RUN_DIR …``: the training stage for torchrun and srun.

    torchrun --nproc_per_node 4 -m hpc_botan.train RUN_DIR
    srun --ntasks 8 python -m hpc_botan.train RUN_DIR

Same arguments as ``hpc-botan train``; see ``--help``.
"""
import sys

from hpc_botan.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
