"""A small synthetic data set whose targets are a function of structure, imported as a run.

256 particles at density 1.2 (box 5.97 σ) per configuration; each run displaces particle i by a
Gaussian whose scale grows with its number of neighbours closer than 1.1 σ, so that S_i and
E_ij are learnable from the structure (and an overfit test means something).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import run_cli

N_PARTICLES = 256


def write_synthetic_pyg_botan(directory, n_configurations=4, n_runs=4, seed=0):
    rng = np.random.default_rng(seed)
    box = (N_PARTICLES / 1.2) ** (1 / 3)
    directory.mkdir(parents=True, exist_ok=True)
    for conf in range(1, n_configurations + 1):
        x0 = rng.uniform(0, box, size=(N_PARTICLES, 3))
        types = (rng.uniform(size=N_PARTICLES) < 0.2).astype(np.int8)
        d = x0[:, None, :] - x0[None, :, :]
        d -= box * np.round(d / box)
        r = np.sqrt((d ** 2).sum(-1))
        crowd = ((r < 1.1) & (r > 0)).sum(1)
        scale = 0.05 + 0.1 * crowd / max(crowd.max(), 1) + 0.05 * types
        runs = x0[None] + rng.normal(size=(n_runs, N_PARTICLES, 3)) * scale[None, :, None]
        np.savez(directory / f"isoconfig_N{N_PARTICLES}T0.44_{conf}_tc07.npz", types=types,
                 initial_positions=x0, positions=runs)
    return directory


@pytest.fixture(scope="session")
def synthetic_targets(tmp_path_factory):
    """A run directory with targets of 4 synthetic configurations (all in the train split)."""
    base = tmp_path_factory.mktemp("synthetic")
    src = write_synthetic_pyg_botan(base / "npz")
    run = base / "run"
    res = run_cli("-q", "import", "pyg-botan", str(src), "--out", str(run))
    assert res.returncode == 0, res.stderr
    return run
