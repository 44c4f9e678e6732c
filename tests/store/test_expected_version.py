"""expected_version: ANY, NO_STREAM, STREAM_EXISTS and exact versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    ConcurrencyError,
    create_agent_started_event,
)

if TYPE_CHECKING:
    from swarmlog import EventStore


def _fill(store: EventStore, aggregate_id: str, count: int) -> None:
    for _ in range(count):
        store.append(create_agent_started_event(aggregate_id))


def test_any_appends_whatever_the_version(store: EventStore) -> None:
    """ANY never conflicts, on a new or an existing aggregate."""
    assert (
        store.append(create_agent_started_event("a1"), expected_version=ANY).version
        == 1
    )
    assert (
        store.append(create_agent_started_event("a1"), expected_version=ANY).version
        == 2
    )


def test_no_stream_on_a_new_aggregate(store: EventStore) -> None:
    """NO_STREAM succeeds when the aggregate has no events."""
    stored = store.append(create_agent_started_event("a1"), expected_version=NO_STREAM)
    assert stored.version == 1


def test_no_stream_on_an_existing_aggregate(store: EventStore) -> None:
    """NO_STREAM conflicts once the aggregate exists, carrying the facts."""
    _fill(store, "a1", 2)
    with pytest.raises(ConcurrencyError) as info:
        store.append(create_agent_started_event("a1"), expected_version=NO_STREAM)
    assert info.value.aggregate_id == "a1"
    assert info.value.expected == NO_STREAM
    assert info.value.actual == 2
    assert len(store.get_events("a1")) == 2


def test_stream_exists_on_a_new_aggregate(store: EventStore) -> None:
    """STREAM_EXISTS conflicts on an aggregate with no events (actual 0)."""
    with pytest.raises(ConcurrencyError) as info:
        store.append(create_agent_started_event("a1"), expected_version=STREAM_EXISTS)
    assert (info.value.aggregate_id, info.value.actual) == ("a1", 0)
    assert info.value.expected == STREAM_EXISTS
    assert store.get_events("a1") == []


def test_stream_exists_on_an_existing_aggregate(store: EventStore) -> None:
    """STREAM_EXISTS succeeds once the aggregate has an event."""
    _fill(store, "a1", 1)
    stored = store.append(
        create_agent_started_event("a1"), expected_version=STREAM_EXISTS
    )
    assert stored.version == 2


def test_exact_version_matches(store: EventStore) -> None:
    """An exact int equal to the current version appends the next one."""
    _fill(store, "a1", 3)
    stored = store.append(create_agent_started_event("a1"), expected_version=3)
    assert stored.version == 4


@pytest.mark.parametrize("expected", [1, 2, 4, 100])
def test_exact_version_mismatch(store: EventStore, expected: int) -> None:
    """A wrong exact version raises ConcurrencyError with expected and actual."""
    _fill(store, "a1", 3)
    with pytest.raises(ConcurrencyError) as info:
        store.append(create_agent_started_event("a1"), expected_version=expected)
    assert (info.value.aggregate_id, info.value.expected, info.value.actual) == (
        "a1",
        expected,
        3,
    )
    assert len(store.get_events("a1")) == 3
    assert store.head_position == 3


def test_zero_means_no_stream(store: EventStore) -> None:
    """Expected version 0 succeeds on a new aggregate and conflicts after."""
    assert (
        store.append(create_agent_started_event("a1"), expected_version=0).version == 1
    )
    with pytest.raises(ConcurrencyError) as info:
        store.append(create_agent_started_event("a1"), expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)


def test_a_conflict_consumes_no_position(store: EventStore) -> None:
    """Positions stay gap-free across a rejected append."""
    _fill(store, "a1", 1)
    with pytest.raises(ConcurrencyError):
        store.append(create_agent_started_event("a1"), expected_version=5)
    assert store.append(create_agent_started_event("a2")).position == 2
    assert [e.position for e in store.replay()] == [1, 2]


def test_expected_versions_are_per_aggregate(store: EventStore) -> None:
    """Another aggregate's events do not count toward this one's version."""
    _fill(store, "a1", 2)
    _fill(store, "a2", 5)
    stored = store.append(create_agent_started_event("a1"), expected_version=2)
    assert (stored.version, stored.position) == (3, 8)


def test_optimistic_loop_reads_then_appends(store: EventStore) -> None:
    """The read-decide-append loop: version from get_events, then expect it."""
    for _ in range(5):
        version = len(store.get_events("a1"))
        store.append(create_agent_started_event("a1"), expected_version=version)
    assert [e.version for e in store.get_events("a1")] == [1, 2, 3, 4, 5]
