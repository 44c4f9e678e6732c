"""append(): stored copies, versions, positions, validation before the write."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    AgentStarted,
    Event,
    InvalidEventError,
    SwarmlogError,
    TaskStarted,
    UnknownEventTypeError,
    create_agent_failed_event,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_agent_stopped_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_event,
    create_memory_deleted_event,
    create_memory_expired_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_milestone_reached_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
    create_task_blocked_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
    create_task_queued_event,
    create_task_started_event,
    register_event_type,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog import EventStore

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


class DeployFinished(msgspec.Struct, frozen=True, kw_only=True):
    """A user-defined payload, registered below."""

    deploy_id: str
    ok: bool
    finished_at: datetime
    steps: tuple[str, ...] = ()


register_event_type(
    DeployFinished, type="test-store:deploy-finished", aggregate_type="test-deploy"
)


def one_of_each() -> list[Event]:
    """One event of every built-in type (23), via the public factories."""
    return [
        create_agent_spawned_event("agent-1", "coder", "core", ("py", "sql")),
        create_agent_started_event("agent-1"),
        create_agent_status_changed_event("agent-1", "idle", "busy"),
        create_agent_task_assigned_event("agent-1", "task-1"),
        create_agent_task_completed_event(
            "agent-1", "task-1", {"lines": 12, "ok": True}, T0, 1500
        ),
        create_agent_failed_event("agent-1", ValueError("boom")),
        create_agent_stopped_event("agent-1", "done"),
        create_task_created_event(
            "task-1", "code", "Title", "Describe", "high", ("task-0",)
        ),
        create_task_queued_event("task-1", "high"),
        create_task_blocked_event("task-1", ["task-0"]),
        create_task_started_event("task-1", "agent-1"),
        create_task_failed_event("task-1", "flaky", 2),
        create_task_completed_event("task-1", [1, "two", None], duration=30),
        create_memory_stored_event("mem-1", "ns", "key", "text", 42),
        create_memory_retrieved_event("mem-1", "ns", "key", 3),
        create_memory_expired_event("mem-1", "ns", "key", T0),
        create_memory_deleted_event("mem-1", "ns", "key"),
        create_swarm_initialized_event("mesh", 8, {"a": [1, 2.5, None]}),
        create_swarm_scaled_event(2, 4, "load"),
        create_swarm_phase_changed_event("plan", "build"),
        create_swarm_milestone_reached_event("m1", "first"),
        create_swarm_error_event("oops", {"where": "here"}),
        create_swarm_terminated_event("done", {"events": 23}),
    ]


def test_append_returns_stored_copy_with_version_and_position(
    store: EventStore,
) -> None:
    """The stored event is a new object with version and position set."""
    event = create_agent_started_event("a1")
    stored = store.append(event)
    assert stored is not event
    assert (stored.version, stored.position) == (1, 1)
    assert msgspec.structs.replace(stored, version=0, position=0) == event


def test_append_leaves_the_callers_event_unchanged(store: EventStore) -> None:
    """The caller's event keeps version 0 and position 0."""
    event = create_agent_started_event("a1")
    before = msgspec.structs.asdict(event)
    store.append(event)
    assert msgspec.structs.asdict(event) == before
    assert (event.version, event.position) == (0, 0)


def test_reads_return_what_append_returned(store: EventStore) -> None:
    """get_events and replay give back events equal to the stored copies."""
    stored = [store.append(create_agent_started_event("a1")) for _ in range(3)]
    assert store.get_events("a1") == stored
    assert list(store.replay()) == stored


def test_versions_are_per_aggregate_and_positions_global(store: EventStore) -> None:
    """Versions count per aggregate from 1; positions are global and gap-free."""
    ids = ["a1", "a2", "a3"]
    stored = [store.append(create_agent_started_event(ids[i % 3])) for i in range(12)]
    assert [e.position for e in stored] == list(range(1, 13))
    for aggregate_id in ids:
        versions = [e.version for e in stored if e.aggregate_id == aggregate_id]
        assert versions == [1, 2, 3, 4]


