"""The whole job in one command: ``hpc-botan run`` (stages, local and Slurm chains)."""
