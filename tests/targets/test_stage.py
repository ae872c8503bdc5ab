import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_botan.io import h5md
from hpc_botan.io.rundir import load_run_config
from hpc_botan.io.shards import read_configuration
from hpc_botan.physics.configuration_targets import compute_targets
from hpc_botan.targets.stage import configuration_metas, rank_block
from tests.conftest import TINY, run_cli, simulated_run

pytestmark = pytest.mark.lammps
TINY3 = [o for o in TINY if not o.startswith("simulation.n_configurations")] + ["simulation.n_configurations=3"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, need_lammps):
    return simulated_run(tmp_path_factory.mktemp("sim") / "run", TINY3, 3)


@pytest.fixture
def run_dir(simulated, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(simulated, copy)
    return copy


def test_rank_blocks_cover_everything_once():
    blocks = [rank_block(list(range(10)), r, 4) for r in range(4)]
    assert blocks == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]


def test_targets_then_verify_then_rerun(run_dir):
    # a shard temporary of a killed earlier run: removed by the next writer of that shard
    (run_dir / "targets").mkdir()
    (run_dir / "targets" / ".shard-00000.h5.killed.tmp").write_bytes(b"half a shard")
    res = run_cli("targets", str(run_dir))
    assert res.returncode == 0, res.stderr
    assert not (run_dir / "targets" / ".shard-00000.h5.killed.tmp").exists()
    index = run_dir / "targets" / "index.h5"
    assert res.stdout.strip() == f"targets: {index}"
    assert "targets: 100%" in res.stderr and "3/3" in res.stderr      # rank 0's progress bar
    ok = run_cli("verify", str(run_dir))
    assert ok.returncode == 0 and "3 configurations OK" in ok.stdout, ok.stderr

    cfg = load_run_config(run_dir)
    meta = configuration_metas(cfg, run_dir)[2]
    traj = h5md.read_configuration(meta.source)
    direct = compute_targets(traj.positions[0, 0], traj.species, traj.box, traj.positions[:, 1:], traj.times[1:])
    stored = read_configuration(index, 2)
    np.testing.assert_array_equal(stored["propensity"], direct.propensity)
    np.testing.assert_array_equal(stored["edge_index"], direct.edge_index)
    assert stored["attrs"]["split"] == "test" and stored["attrs"]["temperature"] == 0.64
    assert stored["attrs"]["source"] == "simulate/T0.640/conf-00002.h5"  # relative to the run directory
    with h5py.File(index) as f:
        assert f["T0.640/propensity"].shape == (3, 3, 200)
        np.testing.assert_array_equal(f["T0.640/propensity"][2], direct.propensity)

    shard = run_dir / "targets" / "shard-00000.h5"
    mtime = os.stat(shard).st_mtime_ns
    again = run_cli("targets", str(run_dir), "--no-progress")
    assert again.returncode == 0 and os.stat(shard).st_mtime_ns == mtime and "targets: 100%" not in again.stderr


