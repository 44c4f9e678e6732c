"""The 23 ``create_*_event`` factories and the generic ``create_event``."""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog.schema import factories
from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES, prepare_event
from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import InvalidEventError, UnknownEventTypeError
from swarmlog.schema.events import (
    ALL_EVENT_TYPES,
    AgentFailed,
    AgentSpawned,
    AgentStarted,
    AgentStatusChanged,
    AgentStopped,
    AgentTaskAssigned,
    AgentTaskCompleted,
    MemoryDeleted,
    MemoryExpired,
    MemoryRetrieved,
    MemoryStored,
    SwarmError,
    SwarmInitialized,
    SwarmMilestoneReached,
    SwarmPhaseChanged,
    SwarmScaled,
    SwarmTerminated,
    TaskBlocked,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskQueued,
    TaskStarted,
)
from swarmlog.schema.factories import (
    DEFAULT_SWARM_ID,
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
)

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2024, 3, 4, 5, 6, 7, 891_011, tzinfo=UTC)
EARLIER = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """One factory, arguments for it and what it must build."""

    factory: Callable[..., Event]
    args: tuple[Any, ...]
    cls: type[msgspec.Struct]
    aggregate_id: str
    aggregate_type: str
    stamped: str | None  # the *_at field the factory fills from ``timestamp``
    fields: dict[str, Any] = field(default_factory=dict)  # expected payload values

    def __str__(self) -> str:
        return self.factory.__name__


