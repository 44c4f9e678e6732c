"""Idempotent retries: the same id with the same content returns the stored
event; the same id with other content is a DuplicateEventError."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import (
    NO_STREAM,
    DuplicateEventError,
    SwarmlogError,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_event,
)

if TYPE_CHECKING:
    from swarmlog import EventStore

TIMEOUT = 10.0


def test_retry_returns_the_stored_event(store: EventStore) -> None:
    """Appending the same event twice stores it once and returns it twice."""
    event = create_agent_started_event("a1")
    first = store.append(event)
    again = store.append(event)
    assert again == first
    assert store.get_events("a1") == [first]
    assert store.head_position == 1


def test_retry_ignores_expected_version(store: EventStore) -> None:
    """A retry after a lost reply succeeds although the version moved on."""
    event = create_agent_started_event("a1")
    first = store.append(event, expected_version=NO_STREAM)
    store.append(create_agent_started_event("a1"))
    assert store.append(event, expected_version=NO_STREAM) == first
    assert store.append(event, expected_version=0) == first
    assert store.append(event, expected_version=7) == first
    assert len(store.get_events("a1")) == 2


def test_retry_after_other_events_keeps_original_position(store: EventStore) -> None:
    """The returned copy is the original one, not a new position."""
    event = create_agent_started_event("a1")
    first = store.append(event)
    for _ in range(3):
        store.append(create_agent_started_event("a2"))
    retried = store.append(event)
    assert retried == first
    assert (retried.version, retried.position) == (1, 1)
    assert store.head_position == 4


def test_same_id_other_payload_is_a_duplicate(store: EventStore) -> None:
    """A different payload under a stored id raises DuplicateEventError."""
    event = create_agent_status_changed_event("a1", "idle", "busy")
    store.append(event)
    other = create_agent_status_changed_event("a1", "idle", "dead", event_id=event.id)
    with pytest.raises(DuplicateEventError) as info:
        store.append(other)
    assert info.value.event_id == event.id
    assert [e.payload.new_status for e in store.get_events("a1")] == ["busy"]


def test_same_id_other_metadata_is_a_duplicate(store: EventStore) -> None:
    """Different metadata under a stored id raises DuplicateEventError."""
    event = create_agent_started_event("a1", metadata={"try": 1})
    store.append(event)
    with pytest.raises(DuplicateEventError):
        store.append(msgspec.structs.replace(event, metadata={"try": 2}))
    assert store.head_position == 1


def test_same_id_other_aggregate_is_a_duplicate(store: EventStore) -> None:
    """The same id on another aggregate raises DuplicateEventError."""
    event = create_agent_started_event("a1")
    store.append(event)
    moved = create_event(event.payload, "a2", event_id=event.id)
    with pytest.raises(DuplicateEventError):
        store.append(moved)
    assert store.get_events("a2") == []


def test_append_many_retry_returns_the_stored_events(store: EventStore) -> None:
    """Retrying a whole append_many returns the stored copies, stores nothing."""
    events = [create_agent_started_event("a1") for _ in range(3)]
    first = store.append_many(events)
    assert store.append_many(events) == first
    assert store.append_many(events, expected_version=NO_STREAM) == first
    assert store.head_position == 3


def test_partial_retry_stores_nothing_new(store: EventStore) -> None:
    """A batch mixing a stored id with new events is refused as a whole."""
    stored = store.append(create_agent_started_event("a1"))
    fresh = create_agent_started_event("a1")
    changed = create_agent_started_event("a1", metadata={"x": 1}, event_id=stored.id)
    with pytest.raises(SwarmlogError):
        store.append_many([changed, fresh])
    assert store.get_events("a1") == [stored]


def test_concurrent_retries_of_one_event_store_it_once(store: EventStore) -> None:
    """Many threads appending the same event at once all get the same stored
    copy (even within one group-commit batch)."""
    event = create_agent_started_event("a1")
    barrier = threading.Barrier(8)

    def append() -> object:
        barrier.wait(TIMEOUT)
        return store.append(event)

    with ThreadPoolExecutor(8) as pool:
        results = [f.result(TIMEOUT) for f in [pool.submit(append) for _ in range(8)]]
    assert all(r == results[0] for r in results)
    assert store.get_events("a1") == [results[0]]
    assert store.head_position == 1


def test_concurrent_async_retries_in_one_batch(store: EventStore) -> None:
    """append_async of one event many times in a row stores it once."""
    event = create_agent_started_event("a1")
    futures = [store.append_async(event) for _ in range(20)]
    results = [f.get(TIMEOUT) for f in futures]
    assert {(r.version, r.position) for r in results} == {(1, 1)}
    assert store.head_position == 1


def test_retry_compares_content_not_envelope(store: EventStore) -> None:
    """Same id, type, aggregate, payload and metadata is a retry even if the
    timestamp, source or causation differ; the stored copy comes back."""
    event = create_agent_started_event("a1", source="first", causation_id="c1")
    first = store.append(event)
    resent = msgspec.structs.replace(
        event,
        timestamp=event.timestamp.replace(year=event.timestamp.year + 1),
        source="second",
        causation_id="c2",
    )
    assert store.append(resent) == first
    assert store.head_position == 1


def test_appending_an_event_read_back_is_a_retry(store: EventStore) -> None:
    """An event read from the store (version and position set) appended
    again returns the stored copy."""
    store.append(create_agent_started_event("a1"))
    (read,) = store.get_events("a1")
    assert store.append(read) == read
    assert store.append_many([read]) == [read]
    assert store.head_position == 1


def test_retry_of_an_event_with_tuple_metadata(store: EventStore) -> None:
    """Metadata the store accepts (tuples stored as lists) does not turn a
    retry of the same event into a duplicate."""
    event = create_agent_started_event("a1", metadata={"path": ("a", "b")})
    first = store.append(event)
    assert store.append(event) == first
