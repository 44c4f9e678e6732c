"""Lifecycle: initialize, shutdown, reopen, locking, read-only, bad files,
configuration."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EventStore,
    EventStoreConfig,
    IncompatibleStoreError,
    InvalidConfigError,
    ReadOnlyStoreError,
    Snapshot,
    StoreClosedError,
    StoreLockedError,
    StoreNotInitializedError,
    StoreOpenError,
    SwarmlogError,
    create_agent_started_event,
    create_task_queued_event,
)
from swarmlog.schema.sql import APPLICATION_ID, FORMAT_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TIMEOUT = 10.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- initialize / shutdown -------------------------------------------------------------


def test_initialize_returns_the_store_and_is_idempotent(
    make_store: Callable[..., EventStore],
) -> None:
    """initialize() returns the store itself, again and again."""
    store = make_store(initialize=False)
    assert store.initialize() is store
    assert store.initialize() is store
    assert store.append(create_agent_started_event("a1")).position == 1


def test_context_manager_initialises_and_shuts_down(
    store_path: str, store_options: dict[str, Any]
) -> None:
    """with EventStore(...) as store: opens; leaving the block closes."""
    with EventStore(store_path, **store_options) as store:
        assert isinstance(store, EventStore)
        store.append(create_agent_started_event("a1"))
        assert not store.closed
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.get_events("a1")


def test_context_manager_shuts_down_on_error(
    store_path: str, store_options: dict[str, Any]
) -> None:
    """An exception inside the block still shuts the store down."""
    store = EventStore(store_path, **store_options)

    def fail_inside() -> None:
        with store:
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError):
        fail_inside()
    assert store.closed


def test_config_object(store_path: str, store_options: dict[str, Any]) -> None:
    """EventStore(EventStoreConfig(...)) takes every option from the config."""
    config = EventStoreConfig(
        database_path=store_path, snapshot_threshold=7, **store_options
    )
    with EventStore(config) as store:
        assert store.config.snapshot_threshold == 7
        assert store.append(create_agent_started_event("a1")).version == 1


OPERATIONS: dict[str, Callable[[EventStore], Any]] = {
    "append": lambda s: s.append(create_agent_started_event("a1")),
    "append_many": lambda s: s.append_many([create_agent_started_event("a1")]),
    "append_async": lambda s: s.append_async(create_agent_started_event("a1")),
    "append_many_async": lambda s: s.append_many_async(
        [create_agent_started_event("a1")]
    ),
    "get_events": lambda s: s.get_events("a1"),
    "get_events_by_type": lambda s: s.get_events_by_type("agent:started"),
    "query": lambda s: s.query(),
    "replay": lambda s: list(s.replay()),
    "save_snapshot": lambda s: s.save_snapshot(Snapshot("a1", "agent", 1, {}, T0)),
    "get_snapshot": lambda s: s.get_snapshot("a1"),
    "get_stats": lambda s: s.get_stats(),
    "persist": lambda s: s.persist(),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_use_before_initialize(
    make_store: Callable[..., EventStore], operation: Callable[[EventStore], Any]
) -> None:
    """Every operation before initialize() raises StoreNotInitializedError."""
    store = make_store(initialize=False)
    with pytest.raises(StoreNotInitializedError):
        operation(store)


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_use_after_shutdown(
    make_store: Callable[..., EventStore], operation: Callable[[EventStore], Any]
) -> None:
    """Every operation after shutdown() raises StoreClosedError."""
    store = make_store()
    store.append(create_agent_started_event("a1"))
    store.shutdown()
    with pytest.raises(StoreClosedError):
        operation(store)


def test_initialize_after_shutdown_is_refused(
    make_store: Callable[..., EventStore],
) -> None:
    """A shut-down store cannot be reopened; make a new EventStore."""
    store = make_store()
    store.shutdown()
    with pytest.raises(StoreClosedError):
        store.initialize()


def test_shutdown_twice_is_safe(make_store: Callable[..., EventStore]) -> None:
    """A second shutdown() does nothing."""
    store = make_store()
    store.shutdown()
    store.shutdown()
    assert store.closed


def test_shutdown_before_initialize_is_safe(
    make_store: Callable[..., EventStore],
) -> None:
    """shutdown() on a store never initialised does not raise."""
    make_store(initialize=False).shutdown()


def test_shutdown_drains_pending_appends(tmp_path: Path) -> None:
    """Appends in flight when shutdown() starts all commit."""
    path = tmp_path / "drain.db"
    store = EventStore(path).initialize()
    futures = [store.append_async(create_agent_started_event("a1")) for _ in range(200)]
    store.shutdown()
    stored = [f.get(TIMEOUT) for f in futures]
    assert [e.version for e in stored] == list(range(1, 201))
    with EventStore(path) as reopened:
        assert reopened.head_position == 200


@pytest.mark.sqlite_only("':memory:' stores' private file")
def test_memory_store_leaves_no_files(make_store: Callable[..., EventStore]) -> None:
    """A ':memory:' store keeps its private file only until shutdown."""
    store = make_store()
    store.append(create_agent_started_event("a1"))
    store.persist()
    path = store.path
    assert os.path.exists(path)
    store.shutdown()
    if store.config.database_path == ":memory:":
        folder = os.path.dirname(path)
        assert not os.path.exists(folder)
        assert not os.path.exists(path)


def test_memory_stores_are_independent() -> None:
    """Two ':memory:' stores share nothing (no lock, no data)."""
    with EventStore() as one, EventStore() as two:
        one.append(create_agent_started_event("a1"))
        assert two.get_events("a1") == []
        assert two.append(create_agent_started_event("a1")).position == 1
        assert one.path != two.path


def test_verbose_logs_through_logging(
    store_path: str, store_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """verbose=True logs lifecycle activity on the 'swarmlog' logger."""
    with (
        caplog.at_level(logging.INFO, logger="swarmlog"),
        EventStore(store_path, verbose=True, **store_options) as store,
    ):
        store.append(create_agent_started_event("a1"))
    assert any(r.name.startswith("swarmlog") for r in caplog.records)


# -- reopen ----------------------------------------------------------------------------


def test_reopen_continues_versions_and_positions(
    tmp_path: Path, synchronous: str
) -> None:
    """A reopened file continues where it was: events, versions, positions,
    snapshots."""
    path = tmp_path / "reopen.db"
    with EventStore(path, synchronous=synchronous) as store:
        first = [store.append(create_agent_started_event("a1")) for _ in range(3)]
        first.append(store.append(create_task_queued_event("t1", "high")))
        store.save_snapshot(Snapshot("a1", "agent", 3, {"n": 3}, T0))
    with EventStore(path, synchronous=synchronous) as store:
        assert list(store.replay()) == first
        assert store.head_position == 4
        nxt = store.append(create_agent_started_event("a1"))
        assert (nxt.version, nxt.position) == (4, 5)
        assert store.append(create_task_queued_event("t1", "low")).version == 2
        assert store.get_snapshot("a1") == Snapshot("a1", "agent", 3, {"n": 3}, T0)
        assert store.get_stats().total_events == 6
    with EventStore(path, synchronous=synchronous) as store:
        assert store.head_position == 6
        assert store.append(create_agent_started_event("a2")).position == 7


def test_reopen_after_persist_without_appends(tmp_path: Path) -> None:
    """An empty store reopens empty; a persisted one reopens whole."""
    path = tmp_path / "empty.db"
    with EventStore(path):
        pass
    with EventStore(path) as store:
        assert store.head_position == 0
        store.append(create_agent_started_event("a1"))
        store.persist()
    with EventStore(path) as store:
        assert len(store.get_events("a1")) == 1


# -- one writer per file ---------------------------------------------------------------


def test_second_writer_in_the_same_process_is_locked_out(tmp_path: Path) -> None:
    """A second writing store on the same file raises StoreLockedError; the
    first keeps working, and once it closes the file can be opened again."""
    path = tmp_path / "locked.db"
    with EventStore(path) as first:
        first.append(create_agent_started_event("a1"))
        second = EventStore(path)
        with pytest.raises(StoreLockedError) as info:
            second.initialize()
        assert os.path.samefile(info.value.path, path)
        assert first.append(create_agent_started_event("a1")).version == 2
    with EventStore(path) as again:
        assert again.append(create_agent_started_event("a1")).version == 3


OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from swarmlog import EventStore, StoreLockedError
    try:
        EventStore(sys.argv[1]).initialize().shutdown()
    except StoreLockedError:
        sys.exit(3)
    sys.exit(0)
    """
)


