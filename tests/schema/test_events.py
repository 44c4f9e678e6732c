"""The 23 built-in payload classes and the Event envelope."""

from __future__ import annotations

import inspect
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from swarmlog.schema import events
from swarmlog.schema.envelope import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    Event,
    Snapshot,
    StreamState,
)
from swarmlog.schema.events import (
    AGENT_EVENTS,
    ALL_EVENT_TYPES,
    MEMORY_EVENTS,
    SWARM_EVENTS,
    TASK_EVENTS,
    AgentFailed,
    BuiltinPayload,
    SwarmError,
    TaskCompleted,
    TaskFailed,
)
from swarmlog.schema.registry import info_for_class, info_for_type

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

# class name -> (type string, aggregate type, fields in the issue's order)
EXPECTED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "AgentSpawned": (
        "agent:spawned",
        "agent",
        ("agent_id", "role", "domain", "capabilities"),
    ),
    "AgentStarted": ("agent:started", "agent", ("agent_id", "started_at")),
    "AgentStopped": ("agent:stopped", "agent", ("agent_id", "reason", "stopped_at")),
    "AgentFailed": (
        "agent:failed",
        "agent",
        ("agent_id", "error", "stack", "failed_at"),
    ),
    "AgentStatusChanged": (
        "agent:status-changed",
        "agent",
        ("agent_id", "previous_status", "new_status"),
    ),
    "AgentTaskAssigned": (
        "agent:task-assigned",
        "agent",
        ("agent_id", "task_id", "assigned_at"),
    ),
    "AgentTaskCompleted": (
        "agent:task-completed",
        "agent",
        ("agent_id", "task_id", "result", "completed_at", "duration"),
    ),
    "TaskCreated": (
        "task:created",
        "task",
        ("task_id", "task_type", "title", "description", "priority", "dependencies"),
    ),
    "TaskStarted": ("task:started", "task", ("task_id", "agent_id", "started_at")),
    "TaskCompleted": (
        "task:completed",
        "task",
        ("task_id", "result", "completed_at", "duration"),
    ),
    "TaskFailed": (
        "task:failed",
        "task",
        ("task_id", "error", "stack", "failed_at", "retry_count"),
    ),
    "TaskBlocked": ("task:blocked", "task", ("task_id", "blocked_by", "blocked_at")),
    "TaskQueued": ("task:queued", "task", ("task_id", "priority", "queued_at")),
    "MemoryStored": (
        "memory:stored",
        "memory",
        ("memory_id", "namespace", "key", "memory_type", "size", "stored_at"),
    ),
    "MemoryRetrieved": (
        "memory:retrieved",
        "memory",
        ("memory_id", "namespace", "key", "retrieved_at", "access_count"),
    ),
    "MemoryDeleted": (
        "memory:deleted",
        "memory",
        ("memory_id", "namespace", "key", "deleted_at"),
    ),
    "MemoryExpired": (
        "memory:expired",
        "memory",
        ("memory_id", "namespace", "key", "expired_at", "expires_at"),
    ),
    "SwarmInitialized": (
        "swarm:initialized",
        "swarm",
        ("topology", "max_agents", "config", "initialized_at"),
    ),
    "SwarmScaled": (
        "swarm:scaled",
        "swarm",
        ("previous_agent_count", "new_agent_count", "reason", "scaled_at"),
    ),
    "SwarmTerminated": (
        "swarm:terminated",
        "swarm",
        ("reason", "metrics", "terminated_at"),
    ),
    "SwarmPhaseChanged": (
        "swarm:phase-changed",
        "swarm",
        ("previous_phase", "new_phase", "changed_at"),
    ),
    "SwarmMilestoneReached": (
        "swarm:milestone-reached",
        "swarm",
        ("milestone_id", "name", "reached_at"),
    ),
    "SwarmError": (
        "swarm:error",
        "swarm",
        ("error", "stack", "context", "error_at"),
    ),
}

INSTANT_FIELDS = {"expires_at"}  # instants not named *_at by the suffix rule alone
SEQUENCE_FIELDS = {"capabilities", "dependencies", "blocked_by"}
JSON_FIELDS = {"result", "config", "metrics", "context"}
INT_FIELDS = {
    "duration",
    "size",
    "access_count",
    "retry_count",
    "max_agents",
    "previous_agent_count",
    "new_agent_count",
}

by_name = pytest.mark.parametrize("cls", ALL_EVENT_TYPES, ids=lambda c: c.__name__)