CASES = [
    Case(
        create_agent_spawned_event,
        ("a1", "coder", "backend", ["py", "sql"]),
        AgentSpawned,
        "a1",
        "agent",
        None,
        {
            "agent_id": "a1",
            "role": "coder",
            "domain": "backend",
            "capabilities": ("py", "sql"),
        },
    ),
    Case(
        create_agent_started_event,
        ("a1",),
        AgentStarted,
        "a1",
        "agent",
        "started_at",
        {"agent_id": "a1"},
    ),
    Case(
        create_agent_stopped_event,
        ("a1", "done"),
        AgentStopped,
        "a1",
        "agent",
        "stopped_at",
        {"agent_id": "a1", "reason": "done"},
    ),
    Case(
        create_agent_failed_event,
        ("a1", "out of memory"),
        AgentFailed,
        "a1",
        "agent",
        "failed_at",
        {"agent_id": "a1", "error": "out of memory", "stack": None},
    ),
    Case(
        create_agent_status_changed_event,
        ("a1", "idle", "busy"),
        AgentStatusChanged,
        "a1",
        "agent",
        None,
        {"agent_id": "a1", "previous_status": "idle", "new_status": "busy"},
    ),
    Case(
        create_agent_task_assigned_event,
        ("a1", "t1"),
        AgentTaskAssigned,
        "a1",
        "agent",
        "assigned_at",
        {"agent_id": "a1", "task_id": "t1"},
    ),
    Case(
        create_agent_task_completed_event,
        ("a1", "t1", {"ok": True}, EARLIER, 1500),
        AgentTaskCompleted,
        "a1",
        "agent",
        None,
        {
            "agent_id": "a1",
            "task_id": "t1",
            "result": {"ok": True},
            "completed_at": EARLIER,
            "duration": 1500,
        },
    ),
    Case(
        create_task_created_event,
        ("t1", "build", "Build it", "all of it", "high", ["t0"]),
        TaskCreated,
        "t1",
        "task",
        None,
        {
            "task_id": "t1",
            "task_type": "build",
            "title": "Build it",
            "description": "all of it",
            "priority": "high",
            "dependencies": ("t0",),
        },
    ),
    Case(
        create_task_started_event,
        ("t1", "a1"),
        TaskStarted,
        "t1",
        "task",
        "started_at",
        {"task_id": "t1", "agent_id": "a1"},
    ),
    Case(
        create_task_completed_event,
        ("t1", [1, 2], 250),
        TaskCompleted,
        "t1",
        "task",
        "completed_at",
        {"task_id": "t1", "result": [1, 2], "duration": 250},
    ),
    Case(
        create_task_failed_event,
        ("t1", "timeout", 2),
        TaskFailed,
        "t1",
        "task",
        "failed_at",
        {"task_id": "t1", "error": "timeout", "stack": None, "retry_count": 2},
    ),
    Case(
        create_task_blocked_event,
        ("t1", ["t0", "t2"]),
        TaskBlocked,
        "t1",
        "task",
        "blocked_at",
        {"task_id": "t1", "blocked_by": ("t0", "t2")},
    ),
    Case(
        create_task_queued_event,
        ("t1", "low"),
        TaskQueued,
        "t1",
        "task",
        "queued_at",
        {"task_id": "t1", "priority": "low"},
    ),
    Case(
        create_memory_stored_event,
        ("m1", "ns", "k", "json", 128),
        MemoryStored,
        "m1",
        "memory",
        "stored_at",
        {
            "memory_id": "m1",
            "namespace": "ns",
            "key": "k",
            "memory_type": "json",
            "size": 128,
        },
    ),
    Case(
        create_memory_retrieved_event,
        ("m1", "ns", "k", 3),
        MemoryRetrieved,
        "m1",
        "memory",
        "retrieved_at",
        {"memory_id": "m1", "namespace": "ns", "key": "k", "access_count": 3},
    ),
    Case(
        create_memory_deleted_event,
        ("m1", "ns", "k"),
        MemoryDeleted,
        "m1",
        "memory",
        "deleted_at",
        {"memory_id": "m1", "namespace": "ns", "key": "k"},
    ),
    Case(
        create_memory_expired_event,
        ("m1", "ns", "k", LATER),
        MemoryExpired,
        "m1",
        "memory",
        "expired_at",
        {"memory_id": "m1", "namespace": "ns", "key": "k", "expires_at": LATER},
    ),
    Case(
        create_swarm_initialized_event,
        ("mesh", 8, {"retries": 3}),
        SwarmInitialized,
        "swarm",
        "swarm",
        "initialized_at",
        {"topology": "mesh", "max_agents": 8, "config": {"retries": 3}},
    ),
    Case(
        create_swarm_scaled_event,
        (4, 8, "load"),
        SwarmScaled,
        "swarm",
        "swarm",
        "scaled_at",
        {"previous_agent_count": 4, "new_agent_count": 8, "reason": "load"},
    ),
    Case(
        create_swarm_terminated_event,
        ("finished", {"tasks": 10}),
        SwarmTerminated,
        "swarm",
        "swarm",
        "terminated_at",
        {"reason": "finished", "metrics": {"tasks": 10}},
    ),
    Case(
        create_swarm_phase_changed_event,
        ("plan", "execute"),
        SwarmPhaseChanged,
        "swarm",
        "swarm",
        "changed_at",
        {"previous_phase": "plan", "new_phase": "execute"},
    ),
    Case(
        create_swarm_milestone_reached_event,
        ("ms1", "half way"),
        SwarmMilestoneReached,
        "swarm",
        "swarm",
        "reached_at",
        {"milestone_id": "ms1", "name": "half way"},
    ),
    Case(
        create_swarm_error_event,
        ("disk full", {"agent": "a1"}),
        SwarmError,
        "swarm",
        "swarm",
        "error_at",
        {"error": "disk full", "stack": None, "context": {"agent": "a1"}},
    ),
]

SWARM_CASES = [c for c in CASES if c.aggregate_type == "swarm"]
STAMPED_CASES = [c for c in CASES if c.stamped is not None]
ENVELOPE_KEYWORDS = (
    "metadata",
    "causation_id",
    "correlation_id",
    "source",
    "timestamp",
)

each_case = pytest.mark.parametrize("case", CASES, ids=str)


def _raise_and_catch() -> ValueError:
    try:
        msg = "boom from deep inside"
        raise ValueError(msg)
    except ValueError as e:
        return e


def test_there_are_23_factories() -> None:
    """One factory per built-in event type, all exported."""
    names = {c.factory.__name__ for c in CASES}
    assert len(CASES) == 23
    assert len(names) == 23
    assert {c.cls for c in CASES} == set(ALL_EVENT_TYPES)
    exported = {
        n for n in factories.__all__ if n.startswith("create_") and n.endswith("_event")
    }
    assert names == exported - {"create_event"}


@each_case
def test_builds_the_right_event(case: Case) -> None:
    """The factory builds its type, payload class, aggregate id and aggregate type."""
    event = case.factory(*case.args)
    assert isinstance(event, Event)
    assert type(event.payload) is case.cls
    assert event.type == case.cls.__struct_config__.tag
    assert event.aggregate_id == case.aggregate_id
    assert event.aggregate_type == case.aggregate_type
    for name, value in case.fields.items():
        assert getattr(event.payload, name) == value, name
        assert type(getattr(event.payload, name)) is type(value), name


