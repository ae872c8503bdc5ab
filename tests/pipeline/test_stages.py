"""Stage bookkeeping of ``hpc-botan run``: grouping, completion checks, timings."""
import json

import h5py
import numpy as np
import pytest

from hpc_botan.config import load_config
from hpc_botan.io.timings import stage_timings, timed_stage
from hpc_botan.plan.targets import targets_complete
from hpc_botan.plan.tasks import planned_times, training_groups, training_tasks


def _cfg(*overrides):
    return load_config("quick", ["simulation.time_points={0.64: [0.1, 1.0, 10.0]}", "train.time_indices=null",
                                 "train.mode=per_time", *overrides])


def test_training_groups_put_pretraining_first_and_pair_botan_with_ntgnn():
    cfg = _cfg("train.pretrain.time_index=1")
    tasks = training_tasks(cfg, {0.64: np.array([0.1, 1.0, 10.0])})
    groups = training_groups(tasks)
    assert groups[0] == ("pretrain", ["botan/pretrain/T0.640/t01"])
    assert groups[1:] == [(f"T0.640/t{k:02d}", [f"botan/finetune/T0.640/t{k:02d}", f"ntgnn/T0.640/t{k:02d}"])
                          for k in range(3)]


def test_multi_time_training_is_one_group_per_temperature():
    cfg = _cfg("train.mode=multi_time")
    tasks = training_tasks(cfg, {0.64: np.array([0.1, 1.0, 10.0])})
    assert training_groups(tasks) == [("pretrain", ["botan/pretrain/T0.640/t02"]),
                                      ("T0.640/multi", ["botan/finetune/T0.640/multi", "ntgnn/T0.640/multi"])]


def test_training_groups_without_pretraining_or_ntgnn():
    cfg = _cfg("train.pretrain.enabled=false", "train.ntgnn.enabled=false", "train.time_indices=[2]")
    tasks = training_tasks(cfg, {0.64: np.array([0.1, 1.0, 10.0])})
    assert training_groups(tasks) == [("T0.640/t02", ["botan/finetune/T0.640/t02"])]


def test_planned_times_come_from_the_config_until_targets_exist(tmp_path):
    cfg = _cfg()
    times = planned_times(tmp_path, cfg)
    assert list(times) == [0.64]
    np.testing.assert_allclose(times[0.64], [0.1, 1.0, 10.0])


def test_targets_complete_needs_a_complete_index_with_every_configuration(tmp_path):
    cfg = _cfg("simulation.n_configurations=4", "simulation.n_train=3")
    index = tmp_path / "targets" / "index.h5"
    assert not targets_complete(tmp_path, cfg)
    index.parent.mkdir()
    with h5py.File(index, "w") as f:
        f.attrs.update({"complete": 1, "n_configurations": 3})
    assert not targets_complete(tmp_path, cfg)
    with h5py.File(index, "w") as f:
        f.attrs.update({"complete": 0, "n_configurations": 4})
    assert not targets_complete(tmp_path, cfg)
    with h5py.File(index, "w") as f:
        f.attrs.update({"complete": 1, "n_configurations": 4})
    assert targets_complete(tmp_path, cfg)
    index.write_bytes(b"not hdf5")
    assert not targets_complete(tmp_path, cfg)


def test_timings_are_recorded_only_for_successful_blocks_and_summed_per_stage(tmp_path, monkeypatch):
    clock = iter([100.0, 110.0, 105.0, 125.0, 200.0])
    monkeypatch.setattr("hpc_botan.io.timings.time.time", lambda: next(clock))
    with timed_stage(tmp_path, "simulate", part="conf-00000"):
        pass
    with timed_stage(tmp_path, "simulate", part="conf-00001"):
        pass
    with pytest.raises(RuntimeError):
        with timed_stage(tmp_path, "targets"):
            raise RuntimeError("killed")
    timings = stage_timings(tmp_path)
    assert list(timings) == ["simulate"]  # the failed targets attempt left nothing
    sim = timings["simulate"]
    assert sim["seconds"] == pytest.approx(10.0 + 20.0)
    assert sim["wall"] == pytest.approx(125.0 - 100.0)
    assert sim["parts"] == 2
    files = sorted((tmp_path / "pipeline" / "timings").glob("*.json"))
    assert [f.name for f in files] == ["simulate.conf-00000.json", "simulate.conf-00001.json"]
    assert json.loads(files[0].read_text())["stage"] == "simulate"


def test_a_broken_timing_file_does_not_break_the_timings(tmp_path):
    with timed_stage(tmp_path, "train", part="T0.640/t01"):
        pass
    (tmp_path / "pipeline" / "timings" / "train.x.json").write_text("{not json")
    (tmp_path / "pipeline" / "timings" / "train.y.json").write_text("[]")
    (tmp_path / "pipeline" / "timings" / "train.z.json").write_text('{"stage": "train"}')
    timings = stage_timings(tmp_path)
    assert timings["train"]["parts"] == 1
    assert (tmp_path / "pipeline" / "timings" / "train.T0.640_t01.json").is_file()
