import shutil

import numpy as np
import pytest

from hpc_botan.targets.shards import read_configuration
from tests.conftest import SHARED, run_cli

SAMPLE = SHARED / "data" / "pyg_botan_sample"


@pytest.fixture
def sample_one(tmp_path):
    """Configurations 1 and 2 of the shared sample (time point tc07) in a directory of their own."""
    if not SAMPLE.is_dir():
        pytest.skip(f"shared sample data not found at {SAMPLE}")
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