@each_case
def test_envelope_defaults(case: Case) -> None:
    """A fresh event: UUIDv7 id, aware UTC timestamp now, version 0, position 0."""
    before = datetime.now(UTC)
    event = case.factory(*case.args)
    after = datetime.now(UTC)
    assert isinstance(event.id, uuid.UUID)
    assert event.id.version == 7
    assert (event.id.int >> 76) & 0xF == 7
    assert event.id.variant == uuid.RFC_4122
    assert event.timestamp.utcoffset() == timedelta(0)
    assert before <= event.timestamp <= after
    assert (event.version, event.position) == (0, 0)
    assert event.source == "swarm"
    assert event.metadata == {}
    assert (event.causation_id, event.correlation_id) == (None, None)
    assert event.schema_version == 1


@each_case
def test_default_stamp_matches_timestamp(case: Case) -> None:
    """Without ``timestamp=`` the stamped ``*_at`` field equals the event timestamp."""
    event = case.factory(*case.args)
    if case.stamped is not None:
        assert getattr(event.payload, case.stamped) == event.timestamp


@each_case
def test_envelope_keywords_pass_through(case: Case) -> None:
    """The envelope keywords (metadata, ids, source, timestamp) pass through."""
    metadata = {"trace": "abc", "attempt": 2, "tags": ["x"]}
    event = case.factory(
        *case.args,
        metadata=metadata,
        causation_id="cause-1",
        correlation_id="corr-1",
        source="scheduler",
        timestamp=T0,
    )
    assert event.metadata == metadata
    assert event.causation_id == "cause-1"
    assert event.correlation_id == "corr-1"
    assert event.source == "scheduler"
    assert event.timestamp == T0


@pytest.mark.parametrize("case", STAMPED_CASES, ids=str)
def test_timestamp_stamps_payload_instant(case: Case) -> None:
    """A given ``timestamp=`` is also the payload's ``*_at`` instant."""
    event = case.factory(*case.args, timestamp=T0)
    assert getattr(event.payload, case.stamped) == T0  # type: ignore[arg-type]


@each_case
def test_envelope_options_are_keyword_only(case: Case) -> None:
    """The envelope options cannot be passed positionally."""
    params = inspect.signature(case.factory).parameters
    for name in ENVELOPE_KEYWORDS:
        if name in params:
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        else:
            assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    positional = [
        p
        for p in params.values()
        if p.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    assert not {p.name for p in positional} & set(ENVELOPE_KEYWORDS)


@each_case
def test_unknown_keyword_is_rejected(case: Case) -> None:
    """A misspelt envelope keyword is a TypeError, not silently dropped."""
    with pytest.raises(TypeError):
        case.factory(*case.args, correlation="oops")


@each_case
def test_naive_timestamp_rejected(case: Case) -> None:
    """A naive ``timestamp=`` raises InvalidEventError."""
    with pytest.raises(InvalidEventError):
        case.factory(*case.args, timestamp=datetime(2024, 1, 1))


@each_case
def test_non_utc_timestamp_rejected(case: Case) -> None:
    """An aware but non-UTC ``timestamp=`` raises InvalidEventError."""
    plus_one = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidEventError):
        case.factory(*case.args, timestamp=plus_one)


@each_case
def test_non_datetime_timestamp_rejected(case: Case) -> None:
    """A string ``timestamp=`` raises InvalidEventError."""
    with pytest.raises(InvalidEventError):
        case.factory(*case.args, timestamp="2024-01-01T00:00:00Z")


@each_case
def test_factory_output_passes_validation(case: Case) -> None:
    """Every factory's event is accepted by prepare_event as is."""
    event = case.factory(*case.args)
    prepared = prepare_event(event, DEFAULT_MAX_PAYLOAD_BYTES)
    assert prepared.data
    assert type(prepared.value) is case.cls
    assert prepared.value == event.payload


