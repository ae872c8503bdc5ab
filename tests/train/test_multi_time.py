"""train.mode = multi_time: one network per temperature with one output column per time point."""
from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from hpc_botan.cli import main
from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.io.lammps_text import write_data_file
from hpc_botan.io.rundir import load_run_config
from hpc_botan.metrics import pearson
from hpc_botan.model.botan import Botan, BotanArchitecture
from hpc_botan.model.build import build_model
from hpc_botan.model.inference import predict_graphs
from hpc_botan.plan.targets import temperatures_and_times
from hpc_botan.plan.tasks import evaluated_tasks, training_tasks
from hpc_botan.train.standardisation import target_standardisation
from tests.conftest import run_cli
from tests.train.conftest import RESUME_ENV, TINY_TRAIN, import_synthetic, torch_threads
from tests.train.test_training import KILLING_TRAIN

MULTI = "botan/finetune/T0.440/multi"
N_TIMES = 3


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def multi_targets(tmp_path_factory):
    """4 synthetic configurations with 3 time points, 1 of them in the test split."""
    return import_synthetic(tmp_path_factory.mktemp("multi"), n_test=1, n_times=N_TIMES)


def test_tasks_and_their_evaluated_views(multi_targets):
    cfg = load_run_config(multi_targets)
    from dataclasses import replace
    cfg = replace(cfg, train=replace(cfg.train, mode="multi_time"))
    times = temperatures_and_times(multi_targets / "targets" / "index.h5")
    names = [t.name for t in training_tasks(cfg, times)]
    assert names == ["botan/pretrain/T0.440/t02", MULTI, "ntgnn/T0.440/multi"]
    views = [v for v in evaluated_tasks(cfg, times) if v.name == MULTI]
    assert [(v.time_index, v.output) for v in views] == [(0, 0), (1, 1), (2, 2)]
    assert all(v.columns == (0, 1, 2) for v in views)


def test_standardisation_round_trips(multi_targets):
    """Outputs in σ = mean + spread · raw: the standardised model of a raw model predicts the same."""
    graphs = list(TargetsDataset(multi_targets / "targets" / "index.h5", split="train", time_indices=[0, 1, 2]))
    node_mean, node_std, edge_mean, edge_std = target_standardisation(graphs, 0.4)
    y = torch.cat([g.y_node for g in graphs])
    torch.testing.assert_close(node_mean, y.mean(0))
    torch.testing.assert_close(node_std, y.std(0, unbiased=False))
    assert node_std.shape == (N_TIMES,) and bool((edge_std > 0).all())
    torch.manual_seed(0)
    raw = Botan(BotanArchitecture(width=8, n_steps=1, n_outputs=N_TIMES))
    scaled = Botan(BotanArchitecture(width=8, n_steps=1, n_outputs=N_TIMES))
    scaled.load_state_dict(raw.state_dict())
    scaled.set_output_standardisation(node_mean, node_std, edge_mean, edge_std)
    g = graphs[0]
    node_raw, edge_raw = raw(g.x, g.edge_index, g.edge_attr)
    node, edge = scaled(g.x, g.edge_index, g.edge_attr)
    torch.testing.assert_close(node, node_mean + node_std * node_raw)
    torch.testing.assert_close((edge - edge_mean) / edge_std, edge_raw)
    # the buffers travel in the state_dict: a reloaded model predicts the same σ values
    again = Botan(BotanArchitecture(width=8, n_steps=1, n_outputs=N_TIMES))
    again.load_state_dict(scaled.state_dict())
    torch.testing.assert_close(again(g.x, g.edge_index, g.edge_attr)[0], node)


def test_zero_spread_is_a_one_line_error(multi_targets):
    graphs = list(TargetsDataset(multi_targets / "targets" / "index.h5", split="train", time_indices=[0]))
    for g in graphs:
        g.y_node = torch.ones_like(g.y_node)
    from hpc_botan.errors import UserError
    with pytest.raises(UserError, match="zero spread"):
        target_standardisation(graphs, 0.4, task="t")
    # a target the loss ignores needs no spread (p = 0: edges only)
    assert float(target_standardisation(graphs, 0.0)[1][0]) == 1.0
    # train.standardize_edges = false: E_ij stays in σ
    graphs = list(TargetsDataset(multi_targets / "targets" / "index.h5", split="train", time_indices=[0]))
    _, _, edge_mean, edge_std = target_standardisation(graphs, 0.4, edges=False)
    assert float(edge_mean[0]) == 0.0 and float(edge_std[0]) == 1.0


def test_multi_time_network_overfits_every_time_point(tmp_path):
    run = import_synthetic(tmp_path, n_configurations=1, n_runs=8, n_times=N_TIMES)
    rc = main(["-q", "train", str(run), "--no-progress", *_sets([
        "train.mode=multi_time", "model.width=32", "model.n_steps=3", "train.learning_rate=3e-3",
        "train.epochs=600", "train.augmentation=none", "train.pretrain.enabled=false", "train.ntgnn.enabled=false",
        "train.validation_fraction=0", "train.checkpoint_every_steps=100000"])])
    assert rc == 0
    state = load_checkpoint(run / "train" / MULTI / "replica-00" / "final.pt")
    assert state["architecture"]["n_outputs"] == N_TIMES
    model = build_model(load_run_config(run), torch.device("cpu"), N_TIMES)
    model.load_state_dict(state["model"])
    graph = TargetsDataset(run / "targets" / "index.h5", time_indices=list(range(N_TIMES)))[0]
    node, edge = predict_graphs(model, [graph])[0]
    for k in range(N_TIMES):
        rho_s = pearson(node[graph.node_mask.numpy(), k], graph.y_node[graph.node_mask, k].numpy())
        rho_e = pearson(edge[graph.edge_mask.numpy(), k], graph.y_edge[graph.edge_mask, k].numpy())
        assert rho_s > 0.95 and rho_e > 0.95, (k, rho_s, rho_e)


