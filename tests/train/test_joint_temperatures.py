"""train.temperatures = joint: one network for every temperature, the temperature a node feature,
scored at a temperature it never trained on."""
from __future__ import annotations

import json

import pytest
import torch

from hpc_botan.cli import main
from hpc_botan.io.checkpoint import load_checkpoint
from hpc_botan.io.rundir import load_run_config
from hpc_botan.plan.targets import temperatures_and_times
from hpc_botan.plan.tasks import evaluated_tasks, training_tasks
from tests.conftest import run_cli
from tests.train.conftest import TINY_TRAIN, write_synthetic_pyg_botan

JOINT = "botan/finetune/joint/multi"


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def three_temperatures(tmp_path_factory):
    """4 synthetic configurations at each of T = 0.44, 0.50, 0.56 (the last of each in the test split)."""
    base = tmp_path_factory.mktemp("joint")
    for k, t in enumerate((0.44, 0.50, 0.56)):
        write_synthetic_pyg_botan(base / "npz", seed=k, temperature=t)
    run = base / "run"
    res = run_cli("-q", "import", "pyg-botan", str(base / "npz"), "--out", str(run), "--n-test", "1")
    assert res.returncode == 0, res.stderr
    return run


SETTINGS = TINY_TRAIN + ["train.temperatures=joint", "train.holdout_temperatures=[0.5]", "train.mode=multi_time",
                         "train.pretrain.enabled=true", "train.pretrain.epochs=2", "train.pretrain.time_index=0"]


def test_joint_tasks_train_on_two_temperatures_and_are_scored_at_three(three_temperatures):
    from dataclasses import replace
    cfg = load_run_config(three_temperatures)
    cfg = replace(cfg, train=replace(cfg.train, temperatures="joint", holdout_temperatures=[0.5], mode="multi_time",
                                     pretrain=replace(cfg.train.pretrain, time_index=0)))
    times = temperatures_and_times(three_temperatures / "targets" / "index.h5")
    tasks = training_tasks(cfg, times)
    assert [t.name for t in tasks] == ["botan/pretrain/T0.440/t00", JOINT, "ntgnn/joint/multi"]
    assert tasks[1].temperatures == (0.44, 0.56)
    views = [v for v in evaluated_tasks(cfg, times) if v.name == JOINT]
    assert [v.temperature for v in views] == [0.44, 0.5, 0.56]


