import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import load_run_config, open_run_dir


def test_run_dir_is_the_runs_identity(tmp_path):
    run = tmp_path / "run"
    cfg = load_config("quick")
    open_run_dir(run, cfg)
    assert load_run_config(run) == cfg
    open_run_dir(run, cfg)  # same config: fine (resume)
    moved = load_config("quick", ["launch.local_parallelism=1", "launch.slurm.partition=gpu"])
    open_run_dir(run, moved)  # launch settings may change
    assert load_run_config(run).launch.slurm.partition == "gpu"
    before = (run / "config.yaml").read_text()
    with pytest.raises(UserError, match=r"differs at simulation.n_runs \(4 here, 8 in the run directory\)"):
        open_run_dir(run, load_config("quick", ["simulation.n_runs=4"]))
    assert (run / "config.yaml").read_text() == before


def test_refuses_foreign_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        open_run_dir(tmp_path, load_config("quick"))
    assert (tmp_path / "notes.txt").read_text() == "mine"