SETTINGS = TINY_TRAIN + ["train.mode=multi_time", "train.time_indices=null", "train.checkpoint_every_steps=1",
                         "train.pretrain.enabled=true", "train.pretrain.epochs=2", "train.pretrain.time_index=0",
                         "train.lr_schedule=cosine", "train.warmup_epochs=1", "train.select_on=rho",
                         "train.ntgnn.enabled=true", "train.ntgnn.epochs=2", "train.ntgnn.batch_graphs=1"]


@pytest.fixture(scope="module")
def multi_uninterrupted(multi_targets, tmp_path_factory):
    import shutil
    run = tmp_path_factory.mktemp("multi_uninterrupted") / "run"
    shutil.copytree(multi_targets, run)
    with torch_threads():
        assert main(["-q", "train", str(run), "--no-progress", *_sets(SETTINGS)]) == 0
    return run


def test_killed_multi_time_training_resumes_bit_identical(multi_uninterrupted, multi_targets, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(multi_targets, run)
    script = tmp_path / "killing_train.py"
    # killed in the multi-time fine-tuning (not in the pretraining before it)
    script.write_text(KILLING_TRAIN.replace('path.name == "checkpoint.pt"',
                                            'path.name == "checkpoint.pt" and "/multi/" in str(path)'))
    args = [str(run), "--no-progress", *_sets(SETTINGS)]
    # 2 training graphs: the fine-tuning's third optimiser step is mid-epoch 2
    killed = subprocess.run([sys.executable, str(script), "3", *args], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, **RESUME_ENV})
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(run / "train" / MULTI / "replica-00" / "checkpoint.pt")["position"]["global_step"] == 3
    resumed = run_cli("train", *args, env=RESUME_ENV)
    assert resumed.returncode == 0, resumed.stderr
    for task in ("botan/pretrain/T0.440/t00", MULTI, "ntgnn/T0.440/multi"):
        a = load_checkpoint(multi_uninterrupted / "train" / task / "replica-00" / "final.pt")["model"]
        b = load_checkpoint(run / "train" / task / "replica-00" / "final.pt")["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), task
    rows = (run / "train" / MULTI / "replica-00" / "metrics.csv").read_text().splitlines()
    assert rows[0].endswith(",lr") and len(rows) == 1 + 4


def test_multi_time_evaluation_and_prediction_per_time_point(multi_uninterrupted, tmp_path):
    run = multi_uninterrupted
    res = run_cli("evaluate", str(run))
    assert res.returncode == 0, res.stderr
    done = [line.split("evaluate: ", 1)[1] for line in res.stderr.splitlines() if MULTI in line and "done" in line]
    assert len(done) == N_TIMES and len(set(done)) == N_TIMES, done      # each line names its time point
    rows = (run / "eval" / "rho.csv").read_text().splitlines()
    multi_rows = [r.split(",") for r in rows if f",{MULTI}," in r]
    assert len(multi_rows) == 2 * N_TIMES  # S and E at every time point
    assert sorted({int(r[3]) for r in multi_rows}) == list(range(N_TIMES))
    # a structure that was never simulated: one prediction per time point, each from its own column
    cfg = load_run_config(run)
    box = np.full(3, (cfg.simulation.n_particles / cfg.simulation.density) ** (1 / 3))
    rng = np.random.default_rng(1)
    species = (rng.uniform(size=cfg.simulation.n_particles) < 0.2).astype(int)
    structure = tmp_path / "s.data"
    write_data_file(structure, species, rng.uniform(0, 1, size=(species.size, 3)) * box, box)
    out = tmp_path / "pred.h5"
    res = run_cli("predict", str(run), str(structure), "--out", str(out))
    assert res.returncode == 0, res.stderr
    with h5py.File(out, "r") as f:
        botan = f["structures/00000/predictions/botan/T0.440"]
        assert sorted(botan) == [f"t{k:02d}" for k in range(N_TIMES)]
        s0, s2 = botan["t00/S_mean"][()], botan["t02/S_mean"][()]
    assert not np.allclose(s0, s2)


def test_a_single_output_checkpoint_is_refused_by_a_multi_time_run(multi_uninterrupted, tmp_path, capsys):
    from hpc_botan.errors import UserError
    from hpc_botan.plan.networks import replica_predictions
    cfg = load_run_config(multi_uninterrupted)
    graph = TargetsDataset(multi_uninterrupted / "targets" / "index.h5", split="test", time_indices=[0])[0]
    pretrain = multi_uninterrupted / "train" / "botan/pretrain/T0.440/t00" / "replica-00" / "final.pt"
    with pytest.raises(UserError, match="no output column 2"):
        replica_predictions(cfg, [pretrain], [graph], output=2)