def test_second_writer_in_another_process_is_locked_out(tmp_path: Path) -> None:
    """Another process cannot open a writing store on a file in use."""
    path = tmp_path / "locked.db"
    with EventStore(path) as store:
        store.append(create_agent_started_event("a1"))
        result = subprocess.run(
            [sys.executable, "-c", OTHER_PROCESS, str(path)],
            timeout=60,
            capture_output=True,
            check=False,
        )
        assert result.returncode == 3, result.stderr.decode()


# -- read-only -------------------------------------------------------------------------


def test_read_only_store_watches_a_live_writer(tmp_path: Path) -> None:
    """read_only=True opens while a writer holds the file and sees its
    commits; writes are refused with ReadOnlyStoreError."""
    path = tmp_path / "live.db"
    with EventStore(path) as writer:
        stored = [writer.append(create_agent_started_event("a1")) for _ in range(3)]
        with EventStore(path, read_only=True) as reader:
            assert reader.get_events("a1") == stored
            more = writer.append(create_agent_started_event("a1"))
            assert reader.get_events("a1") == [*stored, more]
            assert list(reader.replay()) == [*stored, more]
            assert reader.query(from_position=4) == [more]
            assert reader.head_position == 4
            assert reader.get_stats().total_events == 4
            with pytest.raises(ReadOnlyStoreError):
                reader.append(create_agent_started_event("a1"))
            with pytest.raises(ReadOnlyStoreError):
                reader.append_many([create_agent_started_event("a1")])
            with pytest.raises(ReadOnlyStoreError):
                reader.save_snapshot(Snapshot("a1", "agent", 1, {}, T0))
        assert writer.append(create_agent_started_event("a1")).position == 5


