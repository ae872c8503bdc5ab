"""Targets declared once (hpc_botan.learned_targets): R_i learnt through its registry entry, end to end."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.io.shards import IndexReader, read_complete_catalog
from hpc_botan.learned_targets import LEARNED_TARGETS
from tests.train.conftest import TINY_TRAIN, import_synthetic

TASK = "botan/finetune/T0.440/t00"


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def run_with_test_split(tmp_path_factory):
    return import_synthetic(tmp_path_factory.mktemp("learned"), n_test=1)


def test_the_cage_relative_displacement_is_learnt_and_scored_by_its_registry_entry(run_with_test_split, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_with_test_split, run)
    assert main(["-q", "train", str(run), "--no-progress", *_sets(TINY_TRAIN + ["train.node_target=R"])]) == 0
    replica = run / "train" / TASK / "replica-00"
    # metrics.csv names the learned targets
    with (replica / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert "val_rho_R" in header and "val_rho_E" in header and "val_rho_S" not in header
    # the network standardised R_i: its node mean is the mean of the training configurations' cage_relative
    index = run / "targets" / "index.h5"
    catalog = read_complete_catalog(index)
    reader = IndexReader(index)
    train_ids = [int(r["id"]) for r in catalog if r["split"] == 0]
    state = load_checkpoint(replica / "final.pt")
    fitted = float(state["model"]["node_offset"][0])
    r_values = np.concatenate([reader.training_arrays(i, [0], LEARNED_TARGETS["R"])["y_node"][0] for i in train_ids])
    s_values = np.concatenate([reader.training_arrays(i, [0])["y_node"][0] for i in train_ids])   # the default, S_i
    assert not np.isclose(r_values.mean(), s_values.mean(), rtol=0.05)
    # standardisation runs over the fit split (validation held out), so compare loosely with the whole split
    assert abs(fitted - r_values.mean()) < abs(fitted - s_values.mean())
    assert main(["-q", "evaluate", str(run)]) == 0
    scored = [t for t in json.loads((run / "eval" / "metrics.json").read_text())["tasks"] if t["task"] == TASK]
    assert sorted(scored[0]["scores"]) == ["E", "R"]
    assert np.isfinite(scored[0]["scores"]["R"]["ensemble"])
    assert np.isnan(scored[0]["scores"]["R"]["ceiling"])   # no split-half reliability is recorded for R_i
    # the report's tables loop over the learned targets that were scored
    assert main(["-q", "report", str(run)]) == 0
    html = (run / "report" / "report.html").read_text()
    assert "R_i" in html and "E_ij" in html
    # prediction files name their outputs S and E: a run that learnt R_i is refused in one line, not mislabelled
    from tests.conftest import run_cli
    res = run_cli("export", str(run), "--out", str(tmp_path / "model.zip"))
    assert res.returncode == 2 and "these networks learnt R and E" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "model.zip").exists()


def test_a_target_of_the_wrong_kind_is_refused_before_training(run_with_test_split, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_with_test_split, run)
    rc = main(["-q", "train", str(run), "--no-progress", *_sets(TINY_TRAIN + ["train.node_target=E"])])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "train.node_target: 'E' is not a registered node target" in err and len(err.splitlines()) == 1
    assert not (run / "train").exists()
