"""Housekeeping across processes (``multi_process=True``): snapshots never
replaced by older ones, the WAL stays bounded while several processes
write, and a forked child opens its own store beside its parent's."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import EventStore, Snapshot, create_task_created_event
from swarmlog.actors.sqlite.shared import SQLiteSharedWriteStorage
from swarmlog.actors.storage import ProjectionSnapshotRecord

from .support import TIMEOUT, WORKER

if TYPE_CHECKING:
    from collections.abc import Callable

    from .support import Worker


def test_snapshots_highest_version_wins_across_processes(
    workers: Callable[..., Worker], db: str
) -> None:
    """Snapshots saved by two processes in any order: the highest version
    stays, an older one never overwrites it."""
    other = workers()
    with EventStore(db, multi_process=True) as store:
        for version, saver in ((5, "other"), (3, "here"), (7, "here"), (6, "other")):
            if saver == "other":
                assert other.ask(op="snapshot", agg="agg", version=version)["ok"]
            else:
                store.save_snapshot(
                    Snapshot("agg", "task", version, {"v": version}, datetime.now(UTC))
                )
        snapshot = store.get_snapshot("agg")
        assert snapshot is not None
        assert (snapshot.version, snapshot.state) == (7, {"v": 7})


def test_projection_snapshot_never_older_over_newer(db: str) -> None:
    """Two writers of one file (two processes' worth of connections): an
    older projection snapshot never replaces a newer one; a new
    state_version always does."""
    EventStore(db, multi_process=True).initialize().shutdown()  # create
    first = SQLiteSharedWriteStorage(db, "full", None, 5.0)
    second = SQLiteSharedWriteStorage(db, "full", None, 5.0)
    try:
        first.save_projection_snapshot("p", ProjectionSnapshotRecord(10, 1, b"ten"))
        second.save_projection_snapshot("p", ProjectionSnapshotRecord(4, 1, b"four"))
        with EventStore(db, read_only=True) as reader:
            stored = reader._reader_checked().load_projection_snapshot("p")
        assert stored == ProjectionSnapshotRecord(10, 1, b"ten")
        second.save_projection_snapshot("p", ProjectionSnapshotRecord(12, 1, b"12"))
        first.save_projection_snapshot("p", ProjectionSnapshotRecord(2, 2, b"v2"))
        with EventStore(db, read_only=True) as reader:
            stored = reader._reader_checked().load_projection_snapshot("p")
        assert stored == ProjectionSnapshotRecord(2, 2, b"v2")
    finally:
        first.close()
        second.close()


def test_wal_stays_bounded_with_several_writers(
    workers: Callable[..., Worker], db: str
) -> None:
    """Three processes write 2,400 events of 2 KB (5 MB); with a 256 KB
    checkpoint threshold, a writer folds the WAL back under the write lock
    and the WAL is reused and truncated: it stays near the threshold, far
    below the data written."""
    options: dict[str, Any] = {"wal_checkpoint_bytes": 256 << 10}
    group = [workers(options) for _ in range(3)]
    for index, worker in enumerate(group):
        worker.send(op="load", threads=2, n=400, aggs=50, tag=f"{index}" + "x" * 2000)
    for worker in group:
        _, counts = worker.load_results()
        assert counts["done"] == 800
    data = os.path.getsize(db)
    wal = os.path.getsize(f"{db}-wal")
    print("WAL", wal, "data", data)
    assert data > 4 << 20
    assert wal < 1 << 20, (wal, data)


def test_wal_truncated_to_the_fold_bound_not_less(db: str) -> None:
    """The writer truncates a grown WAL back to the fold bound, not below:
    a WAL file cut shorter is extended again every cycle, which costs each
    commit more kernel work than overwriting it."""
    EventStore(db, multi_process=True).initialize().shutdown()  # create
    storage = SQLiteSharedWriteStorage(db, "normal", None, 5.0, wal_fold_bytes=3 << 20)
    try:
        limit = storage._conn.execute("PRAGMA journal_size_limit").fetchone()[0]
    finally:
        storage.close()
    assert limit == 3 << 20


def _shm_locks_of_this_process(db: str) -> set[int]:
    """The first byte of each POSIX lock this process holds on ``db``'s
    ``-shm`` file (Linux's /proc/locks)."""
    inode = os.stat(f"{db}-shm").st_ino
    held = set()
    with open("/proc/locks") as table:
        for line in table:
            fields = line.split()
            if fields[1] == "->":  # a waiter, not a holder
                continue
            pid, file_id, start = fields[4], fields[5], fields[6]
            if int(pid) == os.getpid() and int(file_id.split(":")[2]) == inode:
                held.add(int(start))
    return held


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="reads /proc/locks")
def test_closing_a_store_leaves_sqlites_locks_to_the_others(db: str) -> None:
    """SQLite holds POSIX locks on the ``-shm`` file (its "dead man switch"
    byte, 128, while any connection here uses the file; read marks during
    reads), and closing *any* descriptor of a file drops every lock the
    process holds on it. So a multi-process store that looked at its WAL's
    size (every round does) and then closed must leave the locks of the
    other connections in the process in place: here another store's. Were
    they gone, other processes would take this one's readers for absent
    (restart the WAL under their snapshot, recover the WAL index)."""
    first = EventStore(db, multi_process=True).initialize()
    second = EventStore(db, multi_process=True).initialize()
    try:
        for i in range(20):  # rounds that look at the WAL's size
            first.append(create_task_created_event(f"t{i}", "shm", "T", "", "low"))
        assert first.get_stats().transactions >= 20
        assert 128 in _shm_locks_of_this_process(db)
        first.shutdown()
        assert 128 in _shm_locks_of_this_process(db)
        second.append(create_task_created_event("after", "shm", "T", "", "low"))
        assert second.get_stats().head_position == 21
    finally:
        first.shutdown()
        second.shutdown()


def test_fork_child_opens_its_own_store(tmp_path: Any) -> None:
    """A store opened before fork() is fenced in the child; the child opens
    its own multi-process store beside its parent's and appends, and the
    parent's projection sees that event."""
    path = str(tmp_path / "fork.db")
    done = subprocess.run(
        [sys.executable, str(WORKER), path, "fork"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = msgspec.json.decode(done.stdout.splitlines()[-1])
    assert record["inherited"] == "ForkedStoreError"
    assert record["status"] == 0
    assert record["seen"] is True
    assert record["ids"] == ["before-fork", "child", "parent"]
