"""``hpc-botan export``: the exported file predicts what the checkpoints predict, without the training code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import hpc_botan
from hpc_botan.cli import main
from hpc_botan.errors import UserError
from hpc_botan.io.exported_model import read_exported_model
from hpc_botan.io.shards import read_configuration
from hpc_botan.io.structures import Structure
from hpc_botan.predict.predict import build_graph, structure_descriptors
from tests.conftest import run_cli
from tests.predict.test_command import N_REPLICAS, structure, trained_run, write_data  # noqa: F401  (fixtures)
from tests.train.conftest import TINY_TRAIN, import_synthetic


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):  # noqa: F811 (fixture)
    out = tmp_path_factory.mktemp("export") / "model.pt2"
    assert main(["-q", "export", str(trained_run), "--out", str(out)]) == 0
    return out


def test_metadata_describes_the_networks(exported, trained_run):  # noqa: F811 (fixture)
    file = read_exported_model(exported)
    meta = file.metadata
    assert meta["format"] == "hpc_botan-exported-model-3" and meta["graph_cutoff"] == 2.0
    assert meta["density"] == pytest.approx(1.2) and meta["temperatures"] == [pytest.approx(0.44)]
    assert sorted(p["family"] for p in meta["programs"]) == ["botan", "ntgnn"]
    (task,) = [t for t in meta["tasks"] if t["family"] == "botan"]
    assert task["time"] == pytest.approx(4120.0) and len(task["networks"]) == N_REPLICAS
    assert task["replica_files"] == [f"train/botan/finetune/T0.440/t00/replica-{r:02d}/best.pt"
                                     for r in range(N_REPLICAS)]
    assert [meta["networks"][k]["source"] for k in task["networks"]] == task["replica_files"]
    assert meta["time_points"]["0.44"] == [pytest.approx(4120.0)]
    assert meta["source_run"] == trained_run.name      # a name, not a path of the machine it came from
    weights = file.network_weights(task["networks"][0])
    assert weights["node_scale"][0] > 0 and weights["node_scale"].dtype == np.float32
    botan = next(p for p in meta["programs"] if p["family"] == "botan")
    assert botan["name"] == "model" and botan["n_columns"] == N_REPLICAS     # each replica once, one column
    assert botan["rows"] == [{"task": task["name"], "time_index": 0, "columns": list(range(N_REPLICAS))}]


def test_exported_predictions_match_the_checkpoints_in_a_process_without_training_code(
        exported, trained_run, structure, tmp_path):  # noqa: F811 (fixtures)
    positions, species, box = structure
    np.savez(tmp_path / "s.npz", positions=positions, species=species, box=box)
    # a bigger structure than the traced example, and another size: the numbers of nodes and edges are dynamic
    code = f"""
import json, sys
import numpy as np
import hpc_botan
s = np.load({str(tmp_path / 's.npz')!r})
out = {{}}
for model in ("botan", "ntgnn"):
    p = hpc_botan.load_predictor({str(exported)!r}, model=model)
    for n in (len(s["species"]), 100):
        r = p.predict(s["positions"][:n], s["species"][:n], s["box"])
        (t, at), = r.items()
        out[f"{{model}}{{n}}"] = [t, at.S.tolist(), None if at.E is None else at.E.tolist(), at.replicas,
                                  at.S_std.tolist()]
