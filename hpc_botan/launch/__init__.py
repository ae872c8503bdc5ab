"""Launching stage functions: locally, on Slurm, or in-process, all through submitit."""
