"""The two success rates, defined side by side, and the memory read model's
own retrieval count next to the payload's optional ``access_count``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    TaskHistoryProjection,
)
from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
    create_task_started_event,
)
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Iterator

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store() -> Iterator[EventStore]:
    """An initialised in-memory store, shut down afterwards."""
    event_store = EventStore(":memory:").initialize()
    yield event_store
    event_store.shutdown()


def test_agent_rate_counts_retries_task_rate_counts_final_status(
    store: EventStore,
) -> None:
    """t1 fails twice then completes, t2 completes: the agent finished 2 of
    4 attempts (retries included), the tasks read model 2 of 2 tasks."""
    agents = AgentStateProjection(store).initialize()
    tasks = TaskHistoryProjection(store).initialize()
    events = [create_agent_spawned_event("a1", "coder", "core", timestamp=at(0))]
    for task_id in ("t1", "t2"):
        events.append(
            create_task_created_event(task_id, "code", "T", "d", "low", timestamp=at(1))
        )
        events.append(create_agent_task_assigned_event("a1", task_id, timestamp=at(2)))
        events.append(create_task_started_event(task_id, "a1", timestamp=at(3)))
    for retry in (0, 1):
        events.append(create_task_failed_event("t1", "flaky", retry, timestamp=at(4)))
    for task_id in ("t1", "t2"):
        events.append(
            create_agent_task_completed_event("a1", task_id, None, at(5), 100)
        )
        events.append(create_task_completed_event(task_id, None, 100, timestamp=at(5)))
    for event in events:
        store.append(event)
    health = agents.get_agent_health("a1", now=at(10))
    assert health is not None
    assert (health.completed_count, health.failed_count) == (2, 2)
    assert health.success_rate == 0.5
    assert tasks.get_success_rate(agent_id="a1") == 1.0
    assert tasks.get_failure_rate(agent_id="a1") == 0.0


def test_memory_counts_retrievals_whatever_access_count_says(
    store: EventStore,
) -> None:
    """Retrievals without a count, and with the caller's own count, each
    add one; the payload keeps what the caller said."""
    memory = MemoryIndexProjection(store).initialize()
    store.append(create_memory_stored_event("m1", "ns", "k", "json", 10))
    store.append(create_memory_retrieved_event("m1", "ns", "k"))
    store.append(create_memory_retrieved_event("m1", "ns", "k", 41))
    entry = memory.get_memory("m1")
    assert entry is not None
    assert entry.access_count == 2
    counts = [e.payload.access_count for e in store.get_events("m1")[1:]]
    assert counts == [None, 41]
