"""A small trained and evaluated run for the figure commands: built once per session (about a minute).

4 synthetic configurations (tests/train/conftest.py), the last in the test split, BOTAN (without
pretraining) and NT-GNN with 2 replicas each for a few epochs, ``hpc-botan evaluate``, and a
hand-written ``eval/baselines.json`` (the baselines stage is another module).  One time point only.
"""
from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import run_cli
from tests.train.conftest import TINY_TRAIN, import_synthetic

BASELINES = {"split": "test", "tasks": [
    {"task": "ridge/T0.440/t00", "model": "ridge", "temperature": 0.44, "time_index": 0, "time": 4120.0,
     "scores": {"S": {"median": 0.3, "best": 0.3, "worst": 0.3, "ensemble": 0.3, "ceiling": 0.99},
                "E": {"median": 0.2, "best": 0.2, "worst": 0.2, "ensemble": 0.2, "ceiling": 0.98}}},
    {"task": "density/T0.440/t00", "model": "density", "temperature": 0.44, "time_index": 0, "time": 4120.0,
     "scores": {"S": {"ensemble": 0.1, "ceiling": 0.99}}}]}


@pytest.fixture(scope="session")
def targets_run(tmp_path_factory):
    """Targets only (imported, 1 test configuration): no train/, no eval/."""
    return import_synthetic(tmp_path_factory.mktemp("plots"), n_test=1, run_name="targets-only", n_configurations=4)


@pytest.fixture(scope="session")
def trained_run(targets_run, tmp_path_factory):
    """``targets_run`` trained (BOTAN + NT-GNN, 2 replicas) and evaluated, with eval/baselines.json."""
    run = tmp_path_factory.mktemp("plots-trained") / "run"
    shutil.copytree(targets_run, run)
    sets = [a for item in TINY_TRAIN + ["train.n_replicas=2", "train.epochs=2", "train.ntgnn.enabled=true",
                                        "train.ntgnn.epochs=2", "train.ntgnn.batch_graphs=1"]
            for a in ("--set", item)]
    res = run_cli("-q", "train", str(run), "--no-progress", *sets)
    assert res.returncode == 0, res.stderr
    res = run_cli("-q", "evaluate", str(run))
    assert res.returncode == 0, res.stderr
    (run / "eval" / "baselines.json").write_text(json.dumps(BASELINES))
    return run
