"""Training settings given on the command line: a refused one is never stored."""
import zipfile

import numpy as np
import torch

from hpc_botan.cli import main
from hpc_botan.io.rundir import load_run_config


def test_refused_set_is_not_written(synthetic_run, capsys):
    before = (synthetic_run / "config.yaml").read_text()
    assert main(["-q", "train", str(synthetic_run), "--no-progress", "--set", "train.time_indices=[99]",
                 "--set", "train.pretrain.time_index=0"]) == 2
    assert "train.time_indices: 99 is out of range" in capsys.readouterr().err
    assert (synthetic_run / "config.yaml").read_text() == before
    assert load_run_config(synthetic_run).train.time_indices is None
    # the same for import-weights, which also takes --set (with a file that passes the quick check of a weight
    # file, a zip archive: a file that does not is refused before the --set, and before torch is imported)
    weights = synthetic_run.parent / "w.pth"
    with zipfile.ZipFile(weights, "w") as archive:
        archive.writestr("w/data.pkl", b"")
    assert main(["-q", "import-weights", str(synthetic_run), str(weights), "--set", "train.pretrain.time_index=7"]) == 2
    assert "train.pretrain.time_index: 7 is out of range" in capsys.readouterr().err
    assert (synthetic_run / "config.yaml").read_text() == before


def test_a_second_train_on_the_same_run_is_refused(synthetic_run):
    import subprocess
    import sys
    import time

    from hpc_botan.io.durable import lock_holder
    from tests.conftest import run_cli
    from tests.train.conftest import TINY_TRAIN

    # a training that outlasts the test (it is killed at the end)
    sets = [a for s in TINY_TRAIN + ["train.epochs=100000"] for a in ("--set", s)]
    command = [sys.executable, "-m", "hpc_botan", "train", str(synthetic_run), "--no-progress", *sets]
    lock = synthetic_run / "train" / "botan/finetune/T0.440/t00/replica-00/.train.lock"

    def start_and_wait_for_lock():
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while lock_holder(lock) is None or f"pid {proc.pid}" not in lock_holder(lock):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the training never took its replica's lock"
            time.sleep(0.2)
        return proc

    first = start_and_wait_for_lock()
    try:
        stored = (synthetic_run / "config.yaml").read_text()
        # its settings may not change under it
        changed = run_cli("train", str(synthetic_run), "--no-progress", "--set", "train.learning_rate=0.01")
        assert changed.returncode == 2 and "being trained by another process" in changed.stderr, changed.stderr
        assert (synthetic_run / "config.yaml").read_text() == stored
        second = run_cli("train", str(synthetic_run), "--no-progress", *sets)
        assert second.returncode == 2, second.stderr
        assert "is being worked on by another process (host " in second.stderr and f"pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
    # the kill leaves no stale lock, and the next train resumes the replica instead of refusing it
    assert lock_holder(lock) is None
    assert (lock.parent / "checkpoint.pt").is_file()  # the killed training got through epochs while we checked
    resumed = start_and_wait_for_lock()
    try:
        deadline = time.monotonic() + 60
        while resumed.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
            if (lock.parent / "metrics.csv").is_file() and len((lock.parent / "metrics.csv").read_text().splitlines()) > 2:
                break
        assert resumed.poll() is None, resumed.communicate()
    finally:
        resumed.kill()
        _, err = resumed.communicate()
    assert "resuming at epoch" in err, err[-2000:]


def test_an_empty_validation_split_is_said(synthetic_run, caplog):
    from tests.train.conftest import TINY_TRAIN

    sets = [s for s in TINY_TRAIN if not s.startswith("train.validation_fraction")] + [
        "train.validation_fraction=0.1", "train.epochs=1"]
    with caplog.at_level("WARNING", logger="hpc_botan.train"):
        assert main(["-q", "train", str(synthetic_run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    assert "train.validation_fraction = 0.1 of 4 training configuration(s) at T = 0.44 holds none out" in caplog.text


def test_max_configurations_trains_and_validates_on_the_first_configurations_only(synthetic_targets):
    """train.max_configurations = 2 of 4: the networks see the first two, and the baselines fit the same ones."""
    from hpc_botan.baselines.stage import _catalog_ids
    from hpc_botan.config import load_config
    from hpc_botan.plan.targets import index_path, temperatures_and_times
    from hpc_botan.plan.tasks import training_split, training_tasks
    from hpc_botan.train.stage import load_task_graphs

    cfg = load_config("quick", ["model.descriptors=none", "model.force_features=false",
                                "train.pretrain.source=train", "train.max_configurations=2",
                                "train.validation_fraction=0.5", "train.time_indices=[0]", "train.mode=per_time"])
    index = index_path(synthetic_targets)
    task = training_tasks(cfg, temperatures_and_times(index), ("ntgnn",))[0]
    train, val = load_task_graphs(index, cfg, task, torch.device("cpu"))
    seen = sorted(int(data.catalog["id"][i]) for data, i in [*train.items, *val.items])
    ids = sorted(int(c) for c in _catalog_ids(index, "train", task.temperature))
    assert len(ids) == 4 and seen == ids[:2] and len(train) == len(val) == 1
    fit, validation = training_split(4, cfg.train)
    assert sorted([*fit, *validation]) == [0, 1]
    unlimited = load_config("quick", ["train.validation_fraction=0.5"]).train
    assert sorted(np.concatenate(training_split(4, unlimited))) == [0, 1, 2, 3]


def test_activation_checkpointing_trains_the_same_network(synthetic_targets, tmp_path):
    """train.checkpoint_activations recomputes each step in the backward: the trained weights are those of
    the run without it (same seed, same steps), and the option is not part of the run's identity."""
    import shutil

    from hpc_botan.io.checkpoint import load_checkpoint
    from tests.train.conftest import TINY_TRAIN, torch_threads

    finals = []
    for checkpointed in (False, True):
        run = tmp_path / f"run{int(checkpointed)}"
        shutil.copytree(synthetic_targets, run)
        sets = [a for s in [*TINY_TRAIN, f"train.checkpoint_activations={str(checkpointed).lower()}"]
                for a in ("--set", s)]
        with torch_threads():
            assert main(["-q", "train", str(run), "--no-progress", *sets]) == 0
        [final] = run.glob("train/botan/finetune/*/*/replica-00/final.pt")
        finals.append(load_checkpoint(final)["model"])
    assert finals[0].keys() == finals[1].keys()
    for key in finals[0]:
        torch.testing.assert_close(finals[1][key], finals[0][key], rtol=1e-5, atol=1e-6, msg=key)
    assert any((finals[0][k] != 0).any() for k in finals[0])
