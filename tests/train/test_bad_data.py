"""Training and evaluation on broken targets: one line naming the file, never a traceback."""
import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("command", [["train", "--no-progress", "--set", "train.pretrain.time_index=0"],
                                     ["evaluate", "--split", "validation"]])
def test_a_truncated_shard_is_one_line(synthetic_run, command):
    shard = synthetic_run / "targets" / "shard-00000.h5"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size // 2)
    res = run_cli(command[0], str(synthetic_run), *command[1:])
    assert res.returncode == 2, res.stderr[-2000:]
    err = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and err[-1].startswith("hpc-botan: error: ")
    assert "index.h5: cannot read" in err[-1] and "hpc-botan verify" in err[-1]
