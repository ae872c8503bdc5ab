"""The training stage end to end on tiny synthetic data: overfitting, resume, torchrun worlds, bad input."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hpc_botan.cli import main
from hpc_botan.data.dataset import TargetsDataset
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.io.rundir import load_run_config, run_config_with_overrides
from hpc_botan.metrics import pearson
from hpc_botan.model.build import build_model
from hpc_botan.model.inference import predict_graphs
from hpc_botan.plan.tasks import seed_for
from hpc_botan.train.standardisation import target_standardisation
from hpc_botan.train.step import epoch_order, loss_terms
from tests.conftest import run_cli
from tests.train.conftest import RESUME_ENV, RESUME_THREADS, TINY_TRAIN, import_synthetic, torch_threads

TASK = "botan/finetune/T0.440/t00"


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _final(run: Path, replica: int = 0) -> dict:
    return load_checkpoint(run / "train" / TASK / f"replica-{replica:02d}" / "final.pt")


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_overfit_one_configuration(tmp_path):
    """A small replica learns one configuration's own S_i and E_ij almost perfectly (ρ > 0.95)."""
    run = import_synthetic(tmp_path, n_configurations=1, n_runs=8)
    rc = main(["-q", "train", str(run), "--no-progress", *_sets([
        "model.width=32", "model.n_steps=3", "train.learning_rate=3e-3", "train.epochs=600",
        "train.augmentation=none", "train.pretrain.enabled=false", "train.ntgnn.enabled=false",
        "train.validation_fraction=0", "train.checkpoint_every_steps=100000"])])
    assert rc == 0
    model = build_model(load_run_config(run), torch.device("cpu"))
    model.load_state_dict(_final(run)["model"])
    graph = TargetsDataset(run / "targets" / "index.h5", time_indices=[0])[0]
    node, edge = predict_graphs(model, [graph])[0]
    rho_s = pearson(node[graph.node_mask.numpy(), 0], graph.y_node[graph.node_mask, 0].numpy())
    rho_e = pearson(edge[graph.edge_mask.numpy(), 0], graph.y_edge[graph.edge_mask, 0].numpy())
    assert rho_s > 0.95 and rho_e > 0.95, (rho_s, rho_e)


KILLING_TRAIN = textwrap.dedent("""
    # Train, and SIGKILL this process right after the checkpoint of optimiser step K is on disk.
    import os, signal, sys
    import hpc_botan.train.trainer as trainer
    from hpc_botan.cli import main
    kill_at = int(sys.argv[1])
    save = trainer.save_checkpoint
    def save_then_die(path, **kwargs):
        save(path, **kwargs)
        if path.name == "checkpoint.pt" and kwargs["position"]["global_step"] >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    trainer.save_checkpoint = save_then_die
    sys.exit(main(["-q", "train", *sys.argv[2:]]))
""")


@pytest.fixture(scope="module")
def uninterrupted(synthetic_targets, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    shutil.copytree(synthetic_targets, run)
    with torch_threads():
        assert main(["-q", "train", str(run), "--no-progress",
                     *_sets(TINY_TRAIN + ["train.checkpoint_every_steps=1"])]) == 0
    return run


@pytest.mark.parametrize("kill_at", [3, 4], ids=["at-epoch-end", "mid-epoch"])
def test_killed_training_resumes_bit_identical(uninterrupted, synthetic_run, tmp_path, kill_at):
    """SIGKILL after optimiser step k, re-run: the final parameters equal the uninterrupted run's bit for bit."""
    script = tmp_path / "killing_train.py"
    script.write_text(KILLING_TRAIN)
    args = [str(synthetic_run), "--no-progress", *_sets(TINY_TRAIN + ["train.checkpoint_every_steps=1"])]
    killed = subprocess.run([sys.executable, str(script), str(kill_at), *args], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **RESUME_ENV})
    assert killed.returncode == -9, killed.stderr
    replica = synthetic_run / "train" / TASK / "replica-00"
    assert not (replica / "final.pt").exists()
    assert load_checkpoint(replica / "checkpoint.pt")["position"]["global_step"] == kill_at
    resumed = run_cli("train", *args, env=RESUME_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch" in resumed.stderr
    a, b = _final(uninterrupted), _final(synthetic_run)
    assert _same_tensors(a["model"], b["model"])
    # the metrics log has each epoch once, with the same training losses
    rows_a = (uninterrupted / "train" / TASK / "replica-00" / "metrics.csv").read_text().splitlines()
    rows_b = (replica / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:4] for r in rows_a] == [r.split(",")[:4] for r in rows_b]


HEADS = TINY_TRAIN + ["train.checkpoint_every_steps=1", "model.descriptors=heads", "train.head_init=least_squares",
                      "train.select_on=rho"]


