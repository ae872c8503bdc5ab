"""A model file from someone else: it cannot run code, and a malformed one is refused in one line."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import hpc_botan
from hpc_botan.errors import UserError
from tests.conftest import run_cli
from tests.hostile.conftest import one_line_error


class _CreatesFile:
    """Unpickling this creates the file it names: proof that code ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _torch_save_bytes(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _rewrite(src: Path, dst: Path, change) -> Path:
    """Copy the archive ``src`` to ``dst``, passing each (member, bytes) through ``change`` (None drops it)."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            data = change(name, a.read(name))
            if data is not None:
                b.writestr(name, data)
    return dst


def _pickling_archive(name: str, data: bytes, marker: Path, payloads: dict) -> bytes | None:
    """Make the first weight of the archive's first program ask for ``use_pickle``, its bytes a payload."""
    if name.endswith("data/weights/model_weights_config.json"):
        config = json.loads(data)
        first = sorted(config["config"])[0]
        config["config"][first]["use_pickle"] = True
        payloads[name.rsplit("/", 1)[0] + "/" + config["config"][first]["path_name"]] = \
            _torch_save_bytes(_CreatesFile(marker))
        return json.dumps(config).encode()
    return data


@pytest.fixture
def evil_model(hostile_model, tmp_path):
    """(archive, marker): the exported model with a weight that unpickles a payload."""
    marker, payloads = tmp_path / "code-ran", {}
    with zipfile.ZipFile(hostile_model) as a:
        entries = {name: _pickling_archive(name, a.read(name), marker, payloads) for name in a.namelist()}
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(evil, "w") as b:
        for name, data in {**entries, **payloads}.items():
            b.writestr(name, data)
    return evil, marker


def test_the_crafted_program_runs_code_in_torch_export_load(evil_model, tmp_path):
    """The hazard is real: plain torch.export.load of the crafted file runs the payload."""
    evil, marker = evil_model
    code = f"import torch\ntry:\n    torch.export.load({str(evil)!r})\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600)
    assert marker.exists()


def test_predict_refuses_a_model_that_asks_for_unpickling(evil_model, structure_file, tmp_path):
    evil, marker = evil_model
    out = tmp_path / "p.h5"
    err = one_line_error(run_cli("-q", "predict", str(evil), str(structure_file), "--out", str(out)))
    assert "refused: loading it could run code" in err and str(evil) in err
    with pytest.raises(UserError, match="could run code"):
        hpc_botan.load_predictor(evil)
    assert not marker.exists() and not out.exists()


def _weights_config(edit):
    """A ``change`` for :func:`_rewrite` that edits the first weight's entry of the first program."""
    def change(name, data):
        if name.endswith("data/weights/model_weights_config.json"):
            config = json.loads(data)
            edit(config["config"][sorted(config["config"])[0]])
            return json.dumps(config).encode()
        return data
    return change


BAD_WEIGHTS = {
    "not-float32": (lambda e: e["tensor_meta"].update(dtype=6), "expected float32"),
    "more-sizes-than-bytes": (lambda e: e["tensor_meta"].update(sizes=[{"as_int": 10 ** 6}], strides=[{"as_int": 1}]),
                              "bytes, expected 4000000"),
    "a-path-outside": (lambda e: e.update(path_name="../../../etc/passwd"), "is not stored as raw bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
def test_weights_not_as_written_are_one_line(case, hostile_model, structure_arrays, tmp_path):
    edit, message = BAD_WEIGHTS[case]
    bad = _rewrite(hostile_model, tmp_path / "bad.pt2", _weights_config(edit))
    with pytest.raises(UserError) as info:
        hpc_botan.load_predictor(bad).predict(*structure_arrays)
    assert message in str(info.value) and str(bad) in str(info.value) and "\n" not in str(info.value)


def _with_metadata(src: Path, dst: Path, edit) -> Path:
    def change(name, data):
        if name.endswith("/extra/metadata.json"):
            meta = json.loads(data)
            edit(meta)
            return json.dumps(meta).encode()
        return data
    return _rewrite(src, dst, change)


def _set(key, value):
    def edit(meta):
        meta[key] = value
    return edit


def _task(key, value):
    def edit(meta):
        meta["tasks"][0][key] = value
    return edit


def _architecture(key, value):
    def edit(meta):
        meta["networks"][0]["architecture"][key] = value
    return edit


MALFORMED = {
    "programs-not-a-list": (_set("programs", 5), "metadata.programs: expected a non-empty list, got 5"),
    "cutoff-a-string": (_set("graph_cutoff", "abc"), "metadata.graph_cutoff: expected a positive number"),
    "no-tasks": (lambda m: m.pop("tasks"), "metadata has no 'tasks'"),
    "temperature-a-word": (_task("temperature", "hot"), "tasks[0].temperature: expected a positive temperature"),
    "network-index-out-of-range": (_task("networks", [7]), "tasks[0].networks: expected indices into networks"),
    "output-beyond-the-columns": (_task("output", 5), "tasks[0].output: expected a column of network"),
    "huge-architecture": (_architecture("width", 10 ** 9), "architecture.width: expected an integer in [1, 4096]"),
    # descriptor heads: a crafted file must not make the loader allocate a huge head or compute odd descriptors
    "huge-descriptor-heads": (_architecture("descriptor_shells", [1.0] * 10_000),
                              "architecture.descriptor_shells: expected a list of at most 64 numbers"),
    "descriptor-shell-a-word": (_architecture("descriptor_shells", ["far"]),
                                "architecture.descriptor_shells: expected a list of at most 64 numbers"),
    "descriptor-width-negative": (_architecture("descriptor_shell_width", -1),
                                  "architecture.descriptor_shell_width: expected a number in (0, 5]"),
    "shells-without-lengths": (_architecture("descriptor_shells", [1.0]),
                               "architecture.descriptor_lengths: expected lengths exactly when there are shells"),
    "force-features-of-an-unknown-potential": (_architecture("force_features", "mine"),
                                               "architecture.force_features: expected one of shifted_force"),
    "unknown-family": (_task("family", "mace"), "tasks[0].family: expected botan or ntgnn"),
    "unknown-program": (lambda m: m["networks"][0].update(program="elsewhere"),
                        "networks[0].program: expected one of the programs"),
    "bad-prefix": (lambda m: m["networks"][0].update(prefix="../"), "networks[0].prefix: expected networks.<i>."),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_metadata_is_one_line(case, hostile_model, tmp_path):
    edit, message = MALFORMED[case]
    bad = _with_metadata(hostile_model, tmp_path / "bad.pt2", edit)
    with pytest.raises(UserError) as info:
        hpc_botan.load_predictor(bad)
    text = str(info.value)
    assert message in text and str(bad) in text and "\n" not in text


def test_a_garbage_weights_config_is_one_line(hostile_model, structure_file, tmp_path):
    bad = _rewrite(hostile_model, tmp_path / "bad.pt2",
                   lambda name, data: b"not json" if name.endswith("_weights_config.json") else data)
    err = one_line_error(run_cli("-q", "predict", str(bad), str(structure_file), "--out", str(tmp_path / "p.h5")))
    assert "not an hpc_botan exported model" in err


def test_a_zip_that_is_not_a_pt2_archive_is_one_line(tmp_path):
    bad = tmp_path / "flat.pt2"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"format": "hpc_botan-exported-model-2"}))
    with pytest.raises(UserError, match="not a PT2 archive"):
        hpc_botan.load_predictor(bad)


def test_weights_that_do_not_fit_the_architecture_are_one_line(hostile_model, structure_arrays, tmp_path):
    bad = _with_metadata(hostile_model, tmp_path / "bad.pt2", _architecture("width", 8))
    with pytest.raises(UserError, match="do not fit its architecture"):
        hpc_botan.load_predictor(bad).predict(*structure_arrays)


def test_the_programs_hpc_botan_writes_ask_for_no_pickling(hostile_model):
    """What torch.export.save wrote passes the check that refuses the crafted file."""
    from hpc_botan.io.exported_model import read_exported_model

    meta = read_exported_model(hostile_model).metadata
    assert {p["family"] for p in meta["programs"]} == {"botan", "ntgnn"}
