"""Tests of hpc_botan.io: one module per file format."""
