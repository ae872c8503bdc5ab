"""Training settings given on the command line: a refused one is never stored."""
from hpc_botan.cli import main
from hpc_botan.rundir import load_run_config


def test_refused_set_is_not_written(synthetic_run, capsys):
    before = (synthetic_run / "config.yaml").read_text()
    assert main(["-q", "train", str(synthetic_run), "--no-progress", "--set", "train.time_indices=[99]",
                 "--set", "train.pretrain.time_index=0"]) == 2
    assert "train.time_indices: 99 is out of range" in capsys.readouterr().err
    assert (synthetic_run / "config.yaml").read_text() == before
    assert load_run_config(synthetic_run).train.time_indices is None
    # the same for import-weights, which also takes --set
    assert main(["-q", "import-weights", str(synthetic_run), "missing.pth", "--set", "train.pretrain.time_index=7"]) == 2
    assert "train.pretrain.time_index: 7 is out of range" in capsys.readouterr().err
    assert (synthetic_run / "config.yaml").read_text() == before


def test_a_second_train_on_the_same_run_is_refused(synthetic_run):
    import subprocess
    import sys
    import time

    from hpc_botan.io_utils import lock_holder
    from tests.conftest import run_cli
    from tests.train.conftest import TINY_TRAIN

    sets = [a for s in TINY_TRAIN + ["train.epochs=100"] for a in ("--set", s)]
    first = subprocess.Popen([sys.executable, "-m", "hpc_botan", "train", str(synthetic_run), "--no-progress", *sets],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = synthetic_run / "train" / "botan/finetune/T0.440/t00/replica-00/.train.lock"
    try:
        deadline = time.monotonic() + 120
        while lock_holder(lock) is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first training never took its replica's lock"
            time.sleep(0.2)
        stored = (synthetic_run / "config.yaml").read_text()
        second = run_cli("train", str(synthetic_run), "--no-progress")
        assert second.returncode == 2, second.stderr
        assert "is being worked on by another process (host " in second.stderr and f"pid {first.pid}" in second.stderr
        # nor may its settings change under it
        changed = run_cli("train", str(synthetic_run), "--no-progress", "--set", "train.learning_rate=0.01")
        assert changed.returncode == 2 and "being trained by another process" in changed.stderr, changed.stderr
        assert (synthetic_run / "config.yaml").read_text() == stored
    finally:
        first.kill()
        first.wait()
    # the killed first training resumes cleanly afterwards (no foreign checkpoint, no stale lock)
    resumed = run_cli("train", str(synthetic_run), "--no-progress", "--set", "train.epochs=100")
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli("evaluate", str(synthetic_run), "--model", "botan", "--split", "validation").returncode == 0


def test_an_empty_validation_split_is_said(synthetic_run, caplog):
    from tests.train.conftest import TINY_TRAIN

    sets = [s for s in TINY_TRAIN if not s.startswith("train.validation_fraction")] + [
        "train.validation_fraction=0.1", "train.epochs=1"]
    with caplog.at_level("WARNING", logger="hpc_botan.train"):
        assert main(["-q", "train", str(synthetic_run), "--no-progress", *[a for s in sets for a in ("--set", s)]]) == 0
    assert "train.validation_fraction = 0.1 of 4 training configuration(s) at T = 0.44 holds none out" in caplog.text
