"""A small synthetic data set whose targets are a function of structure, imported as a run.

256 particles at density 1.2 (box 5.97 σ) per configuration.  In every run particle i moves along
z by a_i, which grows with its number of neighbours closer than 1.1 σ and with its type, plus a
small Gaussian kick.  So S_i ≈ |a_i| and E_ij ≈ |r_ij + (a_j − a_i) ẑ| − |r_ij| are nearly
noise-free functions of the structure within one or two message-passing steps: an overfit test
on them means something.  (Not invariant under rotations: train on it without augmentation.)
"""
from __future__ import annotations

import contextlib
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import run_cli

N_PARTICLES = 256

#: Settings that make a training run take seconds: a narrow network and a short schedule.
TINY_TRAIN = ["model.width=16", "model.n_steps=2", "train.epochs=4", "train.pretrain.enabled=false",
              "train.ntgnn.enabled=false", "train.time_indices=[0]", "train.validation_fraction=0.25"]


#: Bit-identical resume holds for the same device type and thread count (float reductions are
#: split over threads): every process whose results a resume test compares runs on this many,
#: in-process through :func:`torch_threads`, in subprocesses and jobs through ``RESUME_ENV``.
RESUME_THREADS = 2
RESUME_ENV = {"OMP_NUM_THREADS": str(RESUME_THREADS)}


@contextlib.contextmanager
def torch_threads(n: int = RESUME_THREADS):
    """Run the block with torch on ``n`` threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_synthetic_pyg_botan(directory, n_configurations=4, n_runs=4, seed=0, all_type_b=False, n_times=1,
                              temperature=0.44):
    """``n_configurations`` × ``n_times`` npz files in the reference implementation's layout under ``directory``.

    With ``n_times`` > 1 the time points are tc07, tc06, … (τα and before), and time point k moves
    every particle by (k + 1) times a function of its structure that grows with its crowding for
    even k and falls with it for odd k: a network must learn each output column on its own.
    """
    rng = np.random.default_rng(seed)
    box = (N_PARTICLES / 1.2) ** (1 / 3)
    directory.mkdir(parents=True, exist_ok=True)
    for conf in range(1, n_configurations + 1):
        x0 = rng.uniform(0, box, size=(N_PARTICLES, 3))
        types = np.ones(N_PARTICLES, np.int8) if all_type_b else (rng.uniform(size=N_PARTICLES) < 0.2).astype(np.int8)
        d = x0[None, :, :] - x0[:, None, :]          # d[i, j] = r_j - r_i, minimum image
        d -= box * np.round(d / box)
        r = np.sqrt((d ** 2).sum(-1))
        crowd = ((r < 1.1) & (r > 0)).sum(1)
        crowd = crowd / max(crowd.max(), 1)
        for k in range(n_times):
            drift = np.zeros((N_PARTICLES, 3))
            drift[:, 2] = (k + 1) * (0.05 + 0.3 * (crowd if k % 2 == 0 else 1.0 - crowd) + 0.1 * types)
            runs = x0[None] + drift[None] + rng.normal(scale=0.01, size=(n_runs, N_PARTICLES, 3))
            np.savez(directory / f"isoconfig_N{N_PARTICLES}T{temperature:.2f}_{conf}_tc{7 - k:02d}.npz", types=types,
                     initial_positions=x0, positions=runs)
    return directory


def import_synthetic(base, n_test=0, run_name="run", **kwargs):
    """Import synthetic pyg-botan files (``kwargs`` for :func:`write_synthetic_pyg_botan`) into base/run_name,
    the last ``n_test`` configurations in the test split."""
    src = write_synthetic_pyg_botan(base / "npz", **kwargs)
    run = base / run_name
    res = run_cli("-q", "import", "pyg-botan", str(src), "--out", str(run), *(["--n-test", str(n_test)] if n_test else []))
    assert res.returncode == 0, res.stderr
    return run


@pytest.fixture(scope="session")
def synthetic_targets(tmp_path_factory):
    """A run directory with targets of 4 synthetic configurations (all in the train split)."""
    return import_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def synthetic_run(synthetic_targets, tmp_path):
    """A private copy of ``synthetic_targets`` that a test may train in."""
    run = tmp_path / "run"
    shutil.copytree(synthetic_targets, run)
    return run
