"""A full disk and a read-only run directory: one line, nothing finished lost, the re-run completes."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.hostile.conftest import one_line_error


def _cli_with_file_size_limit(limit_bytes: int, *args: str) -> subprocess.CompletedProcess:
    """``hpc-botan ARGS`` with RLIMIT_FSIZE: a write past ``limit_bytes`` fails as on a full disk (EFBIG)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, "-m", "hpc_botan", "-q", *args], capture_output=True, text=True,
                          timeout=900, preexec_fn=limit)


#: What the one-line error of a full disk says (the write that failed, or the check before it).
FULL = ("file too large", "a write failed", "file-size limit", "no space left")


def _says_full(err: str) -> bool:
    return any(phrase in err for phrase in FULL)


def _no_temporaries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob(".*.tmp"))


@pytest.fixture
def run_copy(hostile_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(hostile_run, copy, symlinks=True)
    return copy


def test_targets_on_a_full_disk(run_copy):
    index = run_copy / "targets" / "index.h5"
    shutil.rmtree(run_copy / "targets")
    err = one_line_error(_cli_with_file_size_limit(64_000, "targets", str(run_copy)))
    assert _says_full(err)
    assert not index.exists() and _no_temporaries(run_copy) == []
    res = run_cli("-q", "targets", str(run_copy))
    assert res.returncode == 0 and index.exists(), res.stderr


def test_train_export_and_predict_on_a_full_disk(run_copy, structure_file, tmp_path):
    # train: a fresh replica's checkpoint does not fit
    shutil.rmtree(run_copy / "train")
    err = one_line_error(_cli_with_file_size_limit(16_000, "train", str(run_copy), "--no-progress"))
    assert _says_full(err)
    assert not list((run_copy / "train").rglob("final.pt"))
    assert run_cli("-q", "train", str(run_copy), "--no-progress").returncode == 0
    # export: the archive does not fit; an earlier one stays as it was
    model = tmp_path / "m.pt2"
    assert run_cli("-q", "export", str(run_copy), "--out", str(model)).returncode == 0
    before = model.read_bytes()
    err = one_line_error(_cli_with_file_size_limit(16_000, "export", str(run_copy), "--out", str(model),
                                                   "--overwrite"))
    assert _says_full(err) and model.read_bytes() == before
    # predict: the same
    out = tmp_path / "p.h5"
    predict = ["predict", str(model), str(structure_file), "--out", str(out), "--no-progress", "--temperature", "0.44"]
    assert run_cli("-q", *predict).returncode == 0
    kept = out.read_bytes()
    err = one_line_error(_cli_with_file_size_limit(4_000, *predict, "--overwrite"))
    assert _says_full(err) and out.read_bytes() == kept
    assert _no_temporaries(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# a run directory this user may read but not write


@pytest.fixture
def read_only_run(hostile_run):
    """(run directory, how to run hpc-botan as a user who cannot write it).

    As root (CI), the copy is run as 'nobody' through setpriv (root writes anywhere); as another
    user, the copy is made read-only.
    """
    base = Path(tempfile.mkdtemp(prefix="hpc_botan-ro-"))
    os.chmod(base, 0o755)
    run = base / "run"
    shutil.copytree(hostile_run, run, symlinks=True)
    home = base / "home"
    home.mkdir()
    os.chmod(home, 0o777)
    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home), "TMPDIR": str(home)}
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.fail("setpriv (util-linux) is needed to test a read-only run directory as root")
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    else:
        prefix = []
        for path in [run, *run.rglob("*")]:
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode & ~0o222)
    yield run, prefix, env
    for path in [run, *run.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, path.stat().st_mode | 0o200)
    shutil.rmtree(base, ignore_errors=True)


READ_ONLY_COMMANDS = {
    "evaluate": ["evaluate", "{run}"],
    "report": ["report", "{run}"],
    "train": ["train", "{run}", "--no-progress", "--set", "train.n_replicas=2"],
    "baselines": ["baselines", "{run}"],
    "plot": ["plot", "all", "{run}"],
    "analyze-fs": ["analyze", "fs", "{run}"],
    "run": ["run", "{run}/config.yaml", "--out", "{run}"],
}


@pytest.mark.parametrize("command", sorted(READ_ONLY_COMMANDS))
def test_a_read_only_run_directory_is_one_line(command, read_only_run):
    run, prefix, env = read_only_run
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    argv = [a.format(run=run) for a in READ_ONLY_COMMANDS[command]]
    res = subprocess.run([*prefix, sys.executable, "-m", "hpc_botan", "-q", *argv], capture_output=True, text=True,
                         timeout=900, env=env)
    err = one_line_error(res)
    assert "permission denied" in err or "not writable" in err or "read-only" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