def test_killed_training_with_descriptor_heads_resumes_bit_identical(synthetic_targets, tmp_path):
    """Descriptor heads: their standardisation and least-squares start are in the checkpoint, so a killed
    replica resumes to the uninterrupted run's parameters bit for bit; the fitted start is a best.pt."""
    runs = []
    for name in ("uninterrupted", "killed"):
        run = tmp_path / name
        shutil.copytree(synthetic_targets, run)
        runs.append(run)
    args = ["--no-progress", *_sets(HEADS)]
    with torch_threads():
        assert main(["-q", "train", str(runs[0]), *args]) == 0
    assert (runs[0] / "targets" / "descriptors.h5").is_file()
    script = tmp_path / "killing_train.py"
    script.write_text(KILLING_TRAIN)
    killed = subprocess.run([sys.executable, str(script), "3", str(runs[1]), *args], capture_output=True, text=True,
                            timeout=300, env={**os.environ, **RESUME_ENV})
    assert killed.returncode == -9, killed.stderr
    replica = runs[1] / "train" / TASK / "replica-00"
    assert load_checkpoint(replica / "best.pt")["position"]["epoch"] == 0      # the fitted start, before epoch 1
    resumed = run_cli("train", str(runs[1]), *args, env=RESUME_ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch" in resumed.stderr and "fitted by least squares" not in resumed.stderr
    a, b = _final(runs[0]), _final(runs[1])
    assert any(k.startswith("descriptor_heads.") for k in a["model"])
    assert float(a["model"]["descriptor_heads.pair.weight"].abs().max()) > 0   # fitted, not left at zero
    assert _same_tensors(a["model"], b["model"])


def _torchrun(nproc: int, *args: str, threads: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           "-m", "hpc_botan.train", *args], capture_output=True, text=True, timeout=300, env=env)


