"""Acceptance: predicting a configuration of the authors' sample from a data file reproduces evaluation.

Four configurations of the sample (4096 particles at T = 0.44, t = τα) are imported, the last 2 as
test configurations, fine-tuned for one epoch from the shipped pretrained weights and evaluated; then one
test configuration is written to a LAMMPS data file and predicted.  The ensemble mean must equal
what evaluation computes on the targets index's graph, and its Pearson ρ against the targets must
equal metrics.json's per-configuration value.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import read_configuration
from hpc_botan.io.structures import Structure
from hpc_botan.metrics import pearson
from hpc_botan.plan.networks import finished_replicas, replica_predictions
from hpc_botan.plan.tasks import TrainingTask
from hpc_botan.predict.predict import build_graph
from tests.conftest import run_cli
from tests.predict.test_command import write_data

pytestmark = pytest.mark.slow

TASK = "botan/finetune/T0.440/t00"


def _ok(*args):
    res = run_cli("-q", *args)
    assert res.returncode == 0, res.stderr
    return res


def test_predict_reproduces_evaluation_on_the_sample(sample_dir, tmp_path):
    run = tmp_path / "run"
    # four of the ten configurations (two to train on, the last two to test): what is compared does not
    # depend on how many trained the network, and training on all ten would cost a minute
    npz = tmp_path / "npz"
    npz.mkdir()
    for conf in (1, 2, 9, 10):
        name = f"isoconfig_N4096T0.44_{conf}_tc07.npz"
        (npz / name).symlink_to(sample_dir / "train" / name)
    _ok("import", "pyg-botan", str(npz), "--out", str(run), "--n-test", "2")
    _ok("import-weights", str(run), str(sample_dir / "initial_model" / "model1.pth"),
        str(sample_dir / "initial_model" / "model2.pth"), "--set", "train.pretrain.time_index=0")
    _ok("train", str(run), "--model", "botan", "--set", "train.epochs=1", "--no-progress")
    _ok("evaluate", str(run), "--model", "botan")
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    (task,) = [t for t in metrics["tasks"] if t["task"] == TASK]
    position = 0
    conf_id = task["configurations"][position]

    index = run / "targets" / "index.h5"
    conf = read_configuration(index, conf_id)
    structure = Structure(positions=conf["positions0"], species=conf["species"], box=conf["box"], source="index")
    graph = build_graph(structure)
    # the importer's graph is the one predict builds: same edges in the same order, same vectors
    np.testing.assert_array_equal(graph.edge_index, conf["edge_index"])
    np.testing.assert_array_equal(graph.edge_attr, conf["edge_attr"])

    path = write_data(tmp_path / "conf.data", conf["positions0"], conf["species"], conf["box"])
    out = tmp_path / "p.h5"
    _ok("predict", str(run), str(path), "--out", str(out), "--model", "botan", "--no-progress")
    with h5py.File(out, "r") as f:
        g = f["structures/00000"]
        np.testing.assert_array_equal(g["edge_index"][()], conf["edge_index"])
        pred = g["predictions/botan/T0.440/t00"]
        s_mean, e_mean = pred["S_mean"][()], pred["E_mean"][()]
        assert pred["S_replicas"].shape[0] == len(task["replica_files"])

    # evaluation's own path: replica_predictions on the index graph
    cfg = load_run_config(run)
    files = finished_replicas(run, TrainingTask(TASK, 0.44, 0, cfg.train.node_weight, 1, 1), cfg.train.n_replicas)
    from hpc_botan.data.dataset import TargetsDataset

    data = TargetsDataset(index, split="test", time_indices=[0])
    (item,) = [data[k] for k in range(len(data)) if int(data[k].conf_id) == conf_id]
    preds = replica_predictions(cfg, files, [item])
    np.testing.assert_allclose(s_mean, np.mean([p[0][0][:, 0] for p in preds], axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(e_mean, np.mean([p[0][1][:, 0] for p in preds], axis=0), rtol=0, atol=1e-6)

    node_mask, edge_mask = item.node_mask.numpy(), item.edge_mask.numpy()
    assert torch.equal(item.edge_index, torch.from_numpy(conf["edge_index"]))
    rho_s = pearson(s_mean[node_mask], conf["propensity"][0][node_mask])
    rho_e = pearson(e_mean[edge_mask], conf["pair_change"][0][edge_mask])
    assert rho_s == pytest.approx(task["scores"]["S"]["per_configuration"][position], abs=1e-5)
    assert rho_e == pytest.approx(task["scores"]["E"]["per_configuration"][position], abs=1e-5)