@pytest.mark.mpi
def test_two_mpi_ranks_give_the_same_index_as_one(run_dir, tmp_path, need_mpirun):
    import subprocess
    import sys

    from hpc_botan.plan.world import resolve_launcher

    second = tmp_path / "second"
    shutil.copytree(run_dir, second)
    assert run_cli("targets", str(run_dir)).returncode == 0
    res = subprocess.run([*resolve_launcher("mpirun"), "-n", "2", sys.executable, "-m", "hpc_botan", "targets",
                          str(second)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (second / "targets").glob("shard-*.h5")) == ["shard-00000.h5", "shard-00001.h5"]
    assert run_cli("verify", str(second)).returncode == 0
    one, two = run_dir / "targets" / "index.h5", second / "targets" / "index.h5"
    with h5py.File(one) as a, h5py.File(two) as b:
        np.testing.assert_array_equal(a["catalog"]["id"], b["catalog"]["id"])
        for name in ("propensity", "d2min", "local_displacement"):
            np.testing.assert_array_equal(a[f"T0.640/{name}"][()], b[f"T0.640/{name}"][()])
    for k in range(3):
        x, y = read_configuration(one, k), read_configuration(two, k)
        for name in ("edge_index", "pair_change", "edge_mask", "pair_change_reliability"):
            np.testing.assert_array_equal(x[name], y[name])


def test_verify_finds_a_corrupted_value(run_dir):
    assert run_cli("targets", str(run_dir)).returncode == 0
    with h5py.File(run_dir / "targets" / "shard-00000.h5", "r+") as f:
        f["conf_000001/pair_change"][0, 0] += 1.0
    res = run_cli("verify", str(run_dir))
    assert res.returncode == 2
    assert "shard-00000.h5:conf_000001/pair_change: checksum mismatch" in res.stderr


def test_a_shard_written_before_units_and_relative_sources_is_still_valid(run_dir):
    assert run_cli("targets", str(run_dir)).returncode == 0
    shard = run_dir / "targets" / "shard-00000.h5"
    with h5py.File(shard, "r+") as f:  # what earlier versions wrote: absolute sources, no units or descriptions
        for k in range(3):
            g = f[f"conf_{k:06d}"]
            g.attrs["source"] = f"/another/machine/run/simulate/T0.640/conf-{k:05d}.h5"
            for ds in g.values():
                del ds.attrs["units"], ds.attrs["description"]
    mtime = os.stat(shard).st_mtime_ns
    again = run_cli("targets", str(run_dir))
    assert again.returncode == 0, again.stderr
    assert os.stat(shard).st_mtime_ns == mtime  # complete and valid: kept as it is
    ok = run_cli("verify", str(run_dir))
    assert ok.returncode == 0, ok.stderr


def test_verify_finds_a_truncated_shard(run_dir):
    assert run_cli("targets", str(run_dir)).returncode == 0
    shard = run_dir / "targets" / "shard-00000.h5"
    shard.write_bytes(shard.read_bytes()[:5000])
    res = run_cli("verify", str(run_dir))
    assert res.returncode == 2 and "shard-00000.h5" in res.stderr


def _rewrite_positions(path: Path, change) -> None:
    """Rewrite a trajectory file (with valid checksums) after ``change(positions)`` edited it in place."""
    traj = h5md.read_configuration(path)
    change(traj.positions)
    h5md.write_configuration(path, traj)


@pytest.mark.parametrize("value, message", [
    (np.nan, "NaN or inf positions; delete the file and re-run 'hpc-botan simulate'"),
    (1.0e6, "more than physically possible"),
])
def test_broken_positions_are_refused_and_nothing_is_indexed(run_dir, value, message):
    path = run_dir / "simulate" / "T0.640" / "conf-00001.h5"
    _rewrite_positions(path, lambda p: p.__setitem__((2, 2, 7, 0), value))
    res = run_cli("targets", str(run_dir))
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert f"{path} (configuration 1): " in line and message in line
    assert not (run_dir / "targets" / "index.h5").exists()
    assert not list((run_dir / "targets").glob("shard-*.h5"))


def test_a_trajectory_changed_after_writing_is_refused(run_dir):
    path = run_dir / "simulate" / "T0.640" / "conf-00001.h5"
    with h5py.File(path, "r+") as f:
        f["particles/run_002/position/value"][2, 7, 0] += 0.5  # finite, plausible, but not what was simulated
    res = run_cli("targets", str(run_dir))
    assert res.returncode == 2
    assert "does not match the checksum recorded when it was written" in res.stderr.strip().splitlines()[-1]
    # analyze names the file it leaves out instead of skipping it silently
    fs = run_cli("analyze", "fs", str(run_dir))
    assert fs.returncode == 0 and "left out, unreadable" in fs.stderr and "conf-00001.h5" in fs.stderr


def test_plausible_displacement_bound():
    from hpc_botan.targets.stage import implausible_displacement

    box = np.full(3, 10.0)
    times = np.array([0.0, 0.1, 100.0])
    positions = np.zeros((1, 3, 2, 3))
    positions[0, 2, 1, 0] = 50.0  # 50 σ in 100 τ at T = 0.5: slower than 10 √(3T) = 12 σ/τ, allowed
    assert implausible_displacement(positions, times, 0.5, box) is None
    positions[0, 1, 0, 2] = 9.0  # 9 σ in 0.1 τ, below the box edge: allowed (no garbage test can be tighter)
    assert implausible_displacement(positions, times, 0.5, box) is None
    positions[0, 1, 0, 2] = 11.0
    frame, distance, bound = implausible_displacement(positions, times, 0.5, box)
    assert (frame, distance, bound) == (1, 11.0, 10.0)


def test_missing_trajectory_and_too_many_ranks(run_dir):
    (run_dir / "simulate" / "T0.640" / "conf-00002.h5").unlink()
    res = run_cli("targets", str(run_dir))
    assert res.returncode == 2 and "conf-00002.h5 (configuration 2): missing or incomplete" in res.stderr
    from hpc_botan.errors import UserError
    from hpc_botan.targets.stage import run_targets

    class FourRanks:
        def Get_rank(self):
            return 0

        def Get_size(self):
            return 4

    with pytest.raises(UserError, match="4 MPI ranks for 3 configurations"):
        run_targets(run_dir, FourRanks())


@pytest.mark.slurm
@pytest.mark.mpi
def test_targets_as_a_slurm_mpi_job(run_dir, tmp_path, need_slurm, need_mpirun):
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["sbatch", "--wait", "--ntasks=2", "--time=10", str(REPO / "slurm" / "targets_mpi.sbatch"),
                          str(run_dir)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    log = "\n".join(p.read_text() for p in tmp_path.glob("hpc-botan-targets-*.out"))
    assert res.returncode == 0, res.stderr + log
    assert sorted(p.name for p in (run_dir / "targets").glob("shard-*.h5")) == ["shard-00000.h5", "shard-00001.h5"]
    assert "3 configurations OK" in log


def _mpirun(n: int, *args: str):
    import subprocess
    import sys

    from hpc_botan.plan.world import resolve_launcher

    return subprocess.run([*resolve_launcher("mpirun"), "-n", str(n), sys.executable, *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.mpi
def test_a_failing_rank_ends_every_rank_with_its_message(run_dir, need_mpirun):
    res = _mpirun(2, str(Path(__file__).with_name("failing_rank.py")), str(run_dir))
    assert res.returncode != 0
    assert "hpc-botan: error: rank 1: RuntimeError: injected failure on rank 1" in res.stderr, res.stderr[-2000:]
    assert not (run_dir / "targets" / "index.h5").exists()
    # rank 0's own shard is complete and is kept for the next run
    assert (run_dir / "targets" / "shard-00000.h5").is_file()


@pytest.mark.mpi
def test_another_number_of_ranks_reuses_every_configuration(run_dir, need_mpirun, monkeypatch, caplog):
    from mpi4py import MPI

    import hpc_botan.targets.stage as stage

    res = _mpirun(2, "-m", "hpc_botan", "targets", str(run_dir))
    assert res.returncode == 0, res.stderr
    index = run_dir / "targets" / "index.h5"
    before = {k: read_configuration(index, k) for k in range(3)}

    def never(*args, **kwargs):
        raise AssertionError("a finished configuration was recomputed")

    monkeypatch.setattr(stage, "compute_targets", never)
    with caplog.at_level("INFO", logger="hpc_botan"):
        stage.run_targets(run_dir, MPI.COMM_SELF)
    assert "3 configuration(s) copied from the shards of an earlier run, 0 computed, 1 old shard" in caplog.text
    assert sorted(p.name for p in (run_dir / "targets").iterdir() if not p.name.startswith(".shard")) == [
        "index.h5", "shard-00000.h5"]
    assert run_cli("verify", str(run_dir)).returncode == 0
    for k in range(3):
        after = read_configuration(index, k)
        for name in ("propensity", "pair_change", "edge_index"):
            np.testing.assert_array_equal(after[name], before[k][name])
