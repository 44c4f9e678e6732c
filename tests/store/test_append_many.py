"""append_many(): all or nothing, in one transaction, across aggregates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ConcurrencyError,
    DuplicateEventError,
    InvalidEventError,
    SwarmlogError,
    create_agent_started_event,
    create_task_queued_event,
    create_task_started_event,
)

if TYPE_CHECKING:
    from swarmlog import EventStore

TIMEOUT = 10.0


def test_returns_stored_events_in_the_order_given(store: EventStore) -> None:
    """Stored copies come back in input order with contiguous positions."""
    events = [
        create_agent_started_event("a1"),
        create_task_queued_event("t1", "high"),
        create_agent_started_event("a1"),
        create_agent_started_event("a2"),
    ]
    stored = store.append_many(events)
    assert [e.id for e in stored] == [e.id for e in events]
    assert [e.position for e in stored] == [1, 2, 3, 4]
    assert [e.version for e in stored] == [1, 1, 2, 1]
    assert list(store.replay()) == stored
    assert all(e.version == 0 and e.position == 0 for e in events)


def test_accepts_any_iterable(store: EventStore) -> None:
    """A generator of events works like a list."""
    stored = store.append_many(create_agent_started_event("a1") for _ in range(3))
    assert [e.version for e in stored] == [1, 2, 3]


def test_empty_batch_returns_empty_list(store: EventStore) -> None:
    """Nothing to append gives [] and stores nothing."""
    assert store.append_many([]) == []
    assert store.head_position == 0


def test_one_expected_version_applies_to_every_aggregate(store: EventStore) -> None:
    """A single expected value is checked for each aggregate in the batch."""
    stored = store.append_many(
        [create_agent_started_event("a1"), create_agent_started_event("a2")],
        expected_version=NO_STREAM,
    )
    assert [e.version for e in stored] == [1, 1]
    with pytest.raises(ConcurrencyError) as info:
        store.append_many(
            [create_agent_started_event("a3"), create_agent_started_event("a1")],
            expected_version=NO_STREAM,
        )
    assert (info.value.aggregate_id, info.value.actual) == ("a1", 1)
    assert store.get_events("a3") == []
    assert store.head_position == 2


def test_exact_version_is_the_version_before_the_batch(store: EventStore) -> None:
    """Several events of one aggregate: expected is its version before them."""
    store.append_many([create_agent_started_event("a1") for _ in range(2)])
    stored = store.append_many(
        [create_agent_started_event("a1") for _ in range(3)], expected_version=2
    )
    assert [e.version for e in stored] == [3, 4, 5]


def test_a_conflict_stores_nothing_of_the_batch(store: EventStore) -> None:
    """One conflicting aggregate fails the whole batch; no position is used."""
    store.append(create_agent_started_event("a1"))
    with pytest.raises(ConcurrencyError):
        store.append_many(
            [
                create_agent_started_event("a2"),
                create_agent_started_event("a1"),
                create_agent_started_event("a3"),
            ],
            expected_version=0,
        )
    assert store.get_events("a2") == []
    assert store.get_events("a3") == []
    assert store.append(create_agent_started_event("a4")).position == 2


def test_mapping_of_expected_versions(store: EventStore) -> None:
    """A mapping gives each aggregate its own expectation; others are ANY."""
    store.append(create_agent_started_event("a1"))
    store.append(create_agent_started_event("a2"))
    stored = store.append_many(
        [
            create_agent_started_event("a1"),
            create_agent_started_event("a2"),
            create_agent_started_event("a3"),
            create_agent_started_event("a4"),
        ],
        expected_version={"a1": 1, "a2": STREAM_EXISTS, "a3": NO_STREAM},
    )
    assert [e.version for e in stored] == [2, 2, 1, 1]


def test_mapping_with_one_mismatch_stores_nothing(store: EventStore) -> None:
    """One wrong entry in the mapping fails the whole batch."""
    store.append(create_agent_started_event("a1"))
    with pytest.raises(ConcurrencyError) as info:
        store.append_many(
            [create_agent_started_event("a1"), create_agent_started_event("a2")],
            expected_version={"a1": ANY, "a2": STREAM_EXISTS},
        )
    assert (info.value.aggregate_id, info.value.actual) == ("a2", 0)
    assert store.head_position == 1


def test_an_invalid_event_stores_nothing_of_the_batch(store: EventStore) -> None:
    """A malformed event anywhere in the batch rejects all of it."""
    bad = msgspec.structs.replace(create_agent_started_event("a2"), source="")
    with pytest.raises(InvalidEventError):
        store.append_many([create_agent_started_event("a1"), bad])
    assert store.head_position == 0
    assert store.get_stats().total_events == 0


def test_an_aggregate_type_clash_stores_nothing(store: EventStore) -> None:
    """An aggregate id used as two aggregate types in one batch is refused."""
    with pytest.raises(InvalidEventError):
        store.append_many(
            [create_agent_started_event("x1"), create_task_started_event("x1", "a")]
        )
    assert store.get_events("x1") == []
    assert store.head_position == 0


def test_the_same_event_twice_in_one_batch_is_a_typed_error(
    store: EventStore,
) -> None:
    """Repeating an event inside one batch raises a duplicate/invalid-event
    error, not a retryable storage error; nothing is stored."""
    event = create_agent_started_event("a1")
    with pytest.raises(SwarmlogError) as info:
        store.append_many([event, event])
    assert store.head_position == 0
    assert isinstance(info.value, DuplicateEventError | InvalidEventError)


def test_a_batch_is_not_interleaved_with_concurrent_appends(
    store: EventStore,
) -> None:
    """A batch committed alongside single appends keeps contiguous positions."""
    stop = threading.Event()

    def single_appends() -> int:
        count = 0
        while not stop.is_set():
            store.append(create_agent_started_event("single"))
            count += 1
        return count

    with ThreadPoolExecutor(3) as pool:
        workers = [pool.submit(single_appends) for _ in range(3)]
        batches = [
            store.append_many([create_agent_started_event(f"b{i}") for _ in range(25)])
            for i in range(4)
        ]
        stop.set()
        singles = sum(w.result(TIMEOUT) for w in workers)
    for batch in batches:
        positions = [e.position for e in batch]
        assert positions == list(range(positions[0], positions[0] + 25))
    assert store.head_position == singles + 100
