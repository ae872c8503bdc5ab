import pytest

from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.rundir import holds_only_pilots, load_run_config, open_run_dir, set_pilot_aside


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


def test_a_superseded_pilot_is_renamed_never_deleted(tmp_path):
    run = tmp_path / "run"
    for generation in ("first", "second"):
        (run / "pilot").mkdir(parents=True)
        (run / "pilot" / "config.yaml").write_text(generation)
        set_pilot_aside(run)
    assert not (run / "pilot").exists()
    assert (run / "pilot.superseded-1" / "config.yaml").read_text() == "first"
    assert (run / "pilot.superseded-2" / "config.yaml").read_text() == "second"
    # a directory holding only pilots, current or superseded, is still a new run directory
    (run / "pilot").mkdir()
    assert holds_only_pilots(run)
    open_run_dir(run, load_config("quick"))
    assert (run / "config.yaml").is_file() and (run / "pilot.superseded-1" / "config.yaml").read_text() == "first"
    # but nothing else is taken for a pilot
    (tmp_path / "other" / "pilot.old").mkdir(parents=True)
    assert not holds_only_pilots(tmp_path / "other")
