"""Tests of hpc_botan.predict."""
