"""replay(): commit order, inclusive start, keyset pages, nothing pinned."""

from __future__ import annotations

import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    InvalidQueryError,
    StoreClosedError,
    create_agent_started_event,
    create_task_queued_event,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog import Event, EventStore

TIMEOUT = 10.0


@pytest.fixture
def events(store: EventStore) -> list[Event]:
    """Ten events over three aggregates."""
    stored = []
    for i in range(10):
        if i % 3 == 0:
            stored.append(store.append(create_task_queued_event(f"t{i % 2}", "high")))
        else:
            stored.append(store.append(create_agent_started_event(f"a{i % 2}")))
    return stored


def _truncate_checkpoint(path: str) -> tuple[int, int, int]:
    """Run a TRUNCATE checkpoint from an outside connection: it reports busy
    (first column 1) if any connection still holds a read snapshot."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 2000")
        return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()


def test_replays_everything_in_commit_order(
    store: EventStore, events: list[Event]
) -> None:
    """replay() yields every event by position."""
    assert list(store.replay()) == events


@pytest.mark.parametrize("start", [0, 1])
def test_zero_and_one_both_mean_all(
    store: EventStore, events: list[Event], start: int
) -> None:
    """from_position 0 and 1 both replay from the first event."""
    assert list(store.replay(start)) == events
    assert list(store.replay(from_position=start)) == events


@pytest.mark.parametrize("start", [2, 5, 10])
def test_from_position_is_inclusive(
    store: EventStore, events: list[Event], start: int
) -> None:
    """The event at from_position is the first one yielded."""
    assert list(store.replay(start)) == events[start - 1 :]


def test_past_the_head_is_empty(store: EventStore, events: list[Event]) -> None:
    """Starting after the last position yields nothing."""
    assert list(store.replay(11)) == []
    assert list(store.replay(10_000)) == []


def test_empty_store_replays_nothing(store: EventStore) -> None:
    """An empty store replays as an empty iterator."""
    assert list(store.replay()) == []


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 9, 10, 11, 1000])
def test_page_size_does_not_change_the_result(
    store: EventStore, events: list[Event], page_size: int
) -> None:
    """Keyset pages of any size (exact multiples included) yield each event
    once, in order."""
    assert list(store.replay(page_size=page_size)) == events
    assert list(store.replay(4, page_size=page_size)) == events[3:]


@pytest.mark.parametrize(
    "arguments",
    [
        {"from_position": -1},
        {"from_position": "1"},
        {"from_position": 1.5},
        {"page_size": 0},
        {"page_size": -3},
    ],
    ids=repr,
)
def test_invalid_arguments(store: EventStore, arguments: dict[str, object]) -> None:
    """A negative or wrongly typed start or page size raises at the call."""
    with pytest.raises(InvalidQueryError):
        store.replay(**arguments)  # type: ignore[arg-type]


def test_replay_is_lazy_and_reads_in_pages(
    store: EventStore, events: list[Event]
) -> None:
    """Events appended while a replay is paused between pages still come in
    order, none twice (keyset pages: position > last)."""
    replay = store.replay(page_size=4)
    first = [next(replay) for _ in range(6)]
    more = [store.append(create_agent_started_event("late")) for _ in range(3)]
    rest = list(replay)
    assert first + rest == [*events, *more]


@pytest.mark.sqlite_only("a paused replay and the SQLite WAL")
def test_a_paused_replay_does_not_pin_the_wal(
    store: EventStore, events: list[Event]
) -> None:
    """Between pages the replay holds no read transaction: a TRUNCATE
    checkpoint from outside completes (not busy)."""
    replay = store.replay(page_size=3)
    assert [next(replay) for _ in range(4)] == events[:4]
    store.append(create_agent_started_event("a9"))
    busy, _, _ = _truncate_checkpoint(store.path)
    assert busy == 0
    assert len(list(replay)) == 7


@pytest.mark.sqlite_only("checks with a WAL checkpoint that no SQLite read stays open")
def test_abandoning_a_replay_leaks_nothing(
    make_store: Callable[..., EventStore],
) -> None:
    """Closing or dropping a replay early leaves no read open; the store
    shuts down cleanly and, for ':memory:', removes its file."""
    store = make_store()
    for _ in range(10):
        store.append(create_agent_started_event("a1"))
    replay = store.replay(page_size=3)
    next(replay)
    replay.close()
    dropped = store.replay(page_size=2)
    next(dropped)
    del dropped
    busy, _, _ = _truncate_checkpoint(store.path)
    assert busy == 0
    path = store.path
    store.shutdown()
    if store.config.database_path == ":memory:":
        assert not os.path.exists(path)


def test_replays_run_alongside_appends(store: EventStore) -> None:
    """Concurrent replays see strictly increasing, gap-free positions."""
    for _ in range(50):
        store.append(create_agent_started_event("a1"))
    done = threading.Event()

    def replay_until_done() -> list[str]:
        problems = []
        while not done.is_set():
            positions = [e.position for e in store.replay(page_size=16)]
            if positions != list(range(1, len(positions) + 1)):
                problems.append(str(positions))
        return problems

    with ThreadPoolExecutor(2) as pool:
        replayers = [pool.submit(replay_until_done) for _ in range(2)]
        for i in range(100):
            store.append(create_agent_started_event(f"b{i % 5}"))
        done.set()
        assert [r.result(TIMEOUT) for r in replayers] == [[], []]
    assert len(list(store.replay(page_size=7))) == 150


def test_large_replay_in_small_pages(store: EventStore) -> None:
    """Thousands of events replay completely through small pages."""
    for _ in range(10):
        store.append_many([create_agent_started_event("bulk") for _ in range(200)])
    count = 0
    last = 0
    for event in store.replay(page_size=64):
        count += 1
        assert event.position == last + 1
        last = event.position
    assert count == 2000


def test_a_replay_outliving_its_store_raises_store_closed(
    make_store: Callable[..., EventStore],
) -> None:
    """A replay still iterated after shutdown() raises StoreClosedError when
    it needs its next page (never a driver error)."""
    store = make_store()
    for _ in range(6):
        store.append(create_agent_started_event("a1"))
    replay = store.replay(page_size=2)
    next(replay)
    store.shutdown()
    with pytest.raises(StoreClosedError):
        list(replay)
