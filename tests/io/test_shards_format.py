"""The targets file format as a user without hpc_botan sees it (plain h5py), and the integrity check.

Synthetic configurations (compute_targets on random walks): no LAMMPS, a fraction of a second each.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_botan.cli import main as cli_main
from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import (
    ARRAYS,
    DATASET_INFO,
    ConfigurationMeta,
    group_name,
    read_configuration,
    same_source,
    source_path,
    stored_configurations,
    verify_shard,
    verify_targets,
    write_index,
    write_shard,
)
from hpc_botan.physics.configuration_targets import compute_targets, targets_without_trajectories
from hpc_botan.simulate.stage import prepare_run
from hpc_botan.targets.stage import configuration_metas
from tests.conftest import TINY


def _targets(seed: int, n: int = 120, times=(0.01, 0.05, 0.2), trajectories: bool = True):
    rng = np.random.default_rng(seed)
    box = np.full(3, (n / 1.2) ** (1 / 3))
    x0 = rng.uniform(size=(n, 3)) * box
    species = (rng.uniform(size=n) < 0.2).astype(np.int8)
    if not trajectories:
        return targets_without_trajectories(x0, species, box, rng.uniform(size=(len(times), n)), np.array(times))
    runs = x0 + np.cumsum(rng.normal(scale=0.05, size=(3, len(times), n, 3)), axis=1)
    return compute_targets(x0, species, box, runs, np.array(times))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory (config.yaml of the tiny quick preset, 2 configurations) with synthetic targets."""
    run = prepare_run("quick", tmp_path / "run", TINY)
    metas = configuration_metas(load_run_config(run), run)
    targets_dir = run / "targets"
    targets_dir.mkdir()
    write_shard(targets_dir / "shard-00000.h5", 0, 1, [(m, _targets(k, n=200)) for k, m in metas.items()])
    write_index(targets_dir, ["shard-00000.h5"], metas)
    return run


def _datasets(path: Path) -> dict[str, h5py.Dataset]:
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                found[name] = {k: obj.attrs[k] for k in ("units", "description") if k in obj.attrs}
        f.visititems(visit)
    return found


def test_every_dataset_has_units_and_a_description(run_dir):
    assert set(DATASET_INFO) == set(ARRAYS)
    for name in ("shard-00000.h5", "index.h5"):
        found = _datasets(run_dir / "targets" / name)
        assert found, name
        for dataset, attrs in found.items():
            assert isinstance(attrs.get("units"), str) and attrs["units"], f"{name}:{dataset} has no units"
            assert isinstance(attrs.get("description"), str) and len(attrs["description"]) > 10, \
                f"{name}:{dataset} has no description"
    shard = _datasets(run_dir / "targets" / "shard-00000.h5")
    assert {k.split("/", 1)[1] for k in shard} == set(ARRAYS)
    assert shard["conf_000000/propensity"]["units"] == "sigma"
    assert shard["conf_000000/d2min"]["units"] == "sigma^2"
    assert shard["conf_000000/times"]["units"] == "tau"
    assert shard["conf_000000/fs"]["units"] == "1"
    index = _datasets(run_dir / "targets" / "index.h5")
    assert {"catalog", "T0.640/ids", "T0.640/propensity"} <= set(index)
    assert "temperature: epsilon/k_B" in index["catalog"]["units"]


def test_source_is_stored_relative_to_the_run_directory(run_dir):
    with h5py.File(run_dir / "targets" / "shard-00000.h5", "r") as f:
        recorded = f["conf_000001"].attrs["source"]
    assert recorded == "simulate/T0.640/conf-00001.h5"
    assert source_path(recorded, run_dir) == run_dir / "simulate" / "T0.640" / "conf-00001.h5"
    # shards written before hold the absolute path of the machine that wrote them
    old = "/home/someone/runs/ka/simulate/T0.640/conf-00001.h5"
    assert source_path(old, run_dir) == Path(old)


def test_old_shards_without_units_and_with_absolute_sources_still_read_and_are_reused(tmp_path):
    metas = {k: ConfigurationMeta(k, 0.64, 0, k, "train", f"/data/set/conf-{k}.npz", recorded_source=f"conf-{k}.npz")
             for k in range(2)}
    old = tmp_path / "old.h5"
    write_shard(old, 0, 1, [(metas[0], _targets(0)), (metas[1], _targets(1, trajectories=False))])
    with h5py.File(old, "r+") as f:  # as written before: no units, no description, absolute sources
        for k in range(2):
            g = f[group_name(k)]
            g.attrs["source"] = f"/elsewhere/set/conf-{k}.npz"
            for ds in g.values():
                del ds.attrs["units"], ds.attrs["description"]
    assert verify_shard(old) == []
    assert same_source("/elsewhere/set/conf-0.npz", metas[0]) and not same_source("conf-1.npz", metas[0])
    stored = stored_configurations([old], metas)
    assert sorted(stored) == [0, 1]
    new = tmp_path / "shard-00000.h5"
    write_shard(new, 0, 1, [(metas[k], stored[k]) for k in range(2)])
    assert verify_shard(new) == []
    with h5py.File(new, "r") as f:  # copied: same arrays and checksums, the new attributes added
        assert f["conf_000000"].attrs["source"] == "conf-0.npz"
        assert f["conf_000001/propensity"].attrs["units"] == "sigma" and "pair_change" not in f["conf_000001"]
    index = write_index(tmp_path, ["old.h5"], metas)
    assert verify_targets(tmp_path, metas) == []
    got = read_configuration(index, 1, ["propensity"])
    np.testing.assert_array_equal(got["propensity"], _targets(1, trajectories=False).propensity)


def test_one_damaged_byte_is_one_line_naming_the_dataset(run_dir, capsys):
    shard = run_dir / "targets" / "shard-00000.h5"
    with h5py.File(shard, "r") as f:
        ds = f["conf_000001/propensity"]
        offset = ds.id.get_offset() + ds.nbytes // 2  # contiguous storage: the data lie there
    with open(shard, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x10]))
    problems = verify_targets(run_dir / "targets", range(2))
    assert len(problems) == 1 and "\n" not in problems[0]
    assert problems[0].startswith(f"{shard}:conf_000001/propensity: checksum mismatch (recorded ")
    assert cli_main(["verify", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hpc-botan: verify: {problems[0]}"]
