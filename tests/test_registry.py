"""The stage registry: every stage an object with a name, parts, done, resources and run; ``hpc-botan status``."""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import replace

import pytest

from hpc_botan.cli import main
from hpc_botan.config import load_config
from hpc_botan.io.durable import up_to_date
from hpc_botan.io.rundir import load_run_config
from hpc_botan.pipeline.status_command import status_lines
from hpc_botan.registry import STAGE_NAMES, STAGES, stage_named
from hpc_botan.simulate.stage import prepare_run
from hpc_botan.stage import LAUNCH_KINDS, Resources
from tests.conftest import TINY
from tests.train.conftest import import_synthetic


def test_the_stages_in_their_order_each_a_complete_object():
    assert STAGE_NAMES == ("simulate", "targets", "train", "evaluate", "baselines", "figures", "report")
    assert [s.name for s in STAGES] == list(STAGE_NAMES)
    for stage in STAGES:
        assert stage.launch in LAUNCH_KINDS and stage.summary
        assert isinstance(stage.resources(load_run_config_or_preset()), Resources)
        copy = pickle.loads(pickle.dumps(stage))  # stages travel into Slurm jobs
        assert type(copy) is type(stage) and copy.name == stage.name
    assert stage_named("report").stage_names == STAGE_NAMES   # the report lists every stage's timings
    with pytest.raises(Exception, match="no stage 'nope'"):
        stage_named("nope")


def load_run_config_or_preset():
    return load_config("quick", [])


def test_a_new_simulated_run_has_every_stage_to_do(tmp_path, capsys):
    run = prepare_run("quick", tmp_path / "run", TINY)
    cfg = load_run_config(run)
    assert stage_named("simulate").parts(run, cfg) == ["conf-00000", "conf-00001"]
    lines, finished = status_lines(run, cfg, STAGES)
    assert not finished and [ln.split()[0] for ln in lines] == list(STAGE_NAMES)
    assert "2 part(s) left, conf-00000, conf-00001" in lines[0]
    assert main(["status", str(run)]) == 3
    assert "simulate   to do" in capsys.readouterr().out


def test_an_imported_run_skips_simulation_and_trains_in_groups(tmp_path):
    run = import_synthetic(tmp_path, n_test=1, n_configurations=3)
    cfg = load_run_config(run)
    lines, _ = status_lines(run, cfg, STAGES)
    assert lines[0].startswith("simulate   not part of this run (pyg-botan")
    assert lines[1] == "targets    finished"
    # the preset pretrains on time point 2, which one time point does not have: said, not raised
    assert lines[2].startswith("train      cannot be planned: train.pretrain.time_index: 2 is out of range")
    cfg = replace(cfg, train=replace(cfg.train, pretrain=replace(cfg.train.pretrain, time_index=0)))
    train = stage_named("train")
    parts = train.parts(run, cfg)
    assert parts and train.waves(parts)[0] == [parts[0]]
    if "pretrain" in parts:
        assert train.waves(parts)[0] == ["pretrain"] and "pretrain" not in train.waves(parts)[-1]
    assert not stage_named("evaluate").done(run, cfg)


def test_up_to_date_is_make_like(tmp_path):
    source, target = tmp_path / "in", tmp_path / "out"
    assert not up_to_date(target, [source])          # no output yet
    source.write_text("x")
    target.write_text("y")
    assert up_to_date(target, [source, tmp_path / "missing"])
    later = time.time() + 10
    os.utime(source, (later, later))
    assert not up_to_date(target, [source])          # an input changed after the output was written
