"""store.on(): every listener name, commit order, isolation from appends."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EventStore,
    Snapshot,
    SwarmlogError,
    TaskHistoryProjection,
    WriterStoppedError,
    create_agent_started_event,
    create_task_created_event,
)
from swarmlog.actors.sqlite.storage import SQLiteWriteStorage
from swarmlog.actors.storage import CommitUnknownError

if TYPE_CHECKING:
    from collections.abc import Callable

TIMEOUT = 10.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_event_appended_in_commit_order(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """Every appended event reaches the listener once, by position, equal to
    the stored copy, even with many appending threads."""
    seen = recorder()
    store.on("event:appended", seen)

    def append_some(worker: int) -> None:
        for _ in range(25):
            store.append(create_agent_started_event(f"a{worker}"))

    with ThreadPoolExecutor(8) as pool:
        for f in [pool.submit(append_some, w) for w in range(8)]:
            f.result(TIMEOUT)
    calls = seen.wait_for(200)
    assert [e.position for e in calls] == list(range(1, 201))
    assert calls == list(store.replay())


def test_event_appended_for_append_many(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """Each event of a batch is delivered, in order."""
    seen = recorder()
    store.on("event:appended", seen)
    stored = store.append_many([create_agent_started_event("a1") for _ in range(5)])
    assert seen.wait_for(5) == stored


def test_snapshot_recommended_at_multiples_of_the_threshold(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """A dict with aggregate_id and version whenever a version reaches a
    multiple of snapshot_threshold (inside batches too)."""
    store = make_store(snapshot_threshold=3)
    recommended = recorder()
    appended = recorder()
    store.on("snapshot:recommended", recommended)
    store.on("event:appended", appended)
    for i in range(11):
        store.append(create_agent_started_event("a1" if i % 3 else "a2"))
    store.append_many([create_agent_started_event("a2") for _ in range(4)])
    appended.wait_for(15)
    assert recommended.calls == [
        {"aggregate_id": "a1", "version": 3},
        {"aggregate_id": "a2", "version": 3},
        {"aggregate_id": "a1", "version": 6},
        {"aggregate_id": "a2", "version": 6},
    ]


def test_snapshot_saved(store: EventStore, recorder: Callable[[], Any]) -> None:
    """The saved Snapshot is passed to the listener."""
    saved = recorder()
    store.on("snapshot:saved", saved)
    snapshot = Snapshot("a1", "agent", 2, {"s": 1}, T0)
    store.save_snapshot(snapshot)
    assert saved.wait_for(1) == [snapshot]


@pytest.mark.sqlite_only("SQLite WAL checkpoints")
def test_persisted_after_persist(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """persist() notifies with the database size and path."""
    store = make_store(auto_persist_interval=0)
    persisted = recorder()
    store.on("persisted", persisted)
    store.append(create_agent_started_event("a1"))
    store.persist()
    (info, *_) = persisted.wait_for(1)
    assert set(info) >= {"size", "path"}
    assert info["path"] == store.path
    assert isinstance(info["size"], int)
    assert info["size"] > 0


@pytest.mark.sqlite_only(
    "fakes a lost COMMIT inside the SQLite storage (tests/postgres covers PostgreSQL)"
)
def test_error_on_an_unknown_commit_outcome(
    store: EventStore, recorder: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the writer stops (a COMMIT whose outcome is unknown), the error
    listener gets the typed error."""
    errors = recorder()
    store.on("error", errors)
    write = SQLiteWriteStorage.write_events

    def lost_commit(self: SQLiteWriteStorage, *args: Any, **kwargs: Any) -> None:
        write(self, *args, **kwargs)
        msg = "disk I/O error (simulated, after COMMIT)"
        raise CommitUnknownError(msg)

    monkeypatch.setattr(SQLiteWriteStorage, "write_events", lost_commit)
    with pytest.raises(WriterStoppedError):
        store.append(create_agent_started_event("a1"))
    (error,) = errors.wait_for(1)
    assert isinstance(error, WriterStoppedError)