@each_case
def test_ids_increase_across_calls(case: Case) -> None:
    """Consecutive events get distinct, increasing ids."""
    ids = [case.factory(*case.args).id for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


@each_case
def test_event_id_keyword(case: Case) -> None:
    """``event_id=`` sets the id (for idempotent retries)."""
    chosen = uuid.UUID("01890000-0000-7000-8000-000000000001")
    assert case.factory(*case.args, event_id=chosen).id == chosen


# -- swarm id ----------------------------------------------------------------


@pytest.mark.parametrize("case", SWARM_CASES, ids=str)
def test_swarm_id_keyword(case: Case) -> None:
    """Swarm events default to aggregate "swarm"; ``swarm_id=`` picks another."""
    assert DEFAULT_SWARM_ID == "swarm"
    assert case.factory(*case.args).aggregate_id == "swarm"
    other = case.factory(*case.args, swarm_id="swarm-b", timestamp=T0)
    assert other.aggregate_id == "swarm-b"
    assert other.aggregate_type == "swarm"
    assert other.timestamp == T0


# -- errors: exception or string ---------------------------------------------

ERROR_FACTORIES = [
    pytest.param(
        lambda e, **kw: create_agent_failed_event("a1", e, **kw), id="agent_failed"
    ),
    pytest.param(
        lambda e, **kw: create_task_failed_event("t1", e, 1, **kw), id="task_failed"
    ),
    pytest.param(
        lambda e, **kw: create_swarm_error_event(e, None, **kw), id="swarm_error"
    ),
]


@pytest.mark.parametrize("make", ERROR_FACTORIES)
def test_error_from_raised_exception(make: Callable[..., Event]) -> None:
    """An exception keeps its message in ``error`` and traceback text in ``stack``."""
    event = make(_raise_and_catch())
    assert event.payload.error == "boom from deep inside"
    stack = event.payload.stack
    assert isinstance(stack, str)
    assert "Traceback (most recent call last)" in stack
    assert "_raise_and_catch" in stack
    assert "ValueError: boom from deep inside" in stack
    prepare_event(event, DEFAULT_MAX_PAYLOAD_BYTES)


@pytest.mark.parametrize("make", ERROR_FACTORIES)
def test_error_from_unraised_exception(make: Callable[..., Event]) -> None:
    """An exception never raised still gives its message and a stack text."""
    event = make(KeyError("missing"))
    assert event.payload.error == "'missing'"
    assert "KeyError" in event.payload.stack


@pytest.mark.parametrize("make", ERROR_FACTORIES)
def test_error_from_exception_without_message(make: Callable[..., Event]) -> None:
    """An exception with an empty message is named by its class."""
    event = make(RuntimeError())
    assert event.payload.error == "RuntimeError"


@pytest.mark.parametrize("make", ERROR_FACTORIES)
def test_error_from_chained_exception(make: Callable[..., Event]) -> None:
    """A chained exception's stack includes its cause."""
    try:
        try:
            msg = "inner"
            raise OSError(msg)
        except OSError as inner:
            msg = "outer"
            raise RuntimeError(msg) from inner
    except RuntimeError as e:
        event = make(e)
    assert event.payload.error == "outer"
    assert "OSError: inner" in event.payload.stack
    assert "RuntimeError: outer" in event.payload.stack


@pytest.mark.parametrize("make", ERROR_FACTORIES)
def test_error_from_string(make: Callable[..., Event]) -> None:
    """A plain message is kept and ``stack`` is None."""
    event = make("plain message", timestamp=T0)
    assert event.payload.error == "plain message"
    assert event.payload.stack is None


@pytest.mark.parametrize("make", ERROR_FACTORIES)
@pytest.mark.parametrize("bad", [42, None, ["x"]], ids=repr)
def test_error_of_wrong_type_rejected(make: Callable[..., Event], bad: object) -> None:
    """An error that is neither an exception nor a string is InvalidEventError."""
    with pytest.raises(InvalidEventError):
        make(bad)


# -- per-factory details -----------------------------------------------------


def test_sequences_become_tuples_from_any_iterable() -> None:
    """capabilities, dependencies and blocked_by become tuples from any iterable."""
    spawned = create_agent_spawned_event("a1", "r", "d", (c for c in ["x", "y"]))
    assert spawned.payload.capabilities == ("x", "y")
    created = create_task_created_event("t1", "k", "t", "d", "p", {"t0": 1})
    assert created.payload.dependencies == ("t0",)
    blocked = create_task_blocked_event("t1", iter(["t0"]))
    assert blocked.payload.blocked_by == ("t0",)


def test_sequence_defaults_are_empty_tuples() -> None:
    """capabilities and dependencies default to empty tuples."""
    assert create_agent_spawned_event("a1", "r", "d").payload.capabilities == ()
    assert (
        create_task_created_event("t1", "k", "t", "d", "p").payload.dependencies == ()
    )


def test_task_completed_duration_optional() -> None:
    """create_task_completed_event leaves duration None unless given."""
    assert create_task_completed_event("t1", None).payload.duration is None
    assert create_task_completed_event("t1", None, 10).payload.duration == 10
    assert create_task_completed_event("t1", None, duration=0).payload.duration == 0


def test_task_failed_retry_count_default() -> None:
    """create_task_failed_event counts zero retries unless told."""
    assert create_task_failed_event("t1", "x").payload.retry_count == 0


def test_task_assigned_explicit_instant() -> None:
    """An explicit ``assigned_at`` is kept apart from the event timestamp."""
    event = create_agent_task_assigned_event("a1", "t1", EARLIER, timestamp=T0)
    assert event.payload.assigned_at == EARLIER
    assert event.timestamp == T0
    event = create_agent_task_assigned_event("a1", "t1", assigned_at=EARLIER)
    assert event.payload.assigned_at == EARLIER


def test_agent_task_completed_keeps_its_instant() -> None:
    """``completed_at`` and ``duration`` are the caller's, not the timestamp."""
    event = create_agent_task_completed_event(
        "a1", "t1", None, EARLIER, 5, timestamp=T0
    )
    assert event.payload.completed_at == EARLIER
    assert event.payload.duration == 5
    assert event.timestamp == T0


def test_memory_expired_keeps_due_instant() -> None:
    """``expires_at`` is the caller's; ``expired_at`` is the timestamp."""
    event = create_memory_expired_event("m1", "ns", "k", EARLIER, timestamp=T0)
    assert (event.payload.expires_at, event.payload.expired_at) == (EARLIER, T0)


def test_metadata_is_not_copied_or_shared() -> None:
    """Without metadata each event gets its own empty dict."""
    a = create_agent_started_event("a1")
    b = create_agent_started_event("a1")
    assert a.metadata == b.metadata == {}
    assert a.metadata is not b.metadata


# -- create_event ------------------------------------------------------------


class Unregistered(msgspec.Struct, frozen=True):
    """A payload class nobody registers."""

    x: int


def test_create_event_unregistered_payload() -> None:
    """create_event with an unregistered payload raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError):
        create_event(Unregistered(x=1), "a1")


@pytest.mark.parametrize("payload", [{"x": 1}, "text", None], ids=repr)
def test_create_event_non_struct_payload(payload: object) -> None:
    """create_event with plain data raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError):
        create_event(payload, "a1")  # type: ignore[arg-type]


