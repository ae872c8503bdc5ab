"""``hpc-botan evaluate`` on a tiny synthetic run with a test split and two replicas."""
import csv
import json

import pytest

from hpc_botan.cli import main
from tests.conftest import run_cli
from tests.train.conftest import TINY_TRAIN, import_synthetic, write_synthetic_pyg_botan


@pytest.fixture(scope="module")
def run_with_test_split(tmp_path_factory):
    return import_synthetic(tmp_path_factory.mktemp("eval"), n_test=2, n_configurations=5)


def test_evaluate_before_training_is_a_clear_error(run_with_test_split, capsys):
    assert main(["-q", "evaluate", str(run_with_test_split)]) == 2
    assert "no finished replicas to evaluate" in capsys.readouterr().err


def test_train_then_evaluate(run_with_test_split, capsys):
    run = run_with_test_split
    sets = [a for item in TINY_TRAIN + ["train.n_replicas=2", "train.ntgnn.enabled=true", "train.ntgnn.epochs=2",
                                        "train.ntgnn.batch_graphs=1"] for a in ("--set", item)]
    assert main(["-q", "train", str(run), "--no-progress", *sets]) == 0
    assert main(["-q", "evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "botan/finetune/T0.440/t00" in out and "ntgnn/T0.440/t00" in out
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test"
    botan, ntgnn = metrics["tasks"]
    assert botan["n_configurations"] == 2 and botan["configurations"] == [3, 4]   # the last two: test split
    assert set(botan["scores"]) == {"S", "E"} and set(ntgnn["scores"]) == {"S"}
    s = botan["scores"]["S"]
    assert len(s["replicas"]) == 2 and s["worst"] <= s["median"] <= s["best"]
    assert all(name.endswith("best.pt") for name in botan["replica_files"])
    assert 0 < s["ceiling"] <= 1
    with open(run / "eval" / "rho.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["target"]) for r in rows] == [("botan", "S"), ("botan", "E"), ("ntgnn", "S")]
    # the validation split is the held-out part of the train split
    assert main(["-q", "evaluate", str(run), "--split", "validation"]) == 0
    val = json.loads((run / "eval" / "metrics-validation.json").read_text())
    assert val["tasks"][0]["configurations"] != [3, 4] and len(val["tasks"][0]["configurations"]) == 1


def test_import_refuses_an_impossible_test_split(tmp_path):
    src = write_synthetic_pyg_botan(tmp_path / "npz", n_configurations=2)
    res = run_cli("-q", "import", "pyg-botan", str(src), "--out", str(tmp_path / "run"), "--n-test", "2")
    assert res.returncode == 2 and "--n-test 2: expected 0 … 1" in res.stderr
    assert not (tmp_path / "run").exists()
