"""Thermo blocks of a LAMMPS log, checked on a hand-written log."""
from __future__ import annotations

import numpy as np
import pytest

from hpc_botan.errors import UserError
from hpc_botan.io.lammps_log import parse_thermo, read_thermo

LOG = """LAMMPS (2 Aug 2023)
units lj
run 100
   Step          Time           Temp          PotEng         Press
         0   0              5.0           -3.5            10.0
WARNING: a warning between thermo lines (src/neighbor.cpp:123)
        50   0.05           4.5           -3.6            9.5
       100   0.1            4.0           -3.7            9.0
Loop time of 0.1 on 1 procs for 100 steps with 200 atoms
run 20
   Step          Time           Temp          PotEng
       100   0.1            4.0           -3.7
       120   0.12           3.9           -3.71
"""


def test_every_block_with_its_columns_a_killed_run_included():
    blocks = parse_thermo(LOG)
    assert len(blocks) == 2
    first, second = blocks
    assert list(first) == ["Step", "Time", "Temp", "PotEng", "Press"]
    np.testing.assert_array_equal(first["Step"], [0, 50, 100])
    np.testing.assert_array_equal(first["PotEng"], [-3.5, -3.6, -3.7])
    np.testing.assert_array_equal(second["Time"], [0.1, 0.12])   # no 'Loop time': the log ended mid-run
    assert "Press" not in second


def test_a_log_without_thermo_and_a_missing_log(tmp_path):
    assert parse_thermo("LAMMPS (2 Aug 2023)\nunits lj\n") == []
    with pytest.raises(UserError, match="cannot read the LAMMPS log"):
        read_thermo(tmp_path / "missing.log")