def test_read_only_store_never_writes(tmp_path: Path) -> None:
    """Opening, reading and closing read-only leaves the file unchanged."""
    path = tmp_path / "quiet.db"
    with EventStore(path) as writer:
        writer.append(create_agent_started_event("a1"))
    before = _digest(path)
    with EventStore(path, read_only=True) as reader:
        assert len(reader.get_events("a1")) == 1
        list(reader.replay())
        reader.get_stats()
    assert _digest(path) == before


def test_read_only_needs_an_existing_file(tmp_path: Path) -> None:
    """A read-only store never creates a database."""
    path = tmp_path / "missing.db"
    with pytest.raises(StoreOpenError):
        EventStore(path, read_only=True).initialize()
    assert not path.exists()


def test_read_only_memory_is_a_config_error() -> None:
    """read_only=True with ':memory:' cannot work and is refused."""
    with pytest.raises(InvalidConfigError):
        EventStore(":memory:", read_only=True)


# -- files that cannot be opened -------------------------------------------------------


def test_a_directory_is_a_store_open_error(tmp_path: Path) -> None:
    """A path that is a directory raises StoreOpenError."""
    with pytest.raises(StoreOpenError):
        EventStore(tmp_path).initialize()


def test_a_missing_folder_is_a_store_open_error(tmp_path: Path) -> None:
    """A path in a folder that does not exist raises StoreOpenError."""
    with pytest.raises(StoreOpenError):
        EventStore(tmp_path / "no" / "such" / "x.db").initialize()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_non_sqlite_file_is_incompatible(tmp_path: Path, read_only: bool) -> None:
    """A file that is not SQLite raises IncompatibleStoreError, untouched."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = _digest(path)
    with pytest.raises(IncompatibleStoreError):
        EventStore(path, read_only=read_only).initialize()
    assert _digest(path) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_another_apps_sqlite_file_is_incompatible(
    tmp_path: Path, read_only: bool
) -> None:
    """An SQLite file of another application is refused and not modified."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(IncompatibleStoreError):
        EventStore(path, read_only=read_only).initialize()
    assert _digest(path) == before
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"customers"}


