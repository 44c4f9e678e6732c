"""get_stats(): counts, instants, sizes and writer metrics."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from swarmlog import (
    EventStoreStats,
    Snapshot,
    create_agent_started_event,
    create_memory_stored_event,
    create_task_queued_event,
)

if TYPE_CHECKING:
    from swarmlog import EventStore

T0 = datetime(2024, 2, 2, 2, 2, 2, 222222, tzinfo=UTC)


def test_empty_store(store: EventStore) -> None:
    """An empty store reports zeros, empty maps and no instants."""
    stats = store.get_stats()
    assert isinstance(stats, EventStoreStats)
    assert stats.total_events == 0
    assert stats.events_by_type == {}
    assert stats.events_by_aggregate == {}
    assert stats.oldest_event is None
    assert stats.newest_event is None
    assert stats.snapshot_count == 0
    assert stats.head_position == 0
    assert stats.database_size_bytes > 0
    assert (stats.appends, stats.transactions, stats.mean_batch_size) == (0, 0, 0.0)


def test_counts_by_type_and_aggregate(store: EventStore) -> None:
    """Totals and breakdowns match what was appended."""
    store.append(create_agent_started_event("a1"))
    store.append(create_agent_started_event("a1"))
    store.append(create_agent_started_event("a2"))
    store.append(create_task_queued_event("t1", "low"))
    store.append(create_memory_stored_event("m1", "ns", "k", "text", 3))
    stats = store.get_stats()
    assert stats.total_events == 5
    assert stats.head_position == 5
    assert stats.events_by_type == {
        "agent:started": 3,
        "task:queued": 1,
        "memory:stored": 1,
    }
    assert stats.events_by_aggregate == {"a1": 2, "a2": 1, "t1": 1, "m1": 1}


def test_oldest_and_newest_are_by_timestamp(store: EventStore) -> None:
    """oldest/newest are the smallest and largest timestamps, whatever the
    commit order, and read back exactly."""
    late = T0 + timedelta(days=1, microseconds=1)
    early = T0 - timedelta(hours=3)
    store.append(create_agent_started_event("a1", timestamp=T0))
    store.append(create_agent_started_event("a1", timestamp=late))
    store.append(create_agent_started_event("a1", timestamp=early))
    stats = store.get_stats()
    assert stats.oldest_event == early
    assert stats.newest_event == late
    assert stats.newest_event.tzinfo is not None  # type: ignore[union-attr]


def test_snapshot_count(store: EventStore) -> None:
    """snapshot_count counts aggregates with a snapshot."""
    for aggregate_id in ("a1", "a2", "a3"):
        store.save_snapshot(Snapshot(aggregate_id, "agent", 1, {}, T0))
    assert store.get_stats().snapshot_count == 3


def test_writer_metrics_after_sequential_appends(store: EventStore) -> None:
    """One caller appending in turn: one request per transaction."""
    for _ in range(4):
        store.append(create_agent_started_event("a1"))
    store.append_many([create_agent_started_event("a1") for _ in range(3)])
    stats = store.get_stats()
    assert stats.appends == 5
    assert stats.transactions == 5
    assert stats.mean_batch_size == pytest.approx(1.0)
    assert stats.total_events == 7


def test_database_size_grows(store: EventStore) -> None:
    """database_size_bytes reflects appended data."""
    before = store.get_stats().database_size_bytes
    store.append_many(
        [create_task_queued_event(f"t{i}", "x" * 2000) for i in range(50)]
    )
    assert store.get_stats().database_size_bytes > before


def test_stats_is_frozen(store: EventStore) -> None:
    """The stats object is an immutable value."""
    stats = store.get_stats()
    with pytest.raises(AttributeError):
        stats.total_events = 9  # type: ignore[misc]


def test_stats_are_one_consistent_snapshot(store: EventStore) -> None:
    """Read while batches commit, every stats object agrees with itself:
    head == total == sum by type == sum by aggregate."""
    stop = threading.Event()

    def append_batches() -> None:
        i = 0
        while not stop.is_set():
            store.append_many(
                [create_agent_started_event(f"s{i % 5}") for _ in range(3)]
            )
            i += 1

    with ThreadPoolExecutor(2) as pool:
        writers = [pool.submit(append_batches) for _ in range(2)]
        seen = []
        while len(seen) < 100:
            seen.append(store.get_stats())
        stop.set()
        for w in writers:
            w.result(10)
    for stats in seen:
        assert stats.total_events == stats.head_position
        assert sum(stats.events_by_type.values()) == stats.total_events
        assert sum(stats.events_by_aggregate.values()) == stats.total_events
        assert stats.total_events % 3 == 0
