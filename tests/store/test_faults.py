"""Faults: a full disk, invalid events among valid ones, back-pressure, and a
COMMIT whose outcome is unknown."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    InvalidEventError,
    StorageFullError,
    SwarmlogError,
    UnknownEventTypeError,
    WriterStoppedError,
    create_agent_started_event,
    create_task_completed_event,
    create_task_started_event,
)
from swarmlog.actors.sqlite.storage import SQLiteWriteStorage
from swarmlog.actors.storage import CommitUnknownError
from tests.store.conftest import outside_writer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TIMEOUT = 10.0
SMALL_DISK = {"max_page_count": 64}  # 256 KiB with 4 KiB pages


def _too_big(prefix: str) -> list[Any]:
    """About 800 KiB of events: more than SMALL_DISK holds."""
    return [create_task_completed_event(f"{prefix}{i}", "x" * 4000) for i in range(200)]


# -- disk full -------------------------------------------------------------------------


@pytest.mark.sqlite_only("fills the SQLite file with a small max_page_count pragma")
def test_a_batch_that_does_not_fit_fails_whole(
    make_store: Callable[..., EventStore],
) -> None:
    """append_many beyond max_page_count raises StorageFullError, stores none
    of it, keeps what was there, and small appends still work."""
    store = make_store(pragmas=SMALL_DISK)
    before = [store.append(create_agent_started_event("a1")) for _ in range(5)]
    with pytest.raises(StorageFullError):
        store.append_many(_too_big("big"))
    assert store.get_events("big0") == []
    assert store.query(aggregate_types=["task"]) == []
    assert list(store.replay()) == before
    assert store.get_stats().total_events == 5
    after = store.append(create_agent_started_event("a1"))
    assert (after.version, after.position) == (6, 6)
    assert (
        store.append_many(
            [create_task_completed_event("small", "ok") for _ in range(3)]
        )[-1].position
        == 9
    )


@pytest.mark.sqlite_only("fills the SQLite file with a small max_page_count pragma")
def test_a_full_disk_fails_only_the_request_that_does_not_fit(
    make_store: Callable[..., EventStore],
) -> None:
    """Small appends committed alongside an oversized batch still succeed."""
    store = make_store(pragmas=SMALL_DISK)
    big = store.append_many_async(_too_big("big"))
    small = [store.append_async(create_agent_started_event("a1")) for _ in range(10)]
    with pytest.raises(StorageFullError):
        big.get(TIMEOUT)
    stored = [f.get(TIMEOUT) for f in small]
    assert sorted(e.version for e in stored) == list(range(1, 11))
    assert [e.position for e in store.replay()] == list(range(1, 11))


@pytest.mark.sqlite_only("fills the SQLite file with a small max_page_count pragma")
def test_repeated_full_disk_errors_do_not_wear_the_store(
    make_store: Callable[..., EventStore],
) -> None:
    """The writer survives many full-disk failures in a row."""
    store = make_store(pragmas=SMALL_DISK)
    for i in range(5):
        with pytest.raises(StorageFullError):
            store.append_many(_too_big(f"r{i}-"))
        assert store.append(create_agent_started_event("a1")).version == i + 1
    assert store.head_position == 5


@pytest.mark.sqlite_only("fills the SQLite file with a small max_page_count pragma")
def test_storage_full_is_a_storage_error(make_store: Callable[..., EventStore]) -> None:
    """StorageFullError is a SwarmlogError, never a raw sqlite3 error."""
    store = make_store(pragmas=SMALL_DISK)
    with pytest.raises(SwarmlogError) as info:
        store.append_many(_too_big("big"))
    assert not isinstance(info.value, sqlite3.Error)
    assert info.value.__cause__ is None or isinstance(
        info.value.__cause__, sqlite3.Error | SwarmlogError
    )


# -- invalid events among valid ones ---------------------------------------------------


NAIVE = datetime(2024, 1, 1)


def _invalid(kind: int, worker: int) -> Any:
    event = create_agent_started_event(f"bad-{worker}")
    if kind == 0:
        return msgspec.structs.replace(event, timestamp=NAIVE)
    if kind == 1:
        return msgspec.structs.replace(event, type="no:such-type")
    if kind == 2:
        return msgspec.structs.replace(event, source="")
    # Valid on its own, refused by the writer: the aggregate is an agent.
    return create_task_started_event(f"ok-{worker}", "someone")


def test_invalid_events_do_not_disturb_concurrent_valid_appends(
    store: EventStore,
) -> None:
    """Threads appending invalid events get typed errors and store nothing;
    the valid appends running at the same time all commit, gap-free."""
    per_thread = 20
    first = [store.append(create_agent_started_event(f"ok-{w}")) for w in range(4)]
    barrier = threading.Barrier(8)

    def valid(worker: int) -> list[Any]:
        barrier.wait(TIMEOUT)
        return [
            store.append(create_agent_started_event(f"ok-{worker}"))
            for _ in range(per_thread)
        ]

    def invalid(worker: int) -> list[type[BaseException]]:
        barrier.wait(TIMEOUT)
        errors = []
        for n in range(per_thread):
            try:
                store.append(_invalid(n % 4, worker))
            except SwarmlogError as error:
                errors.append(type(error))
        return errors

    with ThreadPoolExecutor(8) as pool:
        good = [pool.submit(valid, w) for w in range(4)]
        bad = [pool.submit(invalid, w) for w in range(4)]
        stored = [e for f in good for e in f.result(TIMEOUT)]
        errors = [e for f in bad for e in f.result(TIMEOUT)]
    assert len(errors) == 4 * per_thread
    assert set(errors) <= {InvalidEventError, UnknownEventTypeError}
    assert len(stored) == 4 * per_thread
    events = list(store.replay())
    assert events[:4] == first
    assert [e.position for e in events] == list(range(1, len(stored) + 5))
    assert {e.aggregate_id for e in events} == {f"ok-{w}" for w in range(4)}
    assert all(e.type == "agent:started" for e in events)


# -- back-pressure ---------------------------------------------------------------------


def test_back_pressure_still_completes_everything(
    make_store: Callable[..., EventStore],
) -> None:
    """With max_in_flight=2, a burst of append_async from several threads
    all completes, in order per thread."""
    store = make_store(max_in_flight=2)

    def burst(worker: int) -> list[Any]:
        futures = [
            store.append_async(create_agent_started_event(f"bp-{worker}"))
            for _ in range(50)
        ]
        return [f.get(TIMEOUT) for f in futures]

    with ThreadPoolExecutor(4) as pool:
        results = [f.result(TIMEOUT) for f in [pool.submit(burst, w) for w in range(4)]]
    for stored in results:
        assert [e.version for e in stored] == list(range(1, 51))
    assert [e.position for e in store.replay()] == list(range(1, 201))


def test_back_pressure_blocks_the_caller_at_the_bound(
    make_store: Callable[..., EventStore],
) -> None:
    """At max_in_flight pending appends, append_async waits for room instead
    of queueing without limit, and proceeds once the writer moves on."""
    store = make_store(max_in_flight=2)
    blocker = outside_writer(store)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the writer's next commit waits
        pending = [
            store.append_async(create_agent_started_event("a1")) for _ in range(2)
        ]
        returned = threading.Event()
        third: list[Any] = []

        def submit() -> None:
            third.append(store.append_async(create_agent_started_event("a1")))
            returned.set()

        thread = threading.Thread(target=submit)
        thread.start()
        # A bounded look for a wrong early return; no ordering depends on it.
        assert not returned.wait(0.2)
        blocker.execute("ROLLBACK")
        assert returned.wait(TIMEOUT)
        thread.join(TIMEOUT)
        stored = [f.get(TIMEOUT) for f in [*pending, *third]]
        assert [e.version for e in stored] == [1, 2, 3]
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()


# -- a COMMIT whose outcome is unknown -------------------------------------------------


@pytest.fixture
def lost_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next writes behave as if COMMIT's result was lost (an I/O
    error after the data reached the file): the rows are written, then the
    storage reports an unknown outcome."""
    write = SQLiteWriteStorage.write_events

    def write_then_fail(self: SQLiteWriteStorage, *args: Any, **kwargs: Any) -> None:
        write(self, *args, **kwargs)
        msg = "disk I/O error (simulated, after COMMIT)"
        raise CommitUnknownError(msg)

    monkeypatch.setattr(SQLiteWriteStorage, "write_events", write_then_fail)