def test_another_application_id_is_incompatible(tmp_path: Path) -> None:
    """An empty SQLite file stamped with another application_id is refused."""
    path = tmp_path / "stamped.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    with pytest.raises(IncompatibleStoreError):
        EventStore(path).initialize()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_newer_format_is_incompatible(tmp_path: Path, read_only: bool) -> None:
    """A swarmlog file with a newer format version is refused, untouched."""
    path = tmp_path / "future.db"
    with EventStore(path) as store:
        store.append(create_agent_started_event("a1"))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    conn.close()
    before = _digest(path)
    with pytest.raises(IncompatibleStoreError):
        EventStore(path, read_only=read_only).initialize()
    assert _digest(path) == before


def test_a_failed_open_holds_no_lock(tmp_path: Path) -> None:
    """After an open fails on an incompatible file, nothing stays locked or
    running: a good store on another file opens, and the bad file can be
    replaced and opened."""
    path = tmp_path / "bad.db"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(IncompatibleStoreError):
        EventStore(path).initialize()
    path.unlink()
    with EventStore(path) as store:
        assert store.append(create_agent_started_event("a1")).position == 1


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"snapshot_threshold": 0},
        {"snapshot_threshold": -5},
        {"snapshot_threshold": "100"},
        {"snapshot_threshold": 1.5},
        {"synchronous": "off"},
        {"synchronous": "FULL "},
        {"auto_persist_interval": -1},
        {"auto_persist_interval": "5"},
        {"max_in_flight": 0},
        {"pragmas": "max_page_count=10"},
        {"read_only": "yes"},
        {"caller_commits": "yes"},
        {"caller_commits": 1},
        {"database_path": ""},
    ],
    ids=repr,
)
def test_invalid_config(options: dict[str, Any]) -> None:
    """An out-of-range or wrongly typed option raises InvalidConfigError,
    from EventStore(...) and from EventStoreConfig(...)."""
    with pytest.raises(InvalidConfigError):
        EventStore(**options)
    with pytest.raises(InvalidConfigError):
        EventStoreConfig(**options)


@pytest.mark.parametrize(
    "pragmas",
    [{"max_page_count; DROP TABLE events": 1}, {"cache_size": "1; DROP TABLE x"}],
    ids=repr,
)
def test_pragmas_cannot_inject_sql(tmp_path: Path, pragmas: dict[str, Any]) -> None:
    """Pragma names and values must be plain words or numbers."""
    with pytest.raises(InvalidConfigError):
        EventStore(tmp_path / "p.db", pragmas=pragmas).initialize()


def test_appends_racing_shutdown_commit_or_fail_cleanly(
    make_store: Callable[..., EventStore],
) -> None:
    """Threads appending while shutdown() runs either get their stored event
    or StoreClosedError; nothing hangs and nothing else is raised."""
    store = make_store()
    started = threading.Barrier(5)
    enough = threading.Event()

    def append_until_closed(worker: int) -> tuple[int, list[str]]:
        started.wait(TIMEOUT)
        committed, odd = 0, []
        while True:
            try:
                store.append(create_agent_started_event(f"w{worker}"))
            except StoreClosedError:
                return committed, odd
            except Exception as error:
                odd.append(repr(error))
                return committed, odd
            committed += 1
            if committed == 20:
                enough.set()

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(append_until_closed, w) for w in range(4)]
        started.wait(TIMEOUT)
        assert enough.wait(TIMEOUT)
        store.shutdown()
        results = [w.result(TIMEOUT) for w in workers]
    assert [odd for _, odd in results] == [[], [], [], []]
    if store.config.database_path != ":memory:":
        with EventStore(store.config, read_only=True) as reader:
            for worker, (committed, _) in enumerate(results):
                assert len(reader.get_events(f"w{worker}")) == committed