def test_every_builtin_event_type_round_trips(store: EventStore) -> None:
    """Each of the 23 built-in types appends and reads back equal."""
    events = one_of_each()
    assert len({e.type for e in events}) == 23
    stored = [store.append(e) for e in events]
    assert list(store.replay()) == stored
    for original, copy in zip(events, stored, strict=True):
        assert copy.type == original.type
        assert copy.payload == original.payload or (
            msgspec.to_builtins(copy.payload) == msgspec.to_builtins(original.payload)
        )


def test_a_registered_custom_type_appends_like_a_builtin(store: EventStore) -> None:
    """A user-registered payload class stores and reads back as that class."""
    payload = DeployFinished(deploy_id="d1", ok=True, finished_at=T0, steps=("a",))
    stored = store.append(create_event(payload, "d1"))
    assert stored.aggregate_type == "test-deploy"
    (read,) = store.get_events("d1")
    assert read == stored
    assert isinstance(read.payload, DeployFinished)
    assert read.payload == payload


def test_envelope_fields_round_trip(store: EventStore) -> None:
    """Timestamp (to the microsecond), metadata, ids and source read back equal."""
    event = create_agent_started_event(
        "a1",
        timestamp=T0,
        metadata={"trace": [1, 2, {"x": None}], "ok": True, "f": 1.5},
        causation_id="cause-1",
        correlation_id="corr-1",
        source="agent-runtime",
    )
    stored = store.append(event)
    (read,) = store.get_events("a1")
    assert read == stored
    assert read.timestamp == T0
    assert read.timestamp.utcoffset() == timedelta(0)
    assert read.metadata == event.metadata
    assert (read.causation_id, read.correlation_id) == ("cause-1", "corr-1")
    assert read.source == "agent-runtime"
    assert read.id == event.id


def _replace(event: Event, **changes: Any) -> Event:
    return msgspec.structs.replace(event, **changes)


NAIVE = datetime(2024, 1, 1)
PLUS_ONE = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))

INVALID_EVENTS: list[tuple[str, Callable[[], Any], type[SwarmlogError]]] = [
    (
        "unknown type",
        lambda: _replace(create_agent_started_event("bad"), type="nope:nope"),
        UnknownEventTypeError,
    ),
    (
        "naive timestamp",
        lambda: _replace(create_agent_started_event("bad"), timestamp=NAIVE),
        InvalidEventError,
    ),
    (
        "non-UTC timestamp",
        lambda: _replace(create_agent_started_event("bad"), timestamp=PLUS_ONE),
        InvalidEventError,
    ),
    (
        "naive payload instant",
        lambda: _replace(
            create_agent_started_event("bad"),
            payload=AgentStarted(agent_id="bad", started_at=NAIVE),
        ),
        InvalidEventError,
    ),
    (
        "payload of another class",
        lambda: _replace(
            create_agent_started_event("bad"),
            payload=TaskStarted(task_id="t", agent_id="bad", started_at=T0),
        ),
        InvalidEventError,
    ),
    (
        "wrongly typed payload field",
        lambda: _replace(
            create_agent_started_event("bad"),
            payload=AgentStarted(agent_id=123, started_at=T0),  # type: ignore[arg-type]
        ),
        InvalidEventError,
    ),
    (
        "aggregate type not the event type's",
        lambda: _replace(create_agent_started_event("bad"), aggregate_type="task"),
        InvalidEventError,
    ),
    (
        "empty aggregate id",
        lambda: create_agent_started_event(""),
        InvalidEventError,
    ),
    (
        "metadata not JSON-like",
        lambda: create_agent_started_event("bad", metadata={"x": object()}),
        InvalidEventError,
    ),
    ("not an Event", lambda: {"type": "agent:started"}, InvalidEventError),
]