def test_torchrun_data_parallel_equals_averaged_gradients(synthetic_run):
    """D = 2 gloo ranks, one graph each per step == one process stepping on the mean of both gradients."""
    settings = TINY_TRAIN + ["train.data_parallel=2", "train.validation_fraction=0", "train.augmentation=none",
                             "train.epochs=2", "train.learning_rate=1e-3"]
    res = _torchrun(2, str(synthetic_run), "--no-progress", *_sets(settings))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "gloo" in res.stderr

    cfg = load_run_config(synthetic_run)
    graphs = list(TargetsDataset(synthetic_run / "targets" / "index.h5", split="train", time_indices=[0]))
    torch.manual_seed(seed_for("init", cfg.train.seed, 0, TASK))
    model = build_model(cfg, torch.device("cpu"))
    # the targets standardised by their mean and spread over the training graphs (train.standardize)
    model.set_output_standardisation(*target_standardisation(graphs, cfg.train.node_weight))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.learning_rate, eps=cfg.train.adam_eps)
    for epoch in range(cfg.train.epochs):
        order = epoch_order(len(graphs), cfg.train.seed, 0, epoch).tolist()
        for step in range(len(graphs) // 2):
            pair = [graphs[k] for k in order[2 * step:2 * step + 2]]
            losses = [loss_terms(*model(g.x, g.edge_index, g.edge_attr), g, cfg.train.node_weight,
                                 node_scale=model.node_scale, edge_scale=model.edge_scale)[0] for g in pair]
            optimizer.zero_grad()
            (sum(losses) / 2).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
    trained = _final(synthetic_run)["model"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(trained[name], value, atol=1e-6, rtol=0, msg=name)


def test_torchrun_replicas_are_independent(synthetic_run, uninterrupted):
    """R = 2 (two processes, D = 1): two different replicas, each checkpointed in its own directory,
    each equal to the same replica trained by one process."""
    # each process on the threads of the single-process run it is compared with
    res = _torchrun(2, str(synthetic_run), "--no-progress", *_sets(TINY_TRAIN + ["train.n_replicas=2"]),
                    threads=RESUME_THREADS)
    assert res.returncode == 0, res.stderr[-3000:]
    replicas = [synthetic_run / "train" / TASK / f"replica-{r:02d}" for r in (0, 1)]
    for d in replicas:
        assert {"checkpoint.pt", "best.pt", "final.pt", "metrics.csv"} <= {p.name for p in d.iterdir()}
    a, b = _final(synthetic_run, 0)["model"], _final(synthetic_run, 1)["model"]
    assert not _same_tensors(a, b)
    assert _same_tensors(a, _final(uninterrupted, 0)["model"])


def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(synthetic_run, capsys):
    """A NaN target poisons the loss at some step: exit 1, one line naming the step; the checkpoint before stays."""
    import h5py

    shard = synthetic_run / "targets" / "shard-00000.h5"
    first = int(epoch_order(4, 0, 0, 0)[0])  # every graph but the first one trained on is poisoned
    with h5py.File(shard, "r+") as f:
        for k, name in enumerate(sorted(f)):
            if k != first:
                f[name]["propensity"][0, 0] = np.nan
    rc = main(["-q", "train", str(synthetic_run), "--no-progress",
               *_sets(TINY_TRAIN + ["train.checkpoint_every_steps=1", "train.validation_fraction=0"])])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "loss is nan" in err and "the last good checkpoint is" in err
    replica = synthetic_run / "train" / TASK / "replica-00"
    assert not (replica / "final.pt").exists()
    state = load_checkpoint(replica / "checkpoint.pt")
    bad_step = int(err.split("(optimiser step ")[1].split(")")[0])
    assert state["position"]["global_step"] == bad_step
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_checkpoint_of_another_configuration_is_refused(uninterrupted, synthetic_run, capsys):
    run_config_with_overrides(synthetic_run, TINY_TRAIN + ["model.width=8"], ("model", "train"), "train/**/metrics.csv")
    replica = synthetic_run / "train" / TASK / "replica-00"
    replica.mkdir(parents=True)
    shutil.copy(uninterrupted / "train" / TASK / "replica-00" / "checkpoint.pt", replica / "checkpoint.pt")
    rc = main(["-q", "train", str(synthetic_run), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "checkpoint.pt: checkpoint of another architecture" in err, err
    assert (replica / "checkpoint.pt").stat().st_size > 0


@pytest.mark.parametrize("settings, message", [
    (["train.batch_graphs=4"], "3 training configurations for 1 data-parallel rank(s) x 4 graph(s) per step"),
    (["train.time_indices=[5]"], "train.time_indices: 5 is out of range"),
])
def test_impossible_training_settings(synthetic_run, capsys, settings, message):
    rc = main(["-q", "train", str(synthetic_run), "--no-progress", *_sets(TINY_TRAIN + settings)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err


def test_data_without_type_a_particles(tmp_path, capsys):
    run = import_synthetic(tmp_path, n_configurations=2, all_type_b=True)
    rc = main(["-q", "train", str(run), "--no-progress", *_sets(TINY_TRAIN)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "has no type-A particles" in err, err
    assert not (run / "train" / TASK / "replica-00" / "checkpoint.pt").exists()


def test_overrides_are_refused_once_training_results_exist(uninterrupted, capsys):
    rc = main(["-q", "train", str(uninterrupted), "--no-progress", "--set", "train.learning_rate=0.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "results exist for the stored configuration" in err, err


#: A collective timeout far shorter than the training: any rank waiting on a world-wide barrier fails.
SHORT_TIMEOUT = ["launch.train_timeout_min=0.05"]


def test_idle_ranks_do_not_time_out(synthetic_run):
    """3 processes, 1 replica: two ranks have nothing to train and must not wait at a timed barrier."""
    settings = TINY_TRAIN + SHORT_TIMEOUT + ["train.epochs=40"]
    start = time.monotonic()
    res = _torchrun(3, str(synthetic_run), "--no-progress", *_sets(settings))
    assert res.returncode == 0, res.stderr[-3000:]
    assert time.monotonic() - start > 6, "the training must outlast the timeout for this test to mean anything"
    assert (synthetic_run / "train" / TASK / "replica-00" / "final.pt").is_file()
    assert not (synthetic_run / "train" / TASK / "replica-01").exists()


def test_more_replicas_than_slots_with_pretraining(synthetic_run):
    """2 slots, 3 replicas: slot 1 finishes first and leaves; every fine-tuning starts from its own pretraining."""
    settings = [s for s in TINY_TRAIN if not s.startswith("train.pretrain")] + SHORT_TIMEOUT + [
        "train.n_replicas=3", "train.epochs=20", "train.pretrain.epochs=10", "train.pretrain.time_index=0"]
    res = _torchrun(2, str(synthetic_run), "--no-progress", *_sets(settings))
    assert res.returncode == 0, res.stderr[-3000:]
    for task in ("botan/pretrain/T0.440/t00", "botan/finetune/T0.440/t00"):
        for r in range(3):
            assert (synthetic_run / "train" / task / f"replica-{r:02d}" / "final.pt").is_file(), (task, r)


def test_standardisation_streams_and_matches_the_whole_split_statistics():
    """Mean and spread per column over all graphs (NaN ignored), computed one graph at a time."""
    from torch_geometric.data import Data

    rng = np.random.default_rng(3)
    graphs = []
    for n, e in ((5, 12), (7, 20), (3, 9)):
        y_edge = torch.tensor(rng.normal(2.0, 0.5, (e, 2)), dtype=torch.float32)
        y_edge[0, 1] = float("nan")
        graphs.append(Data(y_node=torch.tensor(rng.normal(1.0, 3.0, (n, 2)), dtype=torch.float32), y_edge=y_edge,
                           node_mask=torch.ones(n, dtype=torch.bool), edge_mask=torch.ones(e, dtype=torch.bool),
                           has_edge_targets=torch.tensor(True)))
    s_mean, s_std, e_mean, e_std = target_standardisation(graphs, 0.4)
    nodes = np.concatenate([g.y_node.double().numpy() for g in graphs])
    edges = np.concatenate([g.y_edge.double().numpy() for g in graphs])
    np.testing.assert_allclose(s_mean, nodes.mean(0), rtol=1e-6)
    np.testing.assert_allclose(s_std, nodes.std(0), rtol=1e-6)
    np.testing.assert_allclose(e_mean, np.nanmean(edges, 0), rtol=1e-6)
    np.testing.assert_allclose(e_std, np.nanstd(edges, 0), rtol=1e-6)