def test_a_refused_initialize_can_be_retried(tmp_path: Path) -> None:
    """A store refused with StoreLockedError opens once the lock is free."""
    path = tmp_path / "retry.db"
    first = EventStore(path).initialize()
    second = EventStore(path)
    try:
        with pytest.raises(StoreLockedError):
            second.initialize()
        first.append(create_agent_started_event("a1"))
        first.shutdown()
        assert second.initialize() is second
        assert second.append(create_agent_started_event("a1")).version == 2
    finally:
        first.shutdown()
        second.shutdown()


def test_a_failed_memory_store_leaves_no_files() -> None:
    """A ':memory:' store whose initialize() fails removes its private file."""
    store = EventStore(pragmas={"not a pragma!": 1})
    with pytest.raises(InvalidConfigError):
        store.initialize()
    if store.path:
        assert not os.path.exists(os.path.dirname(store.path))


def test_persist_and_shutdown_leave_a_complete_main_file(tmp_path: Path) -> None:
    """After persist() (while open) and after shutdown(), the database file
    alone, copied without its WAL, holds every committed event."""
    path = tmp_path / "main.db"
    store = EventStore(path, auto_persist_interval=0).initialize()
    try:
        for _ in range(30):
            store.append(create_agent_started_event("a1"))
        store.persist()
        (tmp_path / "persisted").mkdir()
        shutil.copyfile(path, tmp_path / "persisted" / "main.db")
        for _ in range(30):
            store.append(create_agent_started_event("a1"))
    finally:
        store.shutdown()
    (tmp_path / "closed").mkdir()
    shutil.copyfile(path, tmp_path / "closed" / "main.db")
    with EventStore(tmp_path / "persisted" / "main.db") as copy:
        assert len(copy.get_events("a1")) == 30
    with EventStore(tmp_path / "closed" / "main.db") as copy:
        assert len(copy.get_events("a1")) == 60


def test_shutdown_attempted_from_a_listener_does_not_strand_the_store(
    tmp_path: Path,
) -> None:
    """A listener calling shutdown() (refused: it would wait on itself) does
    not stop the owner's shutdown() from closing the store and its file."""
    path = tmp_path / "stranded.db"
    store = EventStore(path).initialize()
    attempted = threading.Event()
    refused: list[BaseException] = []

    def close_from_listener(_: Any) -> None:
        try:
            store.shutdown()
        except SwarmlogError as error:
            refused.append(error)
        finally:
            attempted.set()

    store.on("event:appended", close_from_listener)
    store.append(create_agent_started_event("a1"))
    assert attempted.wait(TIMEOUT)
    store.shutdown()
    try:
        with EventStore(path) as again:
            assert again.head_position == 1
    finally:
        # If the store was stranded, stop its threads so the test run can
        # end (cleanup only; the assertion above already decided).
        store._close_resources()


def test_concurrent_shutdown_returns_only_once_closed(tmp_path: Path) -> None:
    """When two threads call shutdown(), the second does not return while the
    first is still draining appends and holding the file."""
    path = tmp_path / "twice.db"
    store = EventStore(path).initialize()
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # keeps the first shutdown draining
    pending = store.append_async(create_agent_started_event("a1"))
    first = threading.Thread(target=store.shutdown)
    second = threading.Thread(target=store.shutdown)
    first.start()
    try:
        poll = threading.Event()
        for _ in range(int(TIMEOUT / 0.001)):  # wait for the first to begin
            if store.closed:
                break
            poll.wait(0.001)
        assert store.closed
        second.start()
        # A bounded look for a wrong early return: the first shutdown cannot
        # finish before the blocker is released below.
        second.join(0.5)
        returned_early = not second.is_alive()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        first.join(TIMEOUT)
        second.join(TIMEOUT)
    assert pending.get(TIMEOUT).position == 1
    assert not returned_early, "the second shutdown() returned while still open"
    with EventStore(path) as again:
        assert again.head_position == 1