loaded = sorted(m for m in sys.modules if m.startswith("hpc_botan"))
out["training"] = [m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in ("train", "evaluate", "data", "baselines", "pipeline")]
out["training"] += sorted(m for m in sys.modules if m.split(".")[0] == "torch_geometric")  # seconds to import
print(json.dumps(out))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got.pop("training") == []
    for model in ("botan", "ntgnn"):
        reference = hpc_botan.load_predictor(trained_run, model=model)
        for n in (len(species), 100):
            (t, at), = reference.predict(positions[:n], species[:n], box).items()
            time, s, e, replicas, s_std = got[f"{model}{n}"]
            assert time == pytest.approx(t) and replicas == at.replicas == N_REPLICAS
            np.testing.assert_allclose(s, at.S, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(s_std, at.S_std, rtol=1e-5, atol=1e-6)
            if model == "botan":
                np.testing.assert_allclose(e, at.E, rtol=1e-6, atol=1e-6)
            else:
                assert e is None


def test_predict_command_reads_the_exported_file(exported, trained_run, structure, tmp_path):  # noqa: F811
    data = write_data(tmp_path / "s.data", *structure)
    from_run, from_file = tmp_path / "run.h5", tmp_path / "file.h5"
    assert main(["-q", "predict", str(trained_run), str(data), "--out", str(from_run), "--no-progress"]) == 0
    assert main(["-q", "predict", str(exported), str(data), "--out", str(from_file), "--no-progress"]) == 0
    with h5py.File(from_run, "r") as a, h5py.File(from_file, "r") as b:
        for name in ("botan/T0.440/t00/S_mean", "botan/T0.440/t00/E_mean", "ntgnn/T0.440/t00/S_mean"):
            path = f"structures/00000/predictions/{name}"
            np.testing.assert_allclose(b[path][()], a[path][()], rtol=1e-6, atol=1e-6)
        g = "structures/00000/predictions/botan/T0.440/t00"
        assert list(b[g].attrs["replica_files"]) == list(a[g].attrs["replica_files"])
        assert b.attrs["model_dir"] == str(exported.resolve())


def test_bad_input(exported, trained_run, tmp_path, capsys):  # noqa: F811 (fixture)
    res = run_cli("export", str(trained_run), "--out", str(exported))
    assert res.returncode != 0 and "exists; not overwritten" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("export", str(trained_run), "--out", str(trained_run / "train" / "m.pt2"))
    assert res.returncode != 0 and "inside the 'train' folder" in res.stderr
    not_a_model = tmp_path / "x.pt2"
    not_a_model.write_text("hello")
    with pytest.raises(UserError, match="not an hpc_botan exported model"):
        hpc_botan.load_predictor(not_a_model)
    other = tmp_path / "other.pt2"
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(other, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item.endswith("/extra/metadata.json"):
                data = json.dumps({**json.loads(data), "format": "something-else"}).encode()
            dst.writestr(item, data)
    with pytest.raises(UserError, match="format 'something-else'"):
        hpc_botan.load_predictor(other)
    only_botan = tmp_path / "botan.pt2"
    assert main(["-q", "export", str(trained_run), "--out", str(only_botan), "--model", "botan"]) == 0
    with pytest.raises(UserError, match="no finished ntgnn replica"):
        hpc_botan.load_predictor(only_botan, model="ntgnn")


@pytest.mark.parametrize("descriptors", ["none", "heads", "forces"])
@pytest.mark.parametrize("mode", ["per_time", "multi_time"])
def test_exported_model_predicts_every_time_point_as_the_run(mode, descriptors, tmp_path):
    """Each time point of the file is its own: a multi-time network's columns share a task name.  With
    descriptor heads the programs take the particles' descriptors as a fourth input; with force features
    (forces: heads + model.force_features) the programs compute the forces themselves from the pair vectors."""
    run = import_synthetic(tmp_path, n_configurations=4, n_times=2)
    times = "train.time_indices=[0,1]" if mode == "per_time" else "train.time_indices=null"
    settings = [s for s in TINY_TRAIN if not s.startswith("train.time_indices")] + [
        times, f"train.mode={mode}", "train.n_replicas=2", "train.ntgnn.enabled=true", "train.ntgnn.epochs=2",
        "train.ntgnn.batch_graphs=1", f"model.descriptors={'none' if descriptors == 'none' else 'heads'}",
        f"model.force_features={descriptors == 'forces'}", "train.head_init=least_squares"]
    assert main(["-q", "train", str(run), "--no-progress", *[a for s in settings for a in ("--set", s)]]) == 0
    out = tmp_path / "model.pt2"
    assert main(["-q", "export", str(run), "--out", str(out)]) == 0
    c = read_configuration(run / "targets" / "index.h5", 0)
    whole = {}   # the run's predictions of the whole configuration, per family: plain torch is checked against them
    for model in ("botan", "ntgnn"):
        reference = hpc_botan.load_predictor(run, model=model)
        exported_predictor = hpc_botan.load_predictor(out, model=model)
        for n in (len(c["species"]), 100):       # two system sizes
            expected = reference.predict(c["positions0"][:n], c["species"][:n], c["box"])
            whole.setdefault(model, expected)
            got = exported_predictor.predict(c["positions0"][:n], c["species"][:n], c["box"])
            assert sorted(got) == sorted(expected) and len(expected) == 2
            first, last = (expected[t].S for t in sorted(expected))
            assert np.abs(first - last).max() > 1e-3      # the time points differ: the check can fail
            for t, at in expected.items():
                np.testing.assert_allclose(got[t].S, at.S, rtol=1e-6, atol=1e-6)
                assert got[t].replicas == at.replicas == 2
                if model == "botan":
                    np.testing.assert_allclose(got[t].E, at.E, rtol=1e-6, atol=1e-6)

    # plain torch, in a process without hpc_botan (one for both families: it loads every program):
    # every program through PyTorch's own loaders, each replica once with all its columns, the
    # metadata as an extra file
    liquid = Structure(c["positions0"], c["species"], c["box"], "<test>")
    graph = build_graph(liquid)
    exported_file = read_exported_model(out)
    settings = exported_file.descriptor_settings()
    assert (settings is not None) == (descriptors != "none")
    networks = exported_file.metadata["networks"]
    assert all(bool(n["architecture"].get("force_features")) == (descriptors == "forces") for n in networks)
    extra = {} if settings is None else {"descriptors": structure_descriptors(liquid, settings).astype(np.float32)}
    np.savez(tmp_path / "g.npz", x=c["species"].astype(np.float32)[:, None], edge_index=graph.edge_index,
             edge_attr=graph.edge_attr, **extra)
    plain = run_plain_torch(PLAIN_TORCH_PROGRAMS, out, tmp_path / "g.npz")
    assert plain["default_is_first"] and plain["modules"] == []
    assert sorted(p["family"] for p in plain["programs"]) == ["botan", "ntgnn"]
    for model in ("botan", "ntgnn"):
        expected = whole[model]
        assert all(np.array_equal(at.edge_index, graph.edge_index) for at in expected.values())
        program = next(p for p in plain["programs"] if p["family"] == model)
        n_replica_files = len({f for t in exported_file.metadata["tasks"] if t["family"] == model
                               for f in t["replica_files"]})
        assert program["n_networks"] == n_replica_files == (2 if mode == "multi_time" else 4)
        for row, t in zip(sorted(program["rows"], key=lambda r: r["time_index"]), sorted(expected)):
            np.testing.assert_allclose(row["S"], expected[t].S, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(row["E"], expected[t].E if model == "botan" else row["E"], rtol=1e-5, atol=1e-6)


#: what a user of plain torch writes: load every program, read the metadata, average each task's columns
PLAIN_TORCH_PROGRAMS = """
import json, sys
import numpy as np
import torch
from torch.export.pt2_archive._package import load_pt2
path, graph = sys.argv[1], np.load(sys.argv[2])
extra = {"metadata.json": ""}
default = torch.export.load(path, extra_files=extra)
meta = json.loads(extra["metadata.json"])
contents = load_pt2(path)
inputs = [torch.from_numpy(graph[k]) for k in ("x", "edge_index", "edge_attr", "descriptors") if k in graph.files]
out = {"programs": [], "default_is_first": meta["programs"][0]["name"] == "model"}
for entry in meta["programs"]:
    with torch.no_grad():
        node, edge = contents.exported_programs[entry["name"]].module()(*inputs)
    assert node.shape[1] == entry["n_columns"]
    rows = [{"time_index": r["time_index"], "S": node[:, r["columns"]].mean(1).tolist(),
             "E": edge[:, r["columns"]].mean(1).tolist()} for r in entry["rows"]]
    out["programs"].append({"family": entry["family"], "n_networks": len(entry["networks"]), "rows": rows})
with torch.no_grad():
    assert torch.equal(default.module()(*inputs)[0],
                       contents.exported_programs["model"].module()(*inputs)[0])
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("hpc_botan", "torch_geometric"))
print(json.dumps(out))
"""


def run_plain_torch(code: str, *args) -> dict:
    """Run ``code`` in a fresh Python outside the repository; the code reports which modules of
    hpc_botan and torch_geometric got imported (none should: it imports torch only)."""
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         cwd="/", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])
