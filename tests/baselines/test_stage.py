"""The baselines stage and ``hpc-botan baselines`` on small synthetic runs, and the binned distance model."""
import csv
import dataclasses
import json
import shutil

import h5py
import numpy as np
import pytest

from hpc_botan.baselines.stage import DistanceStatistics, run_baselines
from hpc_botan.cli import main
from hpc_botan.io.rundir import load_run_config
from hpc_botan.plan.tasks import split_train_validation
from tests.train.conftest import import_synthetic


@pytest.fixture(scope="module")
def run_with_test_split(tmp_path_factory):
    """5 synthetic configurations, the last one in the test split."""
    return import_synthetic(tmp_path_factory.mktemp("baselines"), n_test=1, n_configurations=5)


def with_validation(run, fraction=0.25):
    cfg = load_run_config(run)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, validation_fraction=fraction))


def test_distance_model_bins_and_interpolates():
    stats = DistanceStatistics(n_bins=40, n_targets=2)
    r = np.array([1.0, 1.01, 1.5, 1.52, 1.0])
    codes = np.array([0, 0, 0, 0, 1])                                # four A–A pairs, one A–B pair
    y = np.stack([2.0 * r, np.array([1.0, 3.0, 5.0, 7.0, -4.0])], axis=1)
    stats.add(codes, r, y)
    # A–A bins: [1.00, 1.05) holds r = 1.0, 1.01 (mean r 1.005); [1.50, 1.55) holds 1.5, 1.52 (mean r 1.51)
    at = np.array([1.005, 1.51, 1.2575, 0.5, 1.9])
    np.testing.assert_allclose(stats.predict(np.zeros(5, int), at, 0), [2.01, 3.02, 2.515, 2.01, 3.02])
    np.testing.assert_allclose(stats.predict(np.zeros(2, int), np.array([1.005, 1.51]), 1), [2.0, 6.0])
    np.testing.assert_allclose(stats.predict(np.array([1]), np.array([1.7]), 1), [-4.0])   # one A–B bin
    # a species pair never seen in training: the mean of every training pair
    np.testing.assert_allclose(stats.predict(np.array([2]), np.array([1.0]), 1), [np.mean(y[:, 1])])


def test_stage_fits_on_the_train_part_and_scores_like_evaluation(run_with_test_split):
    run = run_with_test_split
    cfg = with_validation(run)
    tasks = run_baselines(run, cfg)
    assert [t["task"] for t in tasks] == ["ridge/T0.440/t00", "density/T0.440/t00", "distance/T0.440/t00"]
    ridge, density, distance = tasks
    assert set(ridge["scores"]) == {"S", "E"} and set(density["scores"]) == {"S"} and set(distance["scores"]) == {"E"}
    fit_idx, val_idx = split_train_validation(4, 0.25, cfg.train.seed)
    assert ridge["fit"]["train_configurations"] == fit_idx.tolist()       # configuration ids 0–3 are the train split
    assert ridge["fit"]["validation_configurations"] == val_idx.tolist() and len(val_idx) == 1
    assert ridge["configurations"] == [4] and ridge["n_configurations"] == 1 and ridge["replica_files"] == []
    assert ridge["time"] == pytest.approx(4120.0) and ridge["time_index"] == 0 and ridge["temperature"] == 0.44
    s = ridge["scores"]["S"]
    assert s["median"] == s["best"] == s["worst"] == s["ensemble"] == s["replicas"][0]
    # the synthetic S_i is a near noise-free function of the neighbour count within 1.1 and the type
    assert s["ensemble"] > 0.75 and 0.9 < s["ceiling"] <= 1.0
    assert 0.4 < density["scores"]["S"]["ensemble"] < s["ensemble"]
    for score in (ridge["scores"]["E"], distance["scores"]["E"]):
        assert -1.0 <= score["ensemble"] <= 1.0 and 0.9 < score["ceiling"] <= 1.0
    assert ridge["fit"]["penalty"]["S"] in np.logspace(-6, 2, 17)
    written = json.loads((run / "eval" / "baselines.json").read_text())
    assert written["split"] == "test" and written["tasks"] == json.loads(json.dumps(tasks))
    assert written["descriptors"]["T0.440"]["lengths"] == [0.0, 1.0, 2.0]   # the 5.98 σ box drops ℓ = 3
    with open(run / "eval" / "baselines.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["target"]) for r in rows] == [("ridge", "S"), ("ridge", "E"), ("density", "S"),
                                                           ("distance", "E")]
    assert float(rows[0]["ensemble"]) == pytest.approx(s["ensemble"], abs=1e-6) and rows[0]["n_replicas"] == "0"


def test_validation_split_scores_the_validation_part(run_with_test_split):
    run = run_with_test_split
    cfg = with_validation(run)
    tasks = run_baselines(run, cfg, split="validation")
    _, val_idx = split_train_validation(4, 0.25, cfg.train.seed)
    assert all(t["configurations"] == val_idx.tolist() for t in tasks)
    assert all(t["configurations"][0] not in t["fit"]["train_configurations"] for t in tasks)
    assert json.loads((run / "eval" / "baselines-validation.json").read_text())["split"] == "validation"


def test_command_prints_the_table(run_with_test_split, capsys):
    # the stored config keeps validation_fraction 0.1: no validation part of 4, so a fixed penalty
    assert main(["-q", "baselines", str(run_with_test_split), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ridge/T0.440/t00" in out and "distance/T0.440/t00" in out and "ceiling" in out
    assert "baselines.json" in out and "baselines.csv" in out
    ridge = json.loads((run_with_test_split / "eval" / "baselines.json").read_text())["tasks"][0]
    assert ridge["fit"]["validation_configurations"] == [] and ridge["fit"]["penalty"]["S"] == 1e-3


def test_without_edge_targets_only_the_s_baselines(run_with_test_split, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_with_test_split, run)
    for shard in (run / "targets").glob("shard-*.h5"):        # what a GlassBench import holds: no E_ij
        with h5py.File(shard, "r+") as f:
            for name in f:
                for key in ("pair_change", "pair_change_reliability"):
                    if key in f[name]:
                        del f[name][key]
    tasks = run_baselines(run, with_validation(run))
    assert [t["task"] for t in tasks] == ["ridge/T0.440/t00", "density/T0.440/t00"]
    assert all(set(t["scores"]) == {"S"} for t in tasks)


def test_bad_inputs_are_one_line_errors(run_with_test_split, tmp_path, capsys):
    no_targets = tmp_path / "no_targets"
    no_targets.mkdir()
    shutil.copy(run_with_test_split / "config.yaml", no_targets / "config.yaml")
    assert main(["-q", "baselines", str(no_targets)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "targets/index.h5: not found; run 'hpc-botan targets" in err
    assert main(["-q", "baselines", str(tmp_path / "nowhere")]) == 2
    assert "config.yaml: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["-q", "baselines", str(run_with_test_split), "--split", "train"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_run_without_test_configurations_is_refused(tmp_path, capsys):
    run = import_synthetic(tmp_path, n_configurations=4)
    assert main(["-q", "baselines", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no test configurations at T = 0.44" in err and "--n-test" in err
    assert not (run / "eval" / "baselines.json").exists()
