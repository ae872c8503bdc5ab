"""The stage registry: every stage an object with a name, parts, done, resources and run; ``hpc-botan status``."""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import replace

import pytest

from hpc_botan.calibrate.stage import CalibrateStage
from hpc_botan.cli import main
from hpc_botan.config import load_config
from hpc_botan.errors import UserError
from hpc_botan.io.durable import up_to_date
from hpc_botan.io.rundir import load_run_config
from hpc_botan.pipeline.run import provisional_config, resolve_config, stage_resources, stages_to_run
from hpc_botan.pipeline.status_command import status_lines
from hpc_botan.registry import STAGE_NAMES, STAGES, stage_named
from hpc_botan.simulate.stage import prepare_run
from hpc_botan.stage import LAUNCH_KINDS, Resources
from tests.conftest import TINY
from tests.train.conftest import import_synthetic


def test_the_stages_in_their_order_each_a_complete_object():
    assert STAGE_NAMES == ("calibrate", "simulate", "targets", "train", "evaluate", "baselines", "figures", "report")
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
    assert lines[0] == "calibrate  not part of this run (time points given in the config)"
    assert "2 part(s) left, conf-00000, conf-00001" in lines[1]
    assert main(["status", str(run)]) == 3
    assert "simulate   to do" in capsys.readouterr().out


def test_an_imported_run_skips_simulation_and_trains_in_groups(tmp_path):
    run = import_synthetic(tmp_path, n_test=1, n_configurations=3)
    cfg = load_run_config(run)
    lines, _ = status_lines(run, cfg, STAGES)
    assert lines[0].startswith("calibrate  not part of this run (pyg-botan")
    assert lines[1].startswith("simulate   not part of this run (pyg-botan")
    assert lines[2] == "targets    finished"
    # the preset pretrains on time point 2, which one time point does not have: said, not raised
    assert lines[3].startswith("train      cannot be planned: train.pretrain.time_index: 2 is out of range")
    cfg = replace(cfg, train=replace(cfg.train, pretrain=replace(cfg.train.pretrain, time_index=0)))
    train = stage_named("train")
    parts = train.parts(run, cfg)
    assert parts and train.waves(parts)[0] == [parts[0]]
    if "pretrain" in parts:
        assert train.waves(parts)[0] == ["pretrain"] and "pretrain" not in train.waves(parts)[-1]
    assert not stage_named("evaluate").done(run, cfg)



def test_calibrate_is_the_first_stage_and_only_for_calibrated_time_points(tmp_path):
    calibrate = STAGES[0]
    assert isinstance(calibrate, CalibrateStage) and calibrate.name == "calibrate" and calibrate.launch == "resolve"
    given = load_config("quick", [])
    calibrated = load_config("quick", ["simulation.time_points=calibrated"])
    assert not calibrate.applies(given) and calibrate.applies(calibrated)
    assert calibrate.applies(load_config("quick", ["simulation.time_points={0.64: calibrated, 0.5: [1.0, 2.0]}"]))
    # resolve stages run before the others: never in the stage loop, never a job of the chain
    assert "calibrate" not in stage_resources(calibrated)
    run = tmp_path / "run"
    assert stages_to_run(run, calibrated, [calibrate]) == []
    # a configuration without calibrated time points is not resolved, and its run directory not opened here
    assert resolve_config(run, given, executor=None) == (run, given) and not run.exists()
    assert provisional_config(given) is given
    assert not provisional_config(calibrated).simulation.calibrated_temperatures()
    # a calibrated one needs its pilot: without an executor only a finished pilot is used
    with pytest.raises(UserError, match="pilot run that calibrates simulation.time_points is not finished"):
        resolve_config(run, calibrated, executor=None)


def test_status_says_calibrate_finished_once_the_pilot_measured_tau_alpha(tmp_path):
    run = prepare_run("quick", tmp_path / "run", TINY)
    cfg = load_run_config(run)
    assert not stage_named("calibrate").done(run, cfg)
    (run / "pilot").mkdir()
    (run / "pilot" / "calibration.json").write_text("{}")
    lines, _ = status_lines(run, cfg, STAGES)
    assert lines[0] == "calibrate  finished"


def test_up_to_date_is_make_like(tmp_path):
    source, target = tmp_path / "in", tmp_path / "out"
    assert not up_to_date(target, [source])          # no output yet
    source.write_text("x")
    target.write_text("y")
    assert up_to_date(target, [source, tmp_path / "missing"])
    later = time.time() + 10
    os.utime(source, (later, later))
    assert not up_to_date(target, [source])          # an input changed after the output was written