def _sample_value(t: msgspec.inspect.Type) -> Any:
    """A valid value of a field type (for building minimal instances)."""
    if isinstance(t, msgspec.inspect.UnionType):
        return _sample_value(t.types[0])
    samples: dict[type[msgspec.inspect.Type], Any] = {
        msgspec.inspect.StrType: "x",
        msgspec.inspect.IntType: 1,
        msgspec.inspect.DateTimeType: NOW,
        msgspec.inspect.VarTupleType: ("a",),
        msgspec.inspect.AnyType: {"k": [1]},
        msgspec.inspect.NoneType: None,
    }
    return samples[type(t)]


def _required_only(cls: type[msgspec.Struct]) -> msgspec.Struct:
    """An instance built from the required fields alone."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    kwargs = {f.name: _sample_value(f.type) for f in info.fields if f.required}
    return cls(**kwargs)


def _fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.inspect.Field]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name: f for f in info.fields}


def test_all_event_types_has_23_distinct_classes() -> None:
    """ALL_EVENT_TYPES lists 23 distinct classes: 7 agent, 6 task, 4 memory, 6 swarm."""
    assert len(ALL_EVENT_TYPES) == 23
    assert len(set(ALL_EVENT_TYPES)) == 23
    assert (len(AGENT_EVENTS), len(TASK_EVENTS), len(MEMORY_EVENTS)) == (7, 6, 4)
    assert len(SWARM_EVENTS) == 6
    assert {c.__name__ for c in ALL_EVENT_TYPES} == set(EXPECTED)


def test_every_class_is_exported() -> None:
    """Every payload class is importable from swarmlog.schema.events and in __all__."""
    for name in EXPECTED:
        assert getattr(events, name).__name__ == name
        assert name in events.__all__


@by_name
def test_tag_is_the_type_string(cls: type[msgspec.Struct]) -> None:
    """The msgspec tag is the reference type string."""
    assert cls.__struct_config__.tag == EXPECTED[cls.__name__][0]


@by_name
def test_registered_with_type_and_aggregate(cls: type[msgspec.Struct]) -> None:
    """The class is registered under its type string and aggregate type."""
    type_, aggregate, _ = EXPECTED[cls.__name__]
    info = info_for_class(cls)
    assert info is not None
    assert info is info_for_type(type_)
    assert (info.type, info.cls, info.aggregate_type) == (type_, cls, aggregate)
    assert info.schema_version == 1


@by_name
def test_group_matches_aggregate(cls: type[msgspec.Struct]) -> None:
    """Each group tuple holds exactly the classes of its aggregate type."""
    groups = {
        "agent": AGENT_EVENTS,
        "task": TASK_EVENTS,
        "memory": MEMORY_EVENTS,
        "swarm": SWARM_EVENTS,
    }
    assert cls in groups[EXPECTED[cls.__name__][1]]


@by_name
def test_field_names_as_in_issue(cls: type[msgspec.Struct]) -> None:
    """The fields are exactly the issue's, in its order, all snake_case."""
    assert cls.__struct_fields__ == EXPECTED[cls.__name__][2]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f) for f in cls.__struct_fields__)


@by_name
def test_is_frozen(cls: type[msgspec.Struct]) -> None:
    """Payloads are frozen: assigning a field raises AttributeError."""
    assert cls.__struct_config__.frozen
    instance = _required_only(cls)
    first = cls.__struct_fields__[0]
    with pytest.raises(AttributeError):
        setattr(instance, first, "changed")
    hash(instance)  # frozen structs are hashable when their values are


@by_name
def test_field_types(cls: type[msgspec.Struct]) -> None:
    """Instants are datetimes, sequences are tuples of str, JSON-like fields Any."""
    for name, field in _fields(cls).items():
        t = field.type
        if name.endswith("_at") or name in INSTANT_FIELDS:
            assert isinstance(t, msgspec.inspect.DateTimeType), name
            assert field.required, f"{name} must be required"
        elif name in SEQUENCE_FIELDS:
            assert isinstance(t, msgspec.inspect.VarTupleType), name
            assert isinstance(t.item_type, msgspec.inspect.StrType), name
        elif name in JSON_FIELDS:
            assert isinstance(t, msgspec.inspect.AnyType), name
        elif name in INT_FIELDS:
            ints = t.types if isinstance(t, msgspec.inspect.UnionType) else (t,)
            assert any(isinstance(x, msgspec.inspect.IntType) for x in ints), name
        elif name == "stack":
            assert isinstance(t, msgspec.inspect.UnionType), name
            kinds = {type(x) for x in t.types}
            assert kinds == {msgspec.inspect.StrType, msgspec.inspect.NoneType}
        else:
            assert isinstance(t, msgspec.inspect.StrType), name


