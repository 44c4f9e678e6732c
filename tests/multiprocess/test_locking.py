"""Locks between processes: the write lock's timeout, and which stores may
open one file together.

A process that cannot get the store-wide write lock (or SQLite's own write
lock) within ``lock_timeout`` gets ``LockTimeoutError`` (also a
``TimeoutError``) and nothing is written; "database is locked" never
reaches a caller. Stores opened with and without ``multi_process`` never
share a file (the refusal names the option); a ``read_only`` store works
beside both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    EventStore,
    InvalidConfigError,
    LockTimeoutError,
    Snapshot,
    StorageError,
    StoreLockedError,
    SwarmlogError,
    create_task_created_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .support import Worker


def _event(name: str) -> object:
    return create_task_created_event(name, "lock", "T", "", "low")


@pytest.mark.parametrize("hold", ["hold_lock", "hold_sqlite"])
def test_lock_wait_timeout(workers: Callable[..., Worker], db: str, hold: str) -> None:
    """Another process holds the write lock (swarmlog's, or SQLite's own):
    appends and snapshots fail with LockTimeoutError after lock_timeout,
    nothing is written, and the store works once the lock is free."""
    holder = workers()
    holder.ask(op="append", agg="first")
    with EventStore(db, multi_process=True, lock_timeout=0.2) as store:
        assert holder.ask(op=hold) == {"held": True}
        with pytest.raises(LockTimeoutError) as info:
            store.append(_event("blocked"))
        assert isinstance(info.value, TimeoutError)
        assert info.value.timeout == 0.2
        assert "database is locked" not in str(info.value)
        with pytest.raises(LockTimeoutError):
            store.append_many([_event("m1"), _event("m2")])
        with pytest.raises(LockTimeoutError):
            store.save_snapshot(Snapshot("first", "task", 1, {}, datetime.now(UTC)))
        assert holder.ask(op="release") == {"released": True}
        stored = store.append(_event("after"))
        assert [e.aggregate_id for e in store.replay()] == ["first", "after"]
        assert stored.position == 2


def test_no_storage_error_under_contention(
    workers: Callable[..., Worker], db: str
) -> None:
    """Under heavy contention no StorageError ("database is locked") reaches
    a caller: every append of every process is acknowledged."""
    group = [workers() for _ in range(3)]
    with EventStore(db, multi_process=True) as store:
        for worker in group:
            worker.send(op="load", threads=2, n=60, aggs=2, tag="c")
        try:
            for i in range(100):
                store.append(_event(f"here-{i}"))
        except StorageError as error:  # pragma: no cover - the failure
            pytest.fail(f"a storage error reached the caller: {error}")
        for worker in group:
            _, counts = worker.load_results()
            assert counts["done"] == 120


def test_single_process_store_reports_no_lock_waits(db: str) -> None:
    """Without multi_process there is no store-wide lock to wait for."""
    with EventStore(db) as store:
        store.append(_event("one"))
        stats = store.get_stats()
        assert (stats.lock_waits, stats.lock_wait_max) == (0, 0.0)


def test_single_process_store_refused_beside_multi_process(db: str) -> None:
    """A store without multi_process on a file multi-process stores hold is
    refused, the message naming the option; and the other way round."""
    with EventStore(db, multi_process=True):
        with pytest.raises(StoreLockedError, match="multi_process=True") as info:
            EventStore(db).initialize()
        assert info.value.path.endswith("shared.db")
    with EventStore(db):
        with pytest.raises(StoreLockedError, match="without multi_process"):
            EventStore(db, multi_process=True).initialize()
        with pytest.raises(StoreLockedError, match="read_only=True to watch"):
            EventStore(db).initialize()


def test_mixing_refused_across_processes(
    workers: Callable[..., Worker], db: str
) -> None:
    """The refusal holds across processes too."""
    with EventStore(db):
        refused = workers()
        assert refused.opened["open"] == "error"
        assert refused.opened["t"] == "StoreLockedError"
        assert "multi_process" in refused.opened["m"]


def test_read_only_beside_multi_process_writers(
    workers: Callable[..., Worker], db: str
) -> None:
    """A read-only store works beside multi-process writers and sees them."""
    writer = workers()
    position = writer.ask(op="append", agg="seen")["position"]
    with EventStore(db, read_only=True) as watcher:
        assert [e.position for e in watcher.replay()] == [position]
        with EventStore(db, multi_process=True) as second:
            second.append(_event("second"))
        assert watcher.get_stats().head_position == 2


def test_memory_refused_with_multi_process() -> None:
    """multi_process=True needs a file: ':memory:' is an InvalidConfigError."""
    with pytest.raises(InvalidConfigError, match="memory"):
        EventStore(":memory:", multi_process=True)
    with pytest.raises(InvalidConfigError, match="lock_timeout"):
        EventStore("x.db", multi_process=True, lock_timeout=0)
    with pytest.raises(InvalidConfigError, match="lock_timeout"):
        EventStore("x.db", lock_timeout=float("nan"))
    with pytest.raises(InvalidConfigError, match="multi_process"):
        EventStore("x.db", multi_process="yes")


def test_lock_timeout_error_is_exported_and_picklable() -> None:
    """LockTimeoutError is a SwarmlogError and a TimeoutError that keeps its
    facts through pickling (errors cross process boundaries)."""
    import pickle

    error = LockTimeoutError("/tmp/x.db", 1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, SwarmlogError)
    assert isinstance(copy, TimeoutError)
    assert (copy.path, copy.timeout, str(copy)) == (error.path, 1.5, str(error))