def test_initialized_and_shutdown(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """Listeners registered before initialize() hear initialized (once, even
    if initialize() is called again) and shutdown."""
    store = make_store(initialize=False)
    initialized = recorder()
    shutdown = recorder()
    appended = recorder()
    store.on("initialized", initialized)
    store.on("shutdown", shutdown)
    store.on("event:appended", appended)
    store.initialize()
    store.initialize()
    assert initialized.wait_for(1) == [None]
    store.append(create_agent_started_event("a1"))
    appended.wait_for(1)
    assert initialized.calls == [None]
    assert shutdown.calls == []
    store.shutdown()
    assert shutdown.wait_for(1) == [None]


def test_cancel_stops_deliveries(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """After cancel() the callback is not called again; cancel is idempotent."""
    cancelled = recorder()
    handle = store.on("event:appended", cancelled)
    store.append(create_agent_started_event("a1"))
    cancelled.wait_for(1)
    handle.cancel()
    handle.cancel()
    sentinel = recorder()
    store.on("event:appended", sentinel)
    store.append(create_agent_started_event("a1"))
    sentinel.wait_for(1)
    assert len(cancelled.calls) == 1


def test_cancel_one_of_two_listeners(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """Cancelling one listener leaves the others registered."""
    first, second = recorder(), recorder()
    handle = store.on("event:appended", first)
    store.on("event:appended", second)
    handle.cancel()
    store.append(create_agent_started_event("a1"))
    assert len(second.wait_for(1)) == 1
    assert first.calls == []


def test_a_raising_callback_does_not_break_appends(
    store: EventStore,
    recorder: Callable[[], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that raises is logged; appends and later callbacks go on."""

    def explode(event: Any) -> None:
        msg = f"listener bug at {event.position}"
        raise RuntimeError(msg)

    store.on("event:appended", explode)
    after = recorder()
    store.on("event:appended", after)
    with caplog.at_level(logging.ERROR, logger="swarmlog"):
        stored = [store.append(create_agent_started_event("a1")) for _ in range(5)]
        assert after.wait_for(5) == stored
    assert any(
        r.exc_info and "listener bug" in str(r.exc_info[1]) for r in caplog.records
    )
    assert store.append(create_agent_started_event("a1")).version == 6


def test_a_slow_callback_does_not_delay_appends(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """Appends return while a callback is still blocked; it catches up."""
    gate = threading.Event()
    seen = recorder()

    def slow(event: Any) -> None:
        assert gate.wait(TIMEOUT)
        seen(event)

    store.on("event:appended", slow)
    stored = [store.append(create_agent_started_event("a1")) for _ in range(20)]
    assert seen.calls == []
    gate.set()
    assert seen.wait_for(20) == stored


def test_callbacks_run_on_a_notifier_thread(
    store: EventStore, recorder: Callable[[], Any]
) -> None:
    """Callbacks never run on the caller's thread, nor the writer's."""
    seen = recorder()
    store.on("event:appended", seen)
    store.on("snapshot:saved", seen)
    writer_threads: set[int] = set()
    future = store.append_async(create_agent_started_event("a1"))
    future.add_done_callback(lambda _: writer_threads.add(threading.get_ident()))
    future.get(TIMEOUT)
    store.save_snapshot(Snapshot("a1", "agent", 1, {}, T0))
    seen.wait_for(2)
    assert threading.get_ident() not in seen.threads
    assert not seen.threads & writer_threads
    assert len(seen.threads) == 1


def test_listeners_may_be_added_before_initialize(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """on() works on a store that is not initialised yet."""
    store = make_store(initialize=False)
    seen = recorder()
    store.on("event:appended", seen)
    store.initialize()
    stored = store.append(create_agent_started_event("a1"))
    assert seen.wait_for(1) == [stored]


@pytest.mark.parametrize(
    ("name", "callback"),
    [("event:unknown", print), ("appended", print), ("event:appended", 42)],
)
def test_unknown_names_and_non_callables_are_refused(
    store: EventStore, name: str, callback: Any
) -> None:
    """on() validates its arguments with a typed error."""
    with pytest.raises(SwarmlogError):
        store.on(name, callback)


def test_a_listener_may_append_async_and_shutdown_still_completes() -> None:
    """A callback that appends follow-up events with append_async does not
    leak append capacity: shutdown() afterwards completes."""
    store = EventStore(":memory:").initialize()
    reacted = threading.Event()
    follow_ups: list[Any] = []

    def react(event: Any) -> None:
        if event.aggregate_id == "trigger":
            follow_ups.append(store.append_async(create_agent_started_event("next")))
            reacted.set()

    store.on("event:appended", react)
    store.append(create_agent_started_event("trigger"))
    assert reacted.wait(TIMEOUT)
    assert follow_ups[0].get(TIMEOUT).aggregate_id == "next"
    closer = threading.Thread(target=store.shutdown, daemon=True)
    closer.start()
    closer.join(2.0)  # an idle store shuts down in milliseconds
    hung = closer.is_alive()
    if hung:
        # Give back the leaked permit so shutdown finishes and the actor
        # threads end (only to clean up after the failure).
        store._appends.in_flight.release()
        closer.join(TIMEOUT)
    assert not hung, "shutdown() hung after a listener called append_async"


@pytest.mark.sqlite_only("SQLite WAL checkpoints")
def test_persisted_by_the_background_interval(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """auto_persist_interval checkpoints in the background and notifies."""
    store = make_store(initialize=False, auto_persist_interval=0.05)
    persisted = recorder()
    store.on("persisted", persisted)
    store.initialize()
    store.append(create_agent_started_event("a1"))
    (info, *_) = persisted.wait_for(1)
    assert info["path"] == store.path


@pytest.mark.sqlite_only("SQLite WAL checkpoints")
def test_persisted_at_the_wal_size_threshold(
    make_store: Callable[..., EventStore], recorder: Callable[[], Any]
) -> None:
    """With no interval, a WAL past wal_checkpoint_bytes is checkpointed
    after commits, off the commit path."""
    store = make_store(auto_persist_interval=0, wal_checkpoint_bytes=1)
    persisted = recorder()
    store.on("persisted", persisted)
    for _ in range(300):
        store.append(create_agent_started_event("a1"))
    persisted.wait_for(1)


@pytest.mark.parametrize(
    "error",
    [asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit],
    ids=lambda e: e.__name__,
)
def test_a_listener_raising_a_base_exception_stops_nothing(
    recorder: Callable[[], Any], error: type[BaseException]
) -> None:
    """A listener raising a BaseException (asyncio.CancelledError, ...) is
    logged and counted; neither its store nor another store in the process
    stops (pykka's stop_all never fires)."""
    first, second = EventStore().initialize(), EventStore().initialize()
    try:
        tasks = TaskHistoryProjection(second).initialize()
        seen_first, seen_second = recorder(), recorder()

        def hostile(event: Any) -> None:
            raise error

        first.on("event:appended", hostile)
        first.on("event:appended", seen_first)
        second.on("event:appended", seen_second)
        for round_ in range(2):
            first.append_async(create_agent_started_event(f"a{round_}")).get(TIMEOUT)
            seen_first.wait_for(round_ + 1)
            created = create_task_created_event(f"t{round_}", "b", "T", "", "low")
            second.append_async(created).get(TIMEOUT)
            seen_second.wait_for(round_ + 1)
        assert [t.id for t in tasks.get_all_tasks()] == ["t0", "t1"]
        assert first.get_stats().listener_errors == 2
        assert second.get_stats().listener_errors == 0
    finally:
        first.shutdown()
        second.shutdown()