@pytest.mark.parametrize("cls", [AgentFailed, TaskFailed, SwarmError])
def test_stack_defaults_to_none(cls: type[msgspec.Struct]) -> None:
    """``stack`` is optional and defaults to None."""
    assert _required_only(cls).stack is None  # type: ignore[attr-defined]


def test_task_completed_duration_defaults_to_none() -> None:
    """TaskCompleted.duration is optional and defaults to None."""
    payload = TaskCompleted(task_id="t1", result=None, completed_at=NOW)
    assert payload.duration is None
    assert _fields(TaskCompleted)["duration"].required is False


def test_agent_task_completed_duration_is_required_int() -> None:
    """AgentTaskCompleted.duration is not optional (it has no ``*`` in the issue)."""
    field = _fields(events.AgentTaskCompleted)["duration"]
    assert field.required
    assert isinstance(field.type, msgspec.inspect.IntType)


@by_name
def test_keyword_only(cls: type[msgspec.Struct]) -> None:
    """Payloads are built by keyword only."""
    params = inspect.signature(cls).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    with pytest.raises(TypeError):
        cls("positional")


@by_name
def test_builtin_union_decodes_by_tag(cls: type[msgspec.Struct]) -> None:
    """BuiltinPayload decodes any payload back to its own class by tag."""
    instance = _required_only(cls)
    for codec in (msgspec.msgpack, msgspec.json):
        back = codec.decode(codec.encode(instance), type=BuiltinPayload)
        assert type(back) is cls
        assert back == instance


# -- envelope ----------------------------------------------------------------


def _event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "type": "task:completed",
        "aggregate_id": "t1",
        "aggregate_type": "task",
        "payload": TaskCompleted(task_id="t1", completed_at=NOW),
        "timestamp": NOW,
    }
    fields.update(changes)
    return Event(**fields)


def test_event_envelope_defaults() -> None:
    """An unstored Event has version 0, position 0 and the documented defaults."""
    event = _event()
    assert (event.version, event.position) == (0, 0)
    assert event.source == "swarm"
    assert event.metadata == {}
    assert event.causation_id is None
    assert event.correlation_id is None
    assert event.schema_version == 1


def test_event_envelope_fields() -> None:
    """The envelope has the issue's fields."""
    assert set(Event.__struct_fields__) >= {
        "id",
        "type",
        "aggregate_id",
        "aggregate_type",
        "version",
        "position",
        "timestamp",
        "source",
        "payload",
        "metadata",
        "causation_id",
        "correlation_id",
    }


def test_event_is_frozen_and_replace_makes_a_copy() -> None:
    """Events are frozen; structs.replace returns a new event, the old unchanged."""
    event = _event()
    with pytest.raises(AttributeError):
        event.version = 3  # type: ignore[misc]
    stored = msgspec.structs.replace(event, version=3, position=9)
    assert (stored.version, stored.position) == (3, 9)
    assert (event.version, event.position) == (0, 0)


def test_event_default_metadata_not_shared() -> None:
    """Two events built without metadata do not share one dict."""
    a, b = _event(), _event()
    assert a.metadata is not b.metadata


def test_snapshot_is_frozen() -> None:
    """Snapshot is a frozen Struct with the issue's fields."""
    snap = Snapshot("t1", "task", 3, {"n": 1}, NOW)
    assert Snapshot.__struct_fields__ == (
        "aggregate_id",
        "aggregate_type",
        "version",
        "state",
        "timestamp",
    )
    with pytest.raises(AttributeError):
        snap.version = 4  # type: ignore[misc]


def test_stream_state_sentinels() -> None:
    """ANY, NO_STREAM and STREAM_EXISTS are distinct StreamState members."""
    assert {ANY, NO_STREAM, STREAM_EXISTS} == set(StreamState)
    assert len({ANY, NO_STREAM, STREAM_EXISTS}) == 3
    assert repr(ANY) == "ANY"
    assert str(NO_STREAM) == "NO_STREAM"
    assert isinstance(STREAM_EXISTS, StreamState)