def test_create_event_wraps_payload() -> None:
    """create_event fills the envelope from the registry and the keywords."""
    payload = TaskQueued(task_id="t9", priority="high", queued_at=T0)
    chosen = uuid.uuid4()
    event = create_event(
        payload,
        "t9",
        metadata={"m": 1},
        causation_id="c",
        correlation_id="r",
        source="src",
        timestamp=T0,
        event_id=chosen,
    )
    assert event == Event(
        id=chosen,
        type="task:queued",
        aggregate_id="t9",
        aggregate_type="task",
        payload=payload,
        timestamp=T0,
        source="src",
        metadata={"m": 1},
        causation_id="c",
        correlation_id="r",
    )
    assert event.payload is payload


def test_create_event_default_source_and_now() -> None:
    """create_event defaults source to "swarm" and the timestamp to now, UTC."""
    payload = TaskQueued(task_id="t9", priority="high", queued_at=T0)
    event = create_event(payload, "t9")
    assert event.source == "swarm"
    assert abs(event.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
    assert event.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "timestamp",
    [datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3)))],
    ids=["naive", "minus3"],
)
def test_create_event_rejects_bad_timestamp(timestamp: datetime) -> None:
    """create_event rejects a naive or non-UTC timestamp."""
    payload = TaskQueued(task_id="t9", priority="high", queued_at=T0)
    with pytest.raises(InvalidEventError):
        create_event(payload, "t9", timestamp=timestamp)
