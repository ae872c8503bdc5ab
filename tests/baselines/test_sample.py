"""The ridge baseline at scale: the authors' 10 configurations (N = 4096, T = 0.44, t = τα)."""
import json
import time

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_ridge_on_the_shared_sample(sample_dir, tmp_path):
    run = tmp_path / "sample"
    res = run_cli("-q", "import", "pyg-botan", str(sample_dir / "train"), "--out", str(run), "--n-test", "2")
    assert res.returncode == 0, res.stderr
    start = time.perf_counter()
    res = run_cli("-q", "baselines", str(run), "--no-progress")
    seconds = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    tasks = {t["task"]: t for t in json.loads((run / "eval" / "baselines.json").read_text())["tasks"]}
    ridge = tasks["ridge/T0.440/t00"]
    assert ridge["configurations"] == [8, 9] and len(ridge["fit"]["train_configurations"]) == 7
    rho_s, rho_e = ridge["scores"]["S"]["ensemble"], ridge["scores"]["E"]["ensemble"]
    print(f"\nshared sample, test configurations 8, 9: ridge rho_S = {rho_s:.3f}, rho_E = {rho_e:.3f}, "
          f"density rho_S = {tasks['density/T0.440/t00']['scores']['S']['ensemble']:.3f}, distance rho_E = "
          f"{tasks['distance/T0.440/t00']['scores']['E']['ensemble']:.3f}; {seconds:.0f} s")
    # the issue: such a linear model reaches about 0.46 at tau_alpha from 10 training configurations
    assert rho_s > 0.35
    # the structure-aware models beat their one-variable counterparts
    assert rho_s > tasks["density/T0.440/t00"]["scores"]["S"]["ensemble"]
    assert rho_e > tasks["distance/T0.440/t00"]["scores"]["E"]["ensemble"]
    assert seconds < 120   # 10 configurations of 4096 particles, torch import included, on 2 shared cores
