"""get_events and get_events_by_type: order, bounds, isolation, plain data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    EventStore,
    InvalidQueryError,
    create_agent_started_event,
    create_agent_stopped_event,
    create_task_queued_event,
)
from tests.store.conftest import outside_writer

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 10.0


def test_unknown_aggregate_gives_empty_list(store: EventStore) -> None:
    """An aggregate with no events reads as []."""
    assert store.get_events("nobody") == []
    store.append(create_agent_started_event("a1"))
    assert store.get_events("nobody") == []


def test_events_in_version_order(store: EventStore) -> None:
    """An aggregate's events come back in ascending version, only its own."""
    for i in range(6):
        store.append(create_agent_started_event(f"a{i % 2}"))
    events = store.get_events("a1")
    assert [e.version for e in events] == [1, 2, 3]
    assert {e.aggregate_id for e in events} == {"a1"}
    assert [e.position for e in events] == [2, 4, 6]


@pytest.mark.parametrize(
    ("from_version", "expected"),
    [
        (None, [1, 2, 3, 4]),
        (0, [1, 2, 3, 4]),
        (1, [1, 2, 3, 4]),
        (3, [3, 4]),
        (4, [4]),
        (5, []),
    ],
)
def test_from_version_is_inclusive(
    store: EventStore, from_version: int | None, expected: list[int]
) -> None:
    """from_version includes that version; beyond the last gives []."""
    for _ in range(4):
        store.append(create_agent_started_event("a1"))
    events = store.get_events("a1", from_version=from_version)
    assert [e.version for e in events] == expected


@pytest.mark.parametrize(
    ("aggregate_id", "from_version"),
    [
        (1, None),
        (None, None),
        (b"a1", None),
        ("a1", -1),
        ("a1", "2"),
        ("a1", 1.5),
        ("a1", True),
    ],
)
def test_get_events_rejects_wrong_arguments(
    store: EventStore, aggregate_id: object, from_version: object
) -> None:
    """Wrongly typed or negative arguments raise InvalidQueryError."""
    with pytest.raises(InvalidQueryError):
        store.get_events(aggregate_id, from_version=from_version)  # type: ignore[arg-type]


def test_reads_return_new_lists_of_frozen_events(store: EventStore) -> None:
    """Changing a returned list does not change the next read; events are
    frozen."""
    store.append(create_agent_started_event("a1"))
    first = store.get_events("a1")
    first.clear()
    assert len(store.get_events("a1")) == 1
    event = store.get_events("a1")[0]
    with pytest.raises(AttributeError):
        event.version = 9  # type: ignore[misc]


def test_events_by_type_in_commit_order(store: EventStore) -> None:
    """Every event of one type, across aggregates, by position."""
    store.append(create_agent_started_event("a2"))
    store.append(create_task_queued_event("t1", "low"))
    store.append(create_agent_started_event("a1"))
    store.append(create_agent_stopped_event("a1", "done"))
    store.append(create_agent_started_event("a2"))
    started = store.get_events_by_type("agent:started")
    assert [(e.aggregate_id, e.position) for e in started] == [
        ("a2", 1),
        ("a1", 3),
        ("a2", 5),
    ]
    assert [e.position for e in store.get_events_by_type("task:queued")] == [2]
    assert store.get_events_by_type("memory:stored") == []
    assert store.get_events_by_type("no:such-type") == []


@pytest.mark.parametrize("event_type", [None, 1, ["agent:started"]])
def test_events_by_type_rejects_non_strings(
    store: EventStore, event_type: object
) -> None:
    """A non-string event type raises InvalidQueryError."""
    with pytest.raises(InvalidQueryError):
        store.get_events_by_type(event_type)  # type: ignore[arg-type]


def test_read_your_writes_from_another_thread(store: EventStore) -> None:
    """Once append returns, every thread's read sees the event."""
    stored = store.append(create_agent_started_event("a1"))
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(store.get_events, "a1").result(TIMEOUT)
    assert seen == [stored]