@pytest.mark.parametrize(
    ("make", "error"),
    [pytest.param(m, e, id=name) for name, m, e in INVALID_EVENTS],
)
def test_invalid_events_are_rejected_and_nothing_is_stored(
    store: EventStore, make: Callable[[], Any], error: type[SwarmlogError]
) -> None:
    """A malformed event raises a typed error; nothing is stored; the store
    keeps working."""
    store.append(create_agent_started_event("good"))
    with pytest.raises(error):
        store.append(make())
    assert store.get_events("bad") == []
    assert store.get_stats().total_events == 1
    assert store.append(create_agent_started_event("good")).position == 2


def test_aggregate_type_mismatch_with_a_stored_aggregate(store: EventStore) -> None:
    """An aggregate id belongs to one aggregate type."""
    store.append(create_agent_started_event("x1"))
    with pytest.raises(InvalidEventError):
        store.append(create_task_started_event("x1", "agent-9"))
    assert [e.type for e in store.get_events("x1")] == ["agent:started"]
    assert store.append(create_agent_started_event("x1")).version == 2


def test_oversize_payload_is_rejected(make_store: Callable[..., EventStore]) -> None:
    """A payload over max_payload_bytes raises InvalidEventError."""
    store = make_store(max_payload_bytes=1024)
    big = create_task_completed_event("t1", "x" * 4096)
    with pytest.raises(InvalidEventError):
        store.append(big)
    assert store.get_events("t1") == []
    assert store.append(create_task_completed_event("t1", "small")).position == 1


def test_wrongly_typed_expected_version_is_rejected(store: EventStore) -> None:
    """expected_version must be ANY/NO_STREAM/STREAM_EXISTS or an int >= 0."""
    for bad in ("1", -1, 1.0, True, None):
        with pytest.raises(SwarmlogError):
            store.append(create_agent_started_event("a1"), expected_version=bad)  # type: ignore[arg-type]
    assert store.get_events("a1") == []


def test_appended_ids_are_unique_and_time_ordered(store: EventStore) -> None:
    """Factory ids are UUIDs in UUIDv7 layout, increasing with time."""
    stored = [store.append(create_agent_started_event("a1")) for _ in range(20)]
    ids = [e.id for e in stored]
    assert len(set(ids)) == 20
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    assert [i.bytes[:6] for i in ids] == sorted(i.bytes[:6] for i in ids)


def test_append_in_every_synchronous_mode(
    make_store: Callable[..., EventStore], synchronous: str
) -> None:
    """Both durability levels append and read back the same way."""
    store = make_store(synchronous=synchronous)
    stored = [store.append(create_agent_started_event("a1")) for _ in range(5)]
    assert store.get_events("a1") == stored
    assert store.head_position == 5


def test_caller_set_version_and_position_are_ignored(store: EventStore) -> None:
    """The store assigns version and position, whatever the event carries
    (e.g. an event copied from another store)."""
    foreign = msgspec.structs.replace(
        create_agent_started_event("a1"), version=7, position=99
    )
    stored = store.append(foreign)
    assert (stored.version, stored.position) == (1, 1)
    assert store.head_position == 1


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1900, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
    ids=str,
)
def test_extreme_timestamps_round_trip(store: EventStore, instant: datetime) -> None:
    """Instants far before and after the epoch read back equal."""
    stored = store.append(create_agent_started_event("a1", timestamp=instant))
    (read,) = store.get_events("a1")
    assert read == stored
    assert read.timestamp == instant
    assert read.payload.started_at == instant


@pytest.mark.parametrize(
    "value",
    [("a", "b"), {1, 2}, uuid.UUID(int=7), Decimal("1.5"), date(2024, 1, 2)],
    ids=["tuple", "set", "uuid", "decimal", "date"],
)
def test_metadata_is_refused_or_reads_back_as_returned(
    store: EventStore, value: object
) -> None:
    """Metadata is JSON-like: a value that is not either raises
    InvalidEventError, or the event append returned equals the one read."""
    try:
        stored = store.append(create_agent_started_event("a1", metadata={"v": value}))
    except InvalidEventError:
        assert store.get_events("a1") == []
        return
    assert store.get_events("a1") == [stored]
