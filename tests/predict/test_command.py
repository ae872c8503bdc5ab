"""``hpc-botan predict`` end to end with a tiny trained model: every input format, output, bad input."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_botan.cli import main
from hpc_botan.io.shards import read_configuration
from tests.conftest import run_cli
from tests.train.conftest import TINY_TRAIN, import_synthetic

N_REPLICAS = 2


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A synthetic run (T = 0.44, 256 particles) with 2 BOTAN and 2 NT-GNN replicas trained for a few steps."""
    run = import_synthetic(tmp_path_factory.mktemp("predict"), n_configurations=4)
    sets = [a for item in TINY_TRAIN + [f"train.n_replicas={N_REPLICAS}", "train.ntgnn.enabled=true",
                                        "train.ntgnn.epochs=2", "train.ntgnn.batch_graphs=1"]
            for a in ("--set", item)]
    assert main(["-q", "train", str(run), "--no-progress", *sets]) == 0
    return run


@pytest.fixture(scope="module")
def structure(trained_run):
    """Configuration 0 of the run's targets index: positions (N, 3), species (N,), box (3,)."""
    c = read_configuration(trained_run / "targets" / "index.h5", 0)
    return c["positions0"], c["species"], c["box"]


def write_data(path: Path, positions, species, box, tilt=False) -> Path:
    positions, box = np.asarray(positions, float), [float(b) for b in box]   # repr: plain numbers
    rows = "\n".join(f"{i + 1} {int(t) + 1} {x!r} {y!r} {z!r}"
                     for i, (t, (x, y, z)) in enumerate(zip(species, positions.tolist())))
    path.write_text(f"written by a test\n\n{len(species)} atoms\n2 atom types\n\n0.0 {box[0]!r} xlo xhi\n"
                    f"0.0 {box[1]!r} ylo yhi\n0.0 {box[2]!r} zlo zhi\n" + ("0 0 0 xy xz yz\n" if tilt else "")
                    + f"\nAtoms # atomic\n\n{rows}\n")
    return path


def write_dump(path: Path, positions, species, box) -> Path:
    """Two frames: the structure in scaled coordinates (reversed row order), then shifted by one box."""
    positions, box = np.asarray(positions, float), [float(b) for b in box]   # repr: plain numbers
    n = len(species)
    head = f"ITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp pp\n" + "".join(f"0.0 {b!r}\n" for b in box)
    scaled = (np.asarray(positions) / box).tolist()
    frame0 = "".join(f"{i + 1} {int(species[i]) + 1} {scaled[i][0]!r} {scaled[i][1]!r} {scaled[i][2]!r}\n"
                     for i in reversed(range(n)))
    shifted = (np.asarray(positions) + box).tolist()
    frame1 = "".join(f"{i + 1} {int(species[i]) + 1} {shifted[i][0]!r} {shifted[i][1]!r} {shifted[i][2]!r}\n"
                     for i in range(n))
    path.write_text(f"ITEM: TIMESTEP\n0\n{head}ITEM: ATOMS id type xs ys zs\n{frame0}"
                    f"ITEM: TIMESTEP\n5\n{head}ITEM: ATOMS id type xu yu zu\n{frame1}")
    return path


def write_h5md(path: Path, positions, species, box) -> Path:
    with h5py.File(path, "w") as f:
        g = f.create_group("particles/glass")
        g.create_dataset("box/edges", data=box)
        g.create_dataset("position/value", data=positions[None])
        g.create_dataset("species", data=species)
        f.create_group("parameters").attrs["temperature"] = 0.44
    return path


def write_extxyz(path: Path, positions, species, box) -> Path:
    positions, box = np.asarray(positions, float), [float(b) for b in box]   # repr: plain numbers
    rows = "".join(f"{'AB'[int(t)]} {x!r} {y!r} {z!r}\n" for t, (x, y, z) in zip(species, positions.tolist()))
    path.write_text(f"{len(species)}\nLattice=\"{box[0]!r} 0 0 0 {box[1]!r} 0 0 0 {box[2]!r}\" "
                    f"Properties=species:S:1:pos:R:3 Temperature=0.44\n{rows}")
    return path


