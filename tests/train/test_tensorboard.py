"""``train.log: [csv, tensorboard]``: event files for every replica beside metrics.csv."""
import pytest

from hpc_botan.cli import main
from hpc_botan.config import load_config
from tests.train.conftest import TINY_TRAIN

pytest.importorskip("tensorboard", reason="the tensorboard package (pip install -e '.[test]') is not installed")


def _scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_every_replica_logs_its_epochs(synthetic_run):
    sets = TINY_TRAIN + ["train.n_replicas=2", "train.epochs=3", "train.log=[csv, tensorboard]"]
    assert main(["-q", "train", str(synthetic_run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    for replica in (0, 1):
        directory = synthetic_run / "train" / "botan/finetune/T0.440/t00" / f"replica-{replica:02d}" / "tensorboard"
        scalars = _scalars(directory)
        assert {"loss/train", "loss/validation", "rho/S", "rho/E", "learning_rate"} <= set(scalars)
        assert [step for step, _ in scalars["loss/train"]] == [1, 2, 3]
        rows = (directory.parent / "metrics.csv").read_text().splitlines()[1:]
        assert scalars["loss/train"][-1][1] == pytest.approx(float(rows[-1].split(",")[2]), rel=1e-6)


def test_logging_is_not_part_of_the_identity():
    a, b = load_config("quick"), load_config("quick", ["train.log=[csv, tensorboard]"])
    assert a.identity() == b.identity()