def test_readers_never_see_part_of_a_batch(store: EventStore) -> None:
    """Reads running while batches commit see whole batches only, with
    gap-free positions."""
    done = threading.Event()
    problems: list[str] = []

    def read() -> int:
        reads = 0
        while not done.is_set() or reads == 0:
            events = store.query(aggregate_types=["agent"])
            positions = [e.position for e in events]
            if len(events) % 10 or positions != list(range(1, len(events) + 1)):
                problems.append(f"saw {positions}")
            reads += 1
        return reads

    with ThreadPoolExecutor(3) as pool:
        readers = [pool.submit(read) for _ in range(3)]
        for i in range(20):
            store.append_many([create_agent_started_event(f"a{i}") for _ in range(10)])
        done.set()
        assert all(r.result(TIMEOUT) > 0 for r in readers)
    assert problems == []


FOREIGN_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    import msgspec
    from swarmlog import EventStore, create_event, register_event_type

    class Foreign(msgspec.Struct, frozen=True):
        name: str
        count: int
        tags: tuple[str, ...]

    register_event_type(
        Foreign, type="test-store:foreign-only", aggregate_type="test-foreign"
    )
    with EventStore(sys.argv[1]) as store:
        store.append(create_event(Foreign("x", 3, ("a", "b")), "f1"))
    """
)


def test_unregistered_types_read_back_as_plain_data(tmp_path: Path) -> None:
    """An event type registered only in the process that wrote it reads back
    with its payload as plain data, without failing."""
    path = tmp_path / "foreign.db"
    subprocess.run(
        [sys.executable, "-c", FOREIGN_WRITER, str(path)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    with EventStore(path, read_only=True) as store:
        (event,) = store.get_events("f1")
        assert list(store.replay()) == [event]
        assert store.get_events_by_type("test-store:foreign-only") == [event]
    assert event.type == "test-store:foreign-only"
    assert event.aggregate_type == "test-foreign"
    assert event.payload == {"name": "x", "count": 3, "tags": ["a", "b"]}


def test_reads_do_not_queue_behind_the_writer(store: EventStore) -> None:
    """While the writer is stuck on a commit (an outside connection holds
    SQLite's write lock), reads still answer: the pending append is still
    pending after they return."""
    stored = store.append(create_agent_started_event("a1"))
    blocker = outside_writer(store)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        pending = store.append_async(create_agent_started_event("a1"))
        assert store.get_events("a1") == [stored]
        assert store.get_events_by_type("agent:started") == [stored]
        assert store.query(aggregate_ids=["a1"]) == [stored]
        assert list(store.replay()) == [stored]
        assert store.get_stats().total_events == 1
        assert store.get_snapshot("a1") is None
        assert not pending.done()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert pending.get(TIMEOUT).version == 2


def test_head_position_follows_appends(store: EventStore) -> None:
    """head_position is 0 when empty and at least the position of every
    append that returned."""
    assert store.head_position == 0
    for _ in range(3):
        stored = store.append(create_agent_started_event("a1"))
        assert store.head_position >= stored.position
    assert store.head_position == 3


@pytest.mark.parametrize(
    "aggregate_id",
    ["агент-🐝", "x" * 1000, "with space/and:colon", "a1\x00hidden"],
    ids=["unicode", "long", "punctuation", "nul"],
)
def test_any_string_is_an_aggregate_id(store: EventStore, aggregate_id: str) -> None:
    """Aggregate ids are matched exactly, whatever characters they hold."""
    stored = store.append(create_agent_started_event(aggregate_id))
    store.append(create_agent_started_event("a1"))
    assert store.get_events(aggregate_id) == [stored]
    assert store.query(aggregate_ids=[aggregate_id]) == [stored]
    assert store.get_stats().events_by_aggregate[aggregate_id] == 1