@pytest.mark.sqlite_only(
    "fakes a lost COMMIT inside the SQLite storage (tests/postgres covers PostgreSQL)"
)
def test_unknown_commit_outcome_stops_the_writer(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, lost_commit: None
) -> None:
    """The caller and every later appender get WriterStoppedError; reads
    still work; shutdown still completes."""
    with pytest.raises(WriterStoppedError):
        store.append(create_agent_started_event("a1"))
    monkeypatch.undo()  # the disk is fine again, the writer must not guess
    with pytest.raises(WriterStoppedError):
        store.append(create_agent_started_event("a2"))
    with pytest.raises(WriterStoppedError):
        store.append_many_async([create_agent_started_event("a3")]).get(TIMEOUT)
    store.get_events("a1")
    store.query()
    store.get_stats()
    store.shutdown()


def test_reopen_shows_what_an_unknown_commit_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a lost COMMIT reply, reopening the file tells what was stored,
    and appends continue from there."""
    path = tmp_path / "unknown.db"
    with EventStore(path) as store:
        store.append(create_agent_started_event("a1"))
        write = SQLiteWriteStorage.write_events

        def write_then_fail(self: SQLiteWriteStorage, *a: Any, **k: Any) -> None:
            write(self, *a, **k)
            msg = "disk I/O error (simulated, after COMMIT)"
            raise CommitUnknownError(msg)

        monkeypatch.setattr(SQLiteWriteStorage, "write_events", write_then_fail)
        with pytest.raises(WriterStoppedError):
            store.append(create_agent_started_event("a1"))
        monkeypatch.undo()
    with EventStore(path) as store:
        assert [e.version for e in store.get_events("a1")] == [1, 2]
        assert store.append(create_agent_started_event("a1")).position == 3


# -- failures inside one group-commit batch ------------------------------------------


def test_failures_in_a_batch_fail_only_their_own_request(store: EventStore) -> None:
    """Requests queued together (held behind an SQLite write lock so the
    writer group-commits them) each get their own outcome: conflicts,
    duplicates and type clashes fail alone, the rest commit gap-free."""
    store.append(create_agent_started_event("agent"))
    original = create_agent_started_event("dup")
    taken = store.append(original)
    blocker = outside_writer(store)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        futures = {
            "valid-1": store.append_async(create_agent_started_event("v1")),
            "conflict": store.append_async(
                create_agent_started_event("agent"), expected_version=5
            ),
            "type-clash": store.append_async(create_task_started_event("agent", "x")),
            "duplicate": store.append_async(
                create_agent_started_event("dup", metadata={"x": 1}, event_id=taken.id)
            ),
            "retry": store.append_async(original),
            "batch-conflict": store.append_many_async(
                [create_agent_started_event("v3"), create_agent_started_event("agent")],
                expected_version=NO_STREAM,
            ),
            "valid-2": store.append_async(
                create_agent_started_event("v2"), expected_version=NO_STREAM
            ),
        }
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    outcomes: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            outcomes[name] = future.get(TIMEOUT)
        except SwarmlogError as error:
            outcomes[name] = type(error)
    assert outcomes["conflict"] is ConcurrencyError
    assert outcomes["type-clash"] is InvalidEventError
    assert outcomes["duplicate"] is DuplicateEventError
    assert outcomes["batch-conflict"] is ConcurrencyError
    assert outcomes["retry"] == taken
    assert outcomes["valid-1"].aggregate_id == "v1"
    assert outcomes["valid-2"].aggregate_id == "v2"
    events = list(store.replay())
    assert [e.position for e in events] == [1, 2, 3, 4]
    assert [e.aggregate_id for e in events] == ["agent", "dup", "v1", "v2"]
