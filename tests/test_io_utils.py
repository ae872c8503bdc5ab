import multiprocessing

import pytest

from hpc_botan.errors import UserError
from hpc_botan.io_utils import atomic_path, exclusive_lock, write_text_atomic


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "f.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with atomic_path(target) as tmp:
        assert tmp.name.startswith(".f.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
    assert target.read_text() == "new"


def _try_lock(path, queue):
    try:
        with exclusive_lock(path, "work X"):
            queue.put("got it")
    except UserError as exc:
        queue.put(str(exc))


def test_a_held_lock_refuses_a_second_process(tmp_path):
    lock = tmp_path / "x.lock"
    queue = multiprocessing.get_context("spawn").Queue()
    with exclusive_lock(lock, "work X"):
        p = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(lock, queue))
        p.start()
        p.join(60)
        assert "work X is being worked on by another process" in queue.get(timeout=5)
    p = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(lock, queue))
    p.start()
    p.join(60)
    assert queue.get(timeout=5) == "got it"
