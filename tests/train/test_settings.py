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