def test_a_joint_network_trains_on_two_temperatures_and_evaluates_at_a_third(three_temperatures, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(three_temperatures, run)
    assert main(["-q", "train", str(run), "--no-progress", *_sets(SETTINGS)]) == 0
    state = load_checkpoint(run / "train" / JOINT / "replica-00" / "final.pt")
    assert state["architecture"]["temperature_input"] is True
    assert state["model"]["node_encoder.fc1.weight"].shape[1] == 2          # (type, T)
    assert main(["-q", "evaluate", str(run)]) == 0
    tasks = json.loads((run / "eval" / "metrics.json").read_text())["tasks"]
    joint = {t["temperature"]: t for t in tasks if t["task"] == JOINT}
    assert sorted(joint) == [0.44, 0.5, 0.56]
    assert joint[0.5]["held_out"] and not joint[0.44]["held_out"] and not joint[0.56]["held_out"]
    assert all(torch.isfinite(torch.tensor(t["scores"]["S"]["ensemble"])) for t in joint.values())
    # the ρ(t) figure has a panel for the held-out temperature, and says so
    res = run_cli("plot", "rho-nodes", str(run))
    assert res.returncode == 0, res.stderr


def test_a_joint_network_starts_from_the_published_networks(three_temperatures, tmp_path):
    """train.pretrain.source: published with joint temperatures: replica k is the shipped model{k+1} with a
    zero temperature column (the same network at every T), and fine-tuning on two temperatures starts there."""
    import shutil

    from hpc_botan.model.reference_weights import load_published_weights

    run = tmp_path / "run"
    shutil.copytree(three_temperatures, run)
    settings = ["train.temperatures=joint", "train.holdout_temperatures=[0.5]", "train.mode=multi_time",
                "train.pretrain.source=published", "train.pretrain.time_index=0", "model.separate_decoders=true",
                "train.epochs=1", "train.n_replicas=1", "train.ntgnn.enabled=false", "train.time_indices=[0]",
                "train.validation_fraction=0.25", "train.head_init=least_squares"]
    assert main(["-q", "train", str(run), "--no-progress", *_sets(settings)]) == 0
    installed = load_checkpoint(run / "train" / "botan/pretrain/T0.440/t00" / "replica-00" / "final.pt")
    assert installed["extra"]["imported_from"] == "hpc_botan model1.npz"
    weight = installed["model"]["node_encoder.fc1.weight"]
    assert weight.shape == (64, 2) and torch.count_nonzero(weight[:, 1]) == 0
    published = load_published_weights(1)
    assert torch.equal(weight[:, :1], published.state_dict()["node_encoder.fc1.weight"])
    tuned = load_checkpoint(run / "train" / JOINT / "replica-00" / "final.pt")
    assert tuned["architecture"]["temperature_input"] is True
    assert main(["-q", "evaluate", str(run)]) == 0
    tasks = json.loads((run / "eval" / "metrics.json").read_text())["tasks"]
    assert sorted(t["temperature"] for t in tasks if t["task"] == JOINT) == [0.44, 0.5, 0.56]


@pytest.mark.parametrize("settings, message", [
    (["train.temperatures=joint", "train.holdout_temperatures=[0.6]"],
     "train.holdout_temperatures: 0.6 is not a temperature of this run"),
    (["train.temperatures=joint", "train.holdout_temperatures=[0.44, 0.5, 0.56]"], "every temperature is held out"),
    (["train.temperatures=joint", "train.holdout_temperatures=[0.44]", "train.pretrain.enabled=true",
      "train.pretrain.temperature=0.44"], "is held out"),
    (["train.holdout_temperatures=[0.5]"], "train.holdout_temperatures: needs train.temperatures = joint"),
])
def test_bad_hold_outs_are_one_line(three_temperatures, tmp_path, capsys, settings, message):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(three_temperatures, run)
    rc = main(["-q", "train", str(run), "--no-progress", *_sets(TINY_TRAIN + settings)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (run / "train").exists() or not list((run / "train").rglob("final.pt"))


def test_prediction_outside_the_learnt_temperatures_warns(three_temperatures, tmp_path):
    import shutil

    import h5py
    import numpy as np

    from hpc_botan.io.lammps_text import write_data_file

    run = tmp_path / "run"
    shutil.copytree(three_temperatures, run)
    settings = [s for s in SETTINGS if not s.startswith("train.holdout")] + ["train.holdout_temperatures=[0.56]"]
    assert main(["-q", "train", str(run), "--no-progress", *_sets(settings)]) == 0
    cfg = load_run_config(run)
    box = np.full(3, (cfg.simulation.n_particles / cfg.simulation.density) ** (1 / 3))
    rng = np.random.default_rng(3)
    species = (rng.uniform(size=cfg.simulation.n_particles) < 0.2).astype(int)
    structure = tmp_path / "s.data"
    write_data_file(structure, species, rng.uniform(size=(species.size, 3)) * box, box)
    predictions = {}
    for t in (0.5, 0.56):
        out = tmp_path / f"pred{t}.h5"
        res = run_cli("predict", str(run), str(structure), "--out", str(out), "--temperature", str(t))
        assert res.returncode == 0, res.stderr
        with h5py.File(out, "r") as f:
            warnings = [w.decode() if isinstance(w, bytes) else str(w) for w in f["structures/00000"].attrs["warnings"]]
            predictions[t] = f[f"structures/00000/predictions/botan/T{t:.3f}/t00/S_mean"][()]
        extrapolates = [w for w in warnings if "extrapolate" in w]
        assert bool(extrapolates) == (t == 0.56), warnings
    # the temperature is an input: the same structure gets other predictions at another temperature
    assert not np.allclose(predictions[0.5], predictions[0.56])