def test_every_format_gives_the_same_predictions(trained_run, structure, tmp_path):
    files = [write_data(tmp_path / "s.data", *structure), write_dump(tmp_path / "s.lammpstrj", *structure),
             write_h5md(tmp_path / "s.h5md", *structure), write_extxyz(tmp_path / "s.xyz", *structure)]
    out = tmp_path / "p.h5"
    res = run_cli("predict", str(trained_run), *map(str, files), "--out", str(out), "--csv")
    assert res.returncode == 0, res.stderr
    particles_csv, pairs_csv = tmp_path / "p_particles.csv", tmp_path / "p_pairs.csv"
    assert res.stdout.split() == ["predict:", str(out), "predict:", str(particles_csv), "predict:", str(pairs_csv)]
    assert "predict: 100%" in res.stderr  # the progress bar
    assert res.stderr.count(NO_TEMPERATURE) == 1  # four structures without a temperature, said once
    positions, species, box = structure
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "hpc_botan-predictions-1" and f.attrs["n_structures"] == 5
        assert sorted(f["structures"]) == [f"{k:05d}" for k in range(5)]
        first = f["structures/00000"]
        assert first.attrs["source"] == str(files[0]) and first.attrs["temperature"] == pytest.approx(0.44)
        assert np.isnan(first.attrs["file_temperature"])
        assert list(first.attrs["warnings"]) == [NO_TEMPERATURE]
        np.testing.assert_array_equal(first["positions"][()], positions)
        np.testing.assert_array_equal(first["species"][()], species)
        n, n_edges = len(species), first["edge_index"].shape[1]
        assert set(first["predictions"]) == {"botan", "ntgnn"}
        botan = first["predictions/botan/T0.440/t00"]
        assert botan.attrs["time"] == pytest.approx(4120.0)  # the files are tc07 at T = 0.44: t = τα
        assert botan["S_replicas"].shape == (N_REPLICAS, n) and botan["E_replicas"].shape == (N_REPLICAS, n_edges)
        s_rep, e_rep = botan["S_replicas"][()], botan["E_replicas"][()]
        np.testing.assert_allclose(botan["S_mean"][()], s_rep.mean(0), rtol=1e-6)
        np.testing.assert_allclose(botan["S_std"][()], s_rep.std(0), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(botan["E_mean"][()], e_rep.mean(0), rtol=1e-6)
        assert float(botan["S_std"][()].max()) > 0   # two differently initialised replicas disagree
        ntgnn = first["predictions/ntgnn/T0.440/t00"]
        assert "E_mean" not in ntgnn and ntgnn["S_mean"].shape == (n,)
        s_reference = botan["S_mean"][()]
        for k in range(1, 5):   # dump frames 0 and 1, H5MD, extended XYZ: the same structure
            g = f[f"structures/{k:05d}"]
            np.testing.assert_array_equal(g["edge_index"][()], first["edge_index"][()])
            np.testing.assert_allclose(g["positions"][()], positions, atol=1e-9)
            np.testing.assert_allclose(g["predictions/botan/T0.440/t00/S_mean"][()], s_reference, atol=1e-5)
        assert f["structures/00003"].attrs["file_temperature"] == pytest.approx(0.44)
        assert f["structures/00002"].attrs["frame"] == 1
    with open(particles_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 * 2 * n   # structures × models × particles
    assert float(rows[7]["S_mean"]) == pytest.approx(float(s_reference[7]), rel=1e-5)
    with open(pairs_csv) as fh:
        pairs = list(csv.DictReader(fh))
    assert len(pairs) == 5 * n_edges and {r["model"] for r in pairs} == {"botan"}


NO_TEMPERATURE = ("structures that record no temperature are predicted with the models of T = 0.44 "
                  "(choose with --temperature)")


def test_overlapping_particles_are_predicted_with_a_warning(trained_run, structure, tmp_path, caplog):
    positions, species, box = structure
    moved = positions.copy()
    moved[1] = moved[0]  # two particles at the same position
    path = write_data(tmp_path / "overlap.data", moved, species, box)
    out = tmp_path / "p.h5"
    assert main(["predict", str(trained_run), str(path), "--out", str(out), "--no-progress"]) == 0
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("1 pair(s) of particles closer than 0.1" in line and "overlapping" in line for line in logged), logged
    with h5py.File(out, "r") as f:
        assert any("overlapping" in w for w in f["structures/00000"].attrs["warnings"])


def test_out_of_range_structure_is_predicted_with_warnings(trained_run, structure, tmp_path, caplog):
    positions, species, box = structure
    path = write_data(tmp_path / "big.data", positions * 1.05, species, box * 1.05)   # density −14 %
    out = tmp_path / "p.h5"
    assert main(["predict", str(trained_run), str(path), "--out", str(out), "--temperature", "0.5",
                 "--model", "botan", "--no-progress"]) == 0
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(logged) == 2 and all("\n" not in line for line in logged)
    assert "differs from the trained 1.2 by more than 2%" in logged[0] and "temperature 0.5 is not a trained" in logged[1]
    with h5py.File(out, "r") as f:
        g = f["structures/00000"]
        warnings = list(g.attrs["warnings"])
        assert len(warnings) == 2 and g.attrs["temperature"] == pytest.approx(0.44)
        assert set(g["predictions"]) == {"botan"}


def _fails_with_one_line(args, capsys, expected: str):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err


@pytest.fixture
def precious_out(tmp_path):
    out = tmp_path / "keep.h5"
    out.write_bytes(b"results of yesterday")
    yield out
    assert out.read_bytes() == b"results of yesterday"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep.h5")] == []   # no temporary left


def test_bad_structure_files(trained_run, structure, tmp_path, capsys, precious_out):
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("this is not a structure\n")
    _fails_with_one_line(["predict", str(trained_run), str(garbage), "--out", str(precious_out), "--overwrite"], capsys,
                         f"{garbage} line 1: expected the number of atoms")
    tilted = write_data(tmp_path / "tilted.data", *structure, tilt=True)
    _fails_with_one_line(["predict", str(trained_run), str(tilted), "--out", str(precious_out), "--overwrite"], capsys,
                         "line 9: expected an orthogonal box")
    unknown = tmp_path / "s.pdb"
    unknown.write_text("ATOM\n")
    _fails_with_one_line(["predict", str(trained_run), str(unknown), "--out", str(precious_out), "--overwrite"], capsys,
                         "unknown extension '.pdb'")


def test_model_dir_without_finished_replicas(trained_run, structure, tmp_path, capsys, precious_out):
    model_dir = tmp_path / "untrained"
    model_dir.mkdir()
    shutil.copy(trained_run / "config.yaml", model_dir / "config.yaml")   # no targets, no train/
    path = write_data(tmp_path / "s.data", *structure)
    _fails_with_one_line(["predict", str(model_dir), str(path), "--out", str(precious_out), "--overwrite"], capsys,
                         f"{model_dir / 'train'}: no finished botan or ntgnn replica")


def test_model_dir_without_targets_uses_config_time_points(trained_run, structure, tmp_path, capsys):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    shutil.copy(trained_run / "config.yaml", model_dir / "config.yaml")
    shutil.copytree(trained_run / "train", model_dir / "train")
    path = write_data(tmp_path / "s.data", *structure)
    out = tmp_path / "p.h5"
    assert main(["-q", "predict", str(model_dir), str(path), "--out", str(out), "--no-progress"]) == 0
    with h5py.File(out, "r") as f:
        t = f["structures/00000/predictions/botan/T0.440/t00"]
        assert t.attrs["time"] == pytest.approx(4120.0) and t["S_mean"].shape == (256,)


def test_missing_or_broken_checkpoint(trained_run, structure, tmp_path, capsys, precious_out):
    model_dir = tmp_path / "models"
    shutil.copytree(trained_run, model_dir)
    path = write_data(tmp_path / "s.data", *structure)
    replica = model_dir / "train/botan/finetune/T0.440/t00/replica-01"
    (replica / "best.pt").write_bytes(b"truncated")
    _fails_with_one_line(["predict", str(model_dir), str(path), "--out", str(precious_out), "--overwrite", "--no-progress"],
                         capsys, f"{replica / 'best.pt'}: not a readable hpc_botan checkpoint")
    for task in ("botan/finetune/T0.440/t00", "ntgnn/T0.440/t00"):
        for r in range(N_REPLICAS):
            (model_dir / "train" / task / f"replica-{r:02d}" / "final.pt").unlink()
    _fails_with_one_line(["predict", str(model_dir), str(path), "--out", str(precious_out), "--overwrite", "--model", "ntgnn"],
                         capsys, f"{model_dir / 'train'}: no finished ntgnn replica")


def test_cli_process_exit_code_and_help(trained_run, tmp_path):
    res = run_cli("predict", "--help")
    assert res.returncode == 0 and "--temperature" in res.stdout and "example" in res.stdout
    res = run_cli("predict", str(trained_run), str(tmp_path / "missing.data"), "--out", str(tmp_path / "p.h5"))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "missing.data: no such file" in res.stderr and "Traceback" not in res.stderr


def test_an_output_that_would_destroy_data_is_refused(trained_run, structure, tmp_path, capsys):
    """Checked before anything is computed; nothing is touched."""
    path = write_data(tmp_path / "s.data", *structure)
    original = path.read_bytes()
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(path)], capsys,
                         "is one of the inputs")
    assert path.read_bytes() == original
    # a trajectory, a shard or a checkpoint of a run directory (here the model's own)
    inside = trained_run / "targets" / "index.h5"
    before = inside.read_bytes()
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(inside), "--overwrite"], capsys,
                         "inside the 'targets' folder of the run directory")
    assert inside.read_bytes() == before
    new_in_stage = trained_run / "train" / "p.h5"
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(new_in_stage)], capsys,
                         "inside the 'train' folder")
    assert not new_in_stage.exists()
    existing = tmp_path / "old.h5"
    existing.write_bytes(b"old")
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(existing)], capsys,
                         "exists; not overwritten (use --overwrite")
    assert existing.read_bytes() == b"old"
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(tmp_path)], capsys, "is a directory")
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(tmp_path / "nowhere" / "p.h5")],
                         capsys, "does not exist")
    # the CSV files beside FILE count too
    (tmp_path / "q_particles.csv").write_text("keep")
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(tmp_path / "q.h5"), "--csv"], capsys,
                         "q_particles.csv: exists")
    # --overwrite replaces an ordinary file
    assert main(["-q", "predict", str(trained_run), str(path), "--out", str(existing), "--overwrite",
                 "--no-progress"]) == 0
    assert existing.read_bytes() != b"old"


@pytest.mark.parametrize("budget", ["0", "-2", "nan"])
def test_a_memory_budget_that_is_no_size_is_one_line(trained_run, structure, tmp_path, capsys, precious_out, budget):
    path = write_data(tmp_path / "s.data", *structure)
    _fails_with_one_line(["predict", str(trained_run), str(path), "--out", str(precious_out), "--overwrite",
                          "--memory-gb", budget], capsys, f"--memory-gb {float(budget)}: expected a positive number")
