import multiprocessing

import pytest

from hpc_botan.errors import UserError
from hpc_botan.io.durable import atomic_path, exclusive_lock, write_text_atomic


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


def test_an_atomic_write_syncs_the_file_then_its_directory(tmp_path, monkeypatch):
    import os

    from hpc_botan.io.durable import write_text_atomic

    synced = []
    real_fsync = os.fsync

    def recording(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert len(synced) == 2
    assert synced[0].startswith(str(tmp_path / ".a.txt.")) and synced[1] == str(tmp_path)


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    from hpc_botan.io.durable import remove_stale_temporaries

    (tmp_path / ".shard-00000.h5.k3j2.tmp").write_text("half")
    (tmp_path / ".shard-00001.h5.aa.tmp").write_text("another shard's")
    (tmp_path / "shard-00000.h5").write_text("done")
    removed = remove_stale_temporaries(tmp_path / "shard-00000.h5")
    assert [p.name for p in removed] == [".shard-00000.h5.k3j2.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shard-00001.h5.aa.tmp", "shard-00000.h5"]


def test_a_file_system_without_locks_is_one_line(tmp_path, monkeypatch):
    import errno
    import fcntl

    from hpc_botan.io.durable import exclusive_lock

    def refuse(fh, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with pytest.raises(UserError, match="the file system refuses locks \\(No locks available\\)"):
        with exclusive_lock(tmp_path / "x.lock", "work X"):
            pass
