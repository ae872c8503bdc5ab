import shutil

import numpy as np
import pytest

from hpc_botan.io.shards import read_configuration
from tests.conftest import SAMPLE, run_cli


@pytest.fixture
def sample_one(tmp_path, sample_dir):
    """Configurations 1 and 2 of the shared sample (time point tc07) in a directory of their own."""
    src = tmp_path / "src"
    src.mkdir()
    for c in (1, 2):
        shutil.copy(SAMPLE / "train" / f"isoconfig_N4096T0.44_{c}_tc07.npz", src)
    return src


def test_import_reproduces_the_reference_outputs(sample_one, tmp_path):
    out = tmp_path / "run"
    res = run_cli("import", "pyg-botan", str(sample_one), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert run_cli("verify", str(out)).returncode == 0
    ref = np.load(SAMPLE / "reference_outputs_config1_tc07.npz")
    got = read_configuration(out / "targets" / "index.h5", 0)  # configuration 1 is the first
    assert got["attrs"]["temperature"] == 0.44 and got["times"].tolist() == [4120.0]
    assert got["attrs"]["source"] == "isoconfig_N4096T0.44_1_tc07.npz"  # within the imported directory
    ours = {tuple(p) for p in got["edge_index"].T.tolist()}
    assert ours == {tuple(p) for p in ref["edge_index"].T.astype(np.int64).tolist()}
    order = np.lexsort((ref["edge_index"][1], ref["edge_index"][0]))  # ours is sorted by (i, j)
    np.testing.assert_allclose(got["propensity"][0], ref["node_target"], atol=1e-5)
    np.testing.assert_allclose(got["pair_change"][0], ref["edge_target"][order], atol=1e-5)
    np.testing.assert_allclose(got["edge_attr"], ref["edge_attr"][order], atol=1e-5)
    np.testing.assert_array_equal(got["node_mask"], ref["node_mask_typeA"])
    np.testing.assert_array_equal(got["edge_mask"], ref["edge_mask_AA_r135"][order])


def test_time_points_of_one_configuration_are_gathered(sample_one, tmp_path):
    # the same frame filed under a second time point (tc06) must become a second time point
    data = dict(np.load(sample_one / "isoconfig_N4096T0.44_1_tc07.npz"))
    np.savez(sample_one / "isoconfig_N4096T0.44_1_tc06.npz", **data)
    np.savez(sample_one / "isoconfig_N4096T0.44_2_tc06.npz", **dict(np.load(sample_one / "isoconfig_N4096T0.44_2_tc07.npz")))
    out = tmp_path / "run"
    res = run_cli("import", "pyg-botan", str(sample_one), "--out", str(out))
    assert res.returncode == 0, res.stderr
    got = read_configuration(out / "targets" / "index.h5", 0, ["times", "propensity"])
    assert got["times"].tolist() == [1300.0, 4120.0]
    np.testing.assert_array_equal(got["propensity"][0], got["propensity"][1])


@pytest.mark.parametrize("damage, message", [
    ("empty", "no pyg-botan files"),
    ("missing_key", "missing array 'positions'"),
    ("other_structure", "types or initial positions differ"),
    ("nan", "NaN or inf positions"),
])
def test_bad_sources_are_one_line_errors(sample_one, tmp_path, damage, message):
    f7 = sample_one / "isoconfig_N4096T0.44_2_tc07.npz"
    if damage == "empty":
        for p in sample_one.iterdir():
            p.rename(p.with_suffix(".bak"))
    elif damage == "missing_key":
        data = dict(np.load(f7))
        del data["positions"]
        np.savez(f7, **data)
    elif damage == "other_structure":
        data = dict(np.load(f7))
        np.savez(sample_one / "isoconfig_N4096T0.44_2_tc06.npz", **{**data, "initial_positions": data["initial_positions"] + 0.1})
        np.savez(sample_one / "isoconfig_N4096T0.44_1_tc06.npz", **dict(np.load(sample_one / "isoconfig_N4096T0.44_1_tc07.npz")))
    elif damage == "nan":
        data = dict(np.load(f7))
        data["positions"][3, 5, 1] = np.nan
        np.savez(f7, **data)
    res = run_cli("import", "pyg-botan", str(sample_one), "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert message in res.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "targets" / "index.h5").exists()


# ------------------------------------------------------------------ DeepMind and GlassBench
# Small synthetic files written to the documented schemas (REFERENCE §5).
import pickle  # noqa: E402

import h5py  # noqa: E402

from hpc_botan.data.dataset import TargetsDataset  # noqa: E402
from hpc_botan.physics.configuration_targets import compute_targets  # noqa: E402


def _deepmind_dict(rng, n=150, runs=4, temperature=0.44):
    box = np.full(3, (n / 1.2) ** (1 / 3)) * rng.uniform(0.98, 1.02)
    x0 = rng.uniform(size=(n, 3)) * box
    time = np.geomspace(0.01, 1e4, 169)
    idx = np.sort(rng.choice(169, size=10, replace=False))[::-1]  # unordered on purpose
    steps = np.cumsum(rng.normal(scale=0.03, size=(10, runs, n, 3)), axis=0)
    return {"positions": x0, "types": (rng.uniform(size=n) < 0.2).astype(np.int32), "box": box, "time": time,
            "time_indices": idx, "trajectory_start_velocities": [rng.normal(size=(n, 3)) for _ in range(runs)],
            "trajectory_target_positions": [x0 + s for s in steps],
            "metadata": {"temperature": temperature, "pressure": 2.0, "fluid": "kob_andersen"}}


def test_deepmind_import(tmp_path):
    rng = np.random.default_rng(4)
    src = tmp_path / "dm"
    src.mkdir()
    dicts = [_deepmind_dict(rng) for _ in range(2)]
    for k, d in enumerate(dicts):
        with open(src / f"config_{k}.pickle", "wb") as fh:
            pickle.dump(d, fh)
    out = tmp_path / "run"
    res = run_cli("import", "deepmind", str(src), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert run_cli("verify", str(out)).returncode == 0
    got = read_configuration(out / "targets" / "index.h5", 1)
    d = dicts[1]
    order = np.argsort(d["time"][d["time_indices"]])
    runs = np.stack(d["trajectory_target_positions"])[order].transpose(1, 0, 2, 3)
    want = compute_targets(np.mod(d["positions"], d["box"]), d["types"], d["box"], runs, d["time"][d["time_indices"]][order])
    np.testing.assert_allclose(got["times"], want.times)
    np.testing.assert_array_equal(got["propensity"], want.propensity)
    np.testing.assert_array_equal(got["pair_change"], want.pair_change)
    np.testing.assert_allclose(got["box"], d["box"])
    assert got["attrs"]["source"] == "config_1.pickle"


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch HACKED",))


def test_deepmind_refuses_pickles_that_run_code(tmp_path):
    src = tmp_path / "dm"
    src.mkdir()
    d = _deepmind_dict(np.random.default_rng(0))
    d["metadata"] = {"temperature": 0.44, "extra": _Evil()}
    with open(src / "config_0.pickle", "wb") as fh:
        pickle.dump(d, fh)
    res = run_cli("import", "deepmind", str(src), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 2
    assert "refusing to load posix.system" in res.stderr or "refusing to load os.system" in res.stderr
    assert not (tmp_path / "HACKED").exists()


def test_deepmind_missing_key(tmp_path):
    src = tmp_path / "dm"
    src.mkdir()
    d = _deepmind_dict(np.random.default_rng(0))
    del d["box"]
    with open(src / "c.pkl", "wb") as fh:
        pickle.dump(d, fh)
    res = run_cli("import", "deepmind", str(src), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "c.pkl: missing key 'box'" in res.stderr


def test_glassbench_import_has_propensity_only(tmp_path):
    rng = np.random.default_rng(6)
    src = tmp_path / "gb"
    src.mkdir()
    n = 150
    box = (n / 1.2) ** (1 / 3)
    props = []
    for k in (1, 2):
        x0 = rng.uniform(-box / 2, box / 2, size=(n, 3))
        prop = rng.uniform(0, 1, size=(10, n))
        props.append((x0, prop))
        np.savez(src / f"N{n}T0.44_{k}.npz", types=(rng.uniform(size=n) < 0.2).astype(np.int8),
                 initial_positions=x0, initial_positions_inherent=x0, md_prop=prop)
    out = tmp_path / "run"
    res = run_cli("import", "glassbench", str(src), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert run_cli("verify", str(out)).returncode == 0
    got = read_configuration(out / "targets" / "index.h5", 1)
    np.testing.assert_allclose(got["propensity"], props[1][1].astype(np.float32))
    np.testing.assert_allclose(got["positions0"], np.mod(props[1][0] + box / 2, box))
    assert "pair_change" not in got and got["times"][6] == 4120.0
    assert got["attrs"]["source"] == f"N{n}T0.44_2.npz"
    with h5py.File(out / "targets" / "index.h5") as f:
        assert f["T0.440/propensity"].shape == (2, 10, n) and "d2min" not in f["T0.440"]
    graph = TargetsDataset(out / "targets" / "index.h5", time_indices=[6])[0]
    assert not graph.has_edge_targets and graph.y_edge.abs().sum() == 0


def test_wrong_format_is_named(tmp_path, sample_one):
    res = run_cli("import", "glassbench", str(sample_one), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "no GlassBench files" in res.stderr
    res = run_cli("import", "deepmind", str(sample_one), "--out", str(tmp_path / "run2"))
    assert res.returncode == 2 and "no DeepMind pickles" in res.stderr
