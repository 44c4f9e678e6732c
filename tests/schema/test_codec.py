"""prepare_event validation/encoding and decode_row, incl. a round-trip property."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlog.schema.codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_COLUMNS,
    INSERT_COLUMNS,
    PreparedEvent,
    _prepare_carefully,
    decode_row,
    decode_value,
    encode_value,
    prepare_event,
)
from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import (
    EventDecodeError,
    InvalidEventError,
    UnknownEventTypeError,
)
from swarmlog.schema.events import (
    ALL_EVENT_TYPES,
    AgentStarted,
    MemoryStored,
    SwarmInitialized,
    TaskBlocked,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
)
from swarmlog.schema.factories import (
    create_agent_started_event,
    create_event,
    create_memory_stored_event,
    create_task_completed_event,
)
from swarmlog.schema.registry import info_for_class
from swarmlog.schema.timeutil import to_micros

if TYPE_CHECKING:
    from collections.abc import Callable

Row = tuple[Any, ...]

T0 = datetime(2024, 3, 4, 5, 6, 7, 891_011, tzinfo=UTC)
MAX = DEFAULT_MAX_PAYLOAD_BYTES
T_ID = uuid.UUID("0190c3d2-7b1e-7c4a-9f3e-2b8d5c1a0e47")

# -- strategies --------------------------------------------------------------

msgpack_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # JSON-like: int64
utc_datetimes = st.datetimes(timezones=st.just(UTC))
json_like = st.recursive(
    st.none()
    | st.booleans()
    | json_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
metadata_dicts = st.dictionaries(st.text(max_size=10), json_like, max_size=4)
optional_ids = st.none() | st.text(max_size=20)


def _strategy_for(t: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """A strategy of valid values for a payload field type."""
    if isinstance(t, msgspec.inspect.UnionType):
        return st.one_of([_strategy_for(x) for x in t.types])
    if isinstance(t, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(t, msgspec.inspect.StrType):
        return st.text(max_size=30)
    if isinstance(t, msgspec.inspect.IntType):
        return msgpack_ints
    if isinstance(t, msgspec.inspect.DateTimeType):
        return utc_datetimes
    if isinstance(t, msgspec.inspect.VarTupleType):
        return st.lists(_strategy_for(t.item_type), max_size=5).map(tuple)
    if isinstance(t, msgspec.inspect.AnyType):
        return json_like
    msg = f"no strategy for field type {t!r}: extend _strategy_for"
    raise AssertionError(msg)


def payloads(cls: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    """Random valid instances of ``cls``, built from its field types."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {f.name: _strategy_for(f.type) for f in info.fields}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


@st.composite
def events_of(draw: st.DrawFn, cls: type[msgspec.Struct]) -> Event:
    """A random valid Event around a random payload of ``cls``."""
    return create_event(
        draw(payloads(cls)),
        draw(st.text(min_size=1, max_size=30)),
        metadata=draw(metadata_dicts),
        causation_id=draw(optional_ids),
        correlation_id=draw(optional_ids),
        source=draw(st.text(min_size=1, max_size=20)),
        timestamp=draw(utc_datetimes),
        event_id=draw(st.uuids()),
    )


# -- round trip --------------------------------------------------------------


def test_every_field_type_has_a_strategy() -> None:
    """The round-trip property can build every built-in payload class."""
    for cls in ALL_EVENT_TYPES:
        payloads(cls)


@pytest.mark.parametrize("cls", ALL_EVENT_TYPES, ids=lambda c: c.__name__)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_round_trip_every_event_type(
    cls: type[msgspec.Struct], data: st.DataObject, make_row: Callable[..., Row]
) -> None:
    """prepare_event then decode_row gives back the event with version/position set."""
    event = data.draw(events_of(cls))
    version = data.draw(st.integers(1, 2**31))
    position = data.draw(st.integers(1, 2**62))
    prepared = prepare_event(event, MAX)
    back = decode_row(make_row(prepared, version=version, position=position))
    assert back == msgspec.structs.replace(event, version=version, position=position)
    assert type(back.payload) is cls
    assert back.timestamp.utcoffset() == timedelta(0)


def test_round_trip_preserves_field_types(make_row: Callable[..., Row]) -> None:
    """Decoded payloads have tuples, ints, aware datetimes and None where stored."""
    event = create_event(
        TaskBlocked(task_id="t1", blocked_by=("a", "b"), blocked_at=T0), "t1"
    )
    back = decode_row(make_row(prepare_event(event, MAX)))
    assert back.payload.blocked_by == ("a", "b")
    assert isinstance(back.payload.blocked_by, tuple)
    assert back.payload.blocked_at == T0
    assert back.payload.blocked_at.utcoffset() == timedelta(0)


def test_round_trip_pre_epoch_and_extreme_instants(
    make_row: Callable[..., Row],
) -> None:
    """Instants before 1970 and at the ends of the datetime range read back equal."""
    for when in (
        datetime.min.replace(tzinfo=UTC),
        datetime(1900, 6, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ):
        event = create_agent_started_event("a1", timestamp=when)
        back = decode_row(make_row(prepare_event(event, MAX)))
        assert back.timestamp == when
        assert back.payload.started_at == when


# -- PreparedEvent -----------------------------------------------------------


def test_event_columns_order() -> None:
    """Reads select the envelope blob plus what decode_row routes on; writes
    store the envelope and the columns queries filter on."""
    assert [c.strip() for c in EVENT_COLUMNS.split(",")] == [
        "position",
        "type",
        "schema_version",
        "data",
    ]
    assert [c.strip() for c in INSERT_COLUMNS.split(",")] == [
        "position",
        "id",
        "type",
        "aggregate_id",
        "aggregate_type",
        "version",
        "timestamp",
        "schema_version",
        "data",
        "cause",
        "correlation_id",
    ]


def _envelope_fields(data: bytes) -> dict[str, msgspec.Raw]:
    """The encoded envelope's fields, each left as its own msgpack bytes."""
    return msgspec.msgpack.decode(data, type=dict[str, msgspec.Raw])


def _event_bytes(prepared: PreparedEvent) -> int:
    """What the size limit counts: the whole encoded event."""
    return len(prepared.data)


def test_prepared_event_parts() -> None:
    """PreparedEvent carries the event, id bytes, the payload as it will
    read back and the msgpack envelope (payload and metadata embedded)."""
    event = create_task_completed_event(
        "t1", {"n": 1}, 5, timestamp=T0, metadata={"k": "v"}
    )
    prepared = prepare_event(event, MAX)
    assert isinstance(prepared, PreparedEvent)
    assert prepared.event == event  # the copy decoded back: what reads return
    assert prepared.id_bytes == event.id.bytes
    assert len(prepared.id_bytes) == 16
    assert prepared.row(1, 1)[6] == to_micros(T0)  # the timestamp column
    assert prepared.value == event.payload
    assert type(prepared.value) is TaskCompleted
    assert isinstance(prepared.data, bytes)
    fields = _envelope_fields(prepared.data)
    assert list(fields) == list(Event.__struct_fields__)
    payload = msgspec.msgpack.decode(fields["payload"], type=TaskCompleted)
    assert payload == event.payload
    assert decode_value(fields["payload"])["type"] == "task:completed"  # tagged
    assert decode_value(fields["metadata"]) == {"k": "v"}
    assert decode_value(fields["id"]) == event.id.bytes  # uuid_format="bytes"
    unstored = msgspec.msgpack.decode(prepared.data, type=Event[TaskCompleted])
    assert unstored == event
    assert (unstored.position, unstored.version) == (0, 0)


def test_prepared_event_row() -> None:
    """row() gives the stored row in INSERT_COLUMNS order, its envelope stamped
    with the real position and version; the unstored envelope is untouched."""
    event = create_task_completed_event("t1", {"n": 1}, 5, timestamp=T0)
    prepared = prepare_event(event, MAX)
    data = prepared.data
    for version, position in ((2, 7), (1, 1), (2**63 - 1, 2**63 - 1)):
        row = prepared.row(version, position)
        columns = [c.strip() for c in INSERT_COLUMNS.split(",")]
        values = dict(zip(columns, row, strict=True))
        stamped = values.pop("data")
        assert values == {
            "position": position,
            "id": event.id.bytes,
            "type": "task:completed",
            "aggregate_id": "t1",
            "aggregate_type": "task",
            "version": version,
            "timestamp": to_micros(T0),
            "schema_version": 1,
            "cause": None,
            "correlation_id": None,
        }
        stored = msgspec.msgpack.decode(stamped, type=Event[TaskCompleted])
        assert stored == msgspec.structs.replace(
            event, version=version, position=position
        )
        assert prepared.data == data


@pytest.mark.parametrize(
    ("causation_id", "cause"),
    [
        (None, None),
        (str(T_ID), T_ID.bytes),
        (str(T_ID).upper(), T_ID.bytes),
        (T_ID.hex, T_ID.bytes),
        ("command-1", "command-1"),
    ],
)
def test_prepared_event_cause_column(causation_id: str | None, cause: object) -> None:
    """The cause column holds the causing event's id bytes when the
    causation id is a UUID (any spelling), the text otherwise; the
    correlation id goes to its column as is."""
    event = create_task_completed_event(
        "t1", {}, 5, causation_id=causation_id, correlation_id="task-1"
    )
    row = prepare_event(event, MAX).row(1, 1)
    columns = [c.strip() for c in INSERT_COLUMNS.split(",")]
    values = dict(zip(columns, row, strict=True))
    assert (values["cause"], values["correlation_id"]) == (cause, "task-1")


def test_prepared_event_empty_metadata(make_row: Callable[..., Row]) -> None:
    """Empty metadata encodes as an empty map and reads back as an empty dict."""
    event = create_agent_started_event("a1")
    prepared = prepare_event(event, MAX)
    assert bytes(_envelope_fields(prepared.data)["metadata"]) == b"\x80"
    assert decode_row(make_row(prepared)).metadata == {}


def test_prepare_event_does_not_mutate() -> None:
    """prepare_event leaves the caller's event as it was."""
    event = create_agent_started_event("a1", metadata={"x": [1]})
    before = msgspec.structs.replace(event)
    prepare_event(event, MAX)
    assert event == before
    assert (event.version, event.position) == (0, 0)


# -- prepare_event rejections ------------------------------------------------


def _valid() -> Event:
    return create_task_completed_event("t1", {"ok": True}, 12, timestamp=T0)


def _with(**changes: Any) -> Event:
    return msgspec.structs.replace(_valid(), **changes)


def _payload(**changes: Any) -> Event:
    return _with(payload=msgspec.structs.replace(_valid().payload, **changes))


class Unregistered(msgspec.Struct, frozen=True):
    """A payload class nobody registers."""

    task_id: str


def test_unknown_type_string() -> None:
    """An unregistered type string raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError) as info:
        prepare_event(_with(type="task:exploded"), MAX)
    assert info.value.event_type == "task:exploded"


def test_non_string_type() -> None:
    """A non-string type raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError):
        prepare_event(_with(type=7), MAX)


INVALID_EVENTS: list[Any] = [
    pytest.param(
        lambda: _with(payload=TaskStarted(task_id="t1", agent_id="a1", started_at=T0)),
        id="payload-of-another-registered-class",
    ),
    pytest.param(
        lambda: _with(payload=Unregistered(task_id="t1")), id="unregistered-payload"
    ),
    pytest.param(
        lambda: _with(payload={"task_id": "t1", "completed_at": T0}), id="dict-payload"
    ),
    pytest.param(lambda: _with(payload=None), id="none-payload"),
    pytest.param(lambda: _payload(task_id=5), id="int-for-str"),
    pytest.param(lambda: _payload(task_id=None), id="none-for-str"),
    pytest.param(lambda: _payload(duration="12"), id="str-for-int"),
    pytest.param(lambda: _payload(duration=1.5), id="float-for-int"),
    pytest.param(lambda: _payload(duration=True), id="bool-for-int"),
    pytest.param(lambda: _payload(duration=2**64), id="int-too-big-for-msgpack"),
    pytest.param(
        lambda: _payload(completed_at=datetime(2024, 1, 1)), id="naive-payload-at"
    ),
    pytest.param(
        lambda: _payload(
            completed_at=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5)))
        ),
        id="non-utc-payload-at",
    ),
    pytest.param(
        lambda: _payload(completed_at="2024-01-01T00:00:00Z"), id="str-payload-at"
    ),
    pytest.param(lambda: _payload(completed_at=None), id="none-payload-at"),
    pytest.param(lambda: _payload(result=object()), id="unencodable-result"),
    pytest.param(
        lambda: _payload(result={"deep": [1, {"x": object()}]}), id="unencodable-deep"
    ),
    pytest.param(
        lambda: create_event(
            MemoryStored(
                memory_id="m1",
                namespace="n",
                key="k",
                memory_type="t",
                size="big",  # type: ignore[arg-type]
                stored_at=T0,
            ),
            "m1",
        ),
        id="str-for-size",
    ),
    pytest.param(
        lambda: create_event(
            TaskBlocked(task_id="t1", blocked_by="t0", blocked_at=T0), "t1"
        ),
        id="str-for-tuple",
    ),
    pytest.param(
        lambda: create_event(
            TaskBlocked(task_id="t1", blocked_by=(1, 2), blocked_at=T0), "t1"
        ),
        id="ints-in-tuple-of-str",
    ),
    pytest.param(
        lambda: create_event(
            TaskFailed(task_id="t1", error="e", stack=3, failed_at=T0),  # type: ignore[arg-type]
            "t1",
        ),
        id="int-for-optional-str",
    ),
    pytest.param(lambda: _with(timestamp=datetime(2024, 1, 1)), id="naive-timestamp"),
    pytest.param(
        lambda: _with(
            timestamp=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-8)))
        ),
        id="non-utc-timestamp",
    ),
    pytest.param(lambda: _with(timestamp="2024-01-01"), id="str-timestamp"),
    pytest.param(lambda: _with(metadata=["not", "a", "dict"]), id="metadata-list"),
    pytest.param(lambda: _with(metadata="k=v"), id="metadata-str"),
    pytest.param(lambda: _with(metadata={"x": object()}), id="metadata-unencodable"),
    pytest.param(lambda: _with(aggregate_id=""), id="empty-aggregate-id"),
    pytest.param(lambda: _with(aggregate_id=None), id="none-aggregate-id"),
    pytest.param(lambda: _with(aggregate_id=12), id="int-aggregate-id"),
    pytest.param(lambda: _with(aggregate_type="agent"), id="aggregate-type-mismatch"),
    pytest.param(lambda: _with(aggregate_type="nonsense"), id="aggregate-type-unknown"),
    pytest.param(lambda: _with(id="0190e4c2-0000-7000-8000-000000000000"), id="str-id"),
    pytest.param(lambda: _with(id=uuid.UUID(int=1).bytes), id="bytes-id"),
    pytest.param(lambda: _with(id=None), id="none-id"),
    pytest.param(lambda: _with(source=""), id="empty-source"),
    pytest.param(lambda: _with(source=None), id="none-source"),
    pytest.param(lambda: _with(causation_id=5), id="int-causation-id"),
    pytest.param(lambda: _with(correlation_id=b"x"), id="bytes-correlation-id"),
    pytest.param(lambda: _with(schema_version=2), id="schema-version-mismatch"),
    pytest.param(lambda: {"type": "task:completed"}, id="dict-not-event"),
    pytest.param(lambda: None, id="none-not-event"),
    pytest.param(lambda: _valid().payload, id="payload-not-event"),
]


@pytest.mark.parametrize("make", INVALID_EVENTS)
def test_invalid_event_rejected(make: Callable[[], Any]) -> None:
    """Each malformed event raises InvalidEventError, never a raw msgspec error."""
    with pytest.raises(InvalidEventError):
        prepare_event(make(), MAX)


@pytest.mark.parametrize("make", INVALID_EVENTS)
def test_short_path_refuses_like_the_careful_path(make: Callable[[], Any]) -> None:
    """prepare_event's short path never words a refusal itself: the message
    is the one the check-by-check path gives."""
    event = make()
    with pytest.raises(InvalidEventError) as short:
        prepare_event(event, MAX)
    with pytest.raises(InvalidEventError) as careful:
        _prepare_carefully(event, MAX)
    assert type(short.value) is type(careful.value)
    assert str(short.value) == str(careful.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_valid, id="usual"),
        pytest.param(
            lambda: _with(timestamp=T0.replace(tzinfo=timezone(timedelta(0)))),
            id="another-utc-tzinfo",
        ),
        pytest.param(lambda: _with(position=7, version=3), id="numbers-set"),
        pytest.param(
            lambda: create_event(
                TaskStarted(task_id="t1", agent_id="a1", started_at=T0),
                "t1",
                timestamp=T0,
            ),
            id="payload-with-datetime",
        ),
    ],
)
def test_short_and_careful_paths_prepare_the_same(make: Callable[[], Any]) -> None:
    """Whichever path an event takes, the prepared bytes and event agree."""
    event = make()
    prepared = prepare_event(event, MAX)
    assert prepared == _prepare_carefully(event, MAX)
    assert (prepared.event.position, prepared.event.version) == (0, 0)
    assert prepared.event.timestamp.tzinfo is UTC


class _EventWithExtra(Event, frozen=True, kw_only=True):
    """A user subclass of the envelope with one more field."""

    note: str = ""


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _with(schema_version=True), id="bool-schema-version"),
        pytest.param(lambda: _with(schema_version=1.0), id="float-schema-version"),
        pytest.param(
            lambda: _EventWithExtra(**msgspec.structs.asdict(_valid())),
            id="event-subclass",
        ),
    ],
)
def test_accepted_event_reads_back(
    make: Callable[[], Any], make_row: Callable[..., Row]
) -> None:
    """An event prepare_event accepts reads back; otherwise it is refused with
    InvalidEventError (never stored as an unreadable row)."""
    event = make()
    try:
        prepared = prepare_event(event, MAX)
    except InvalidEventError:
        return
    assert decode_row(make_row(prepared)).payload == event.payload


def test_oversize_payload_rejected() -> None:
    """A payload over max_payload_bytes raises InvalidEventError."""
    event = create_task_completed_event("t1", "x" * 5_000)
    with pytest.raises(InvalidEventError, match=r"5000|limit"):
        prepare_event(event, 4_096)
    with pytest.raises(InvalidEventError):
        prepare_event(create_task_completed_event("t1", "x" * (MAX + 1)), MAX)


def test_payload_size_limit_is_inclusive() -> None:
    """An event of exactly max_payload_bytes encoded passes; one byte less of
    room fails."""
    event = create_task_completed_event("t1", "x" * 1000, metadata={"m": "y" * 100})
    prepared = prepare_event(event, MAX)
    size = _event_bytes(prepared)
    assert size > 1100
    assert prepare_event(event, size).data == prepared.data
    with pytest.raises(InvalidEventError):
        prepare_event(event, size - 1)


def test_metadata_counts_towards_size_limit() -> None:
    """Large metadata alone can make an event oversize."""
    small = create_task_completed_event("t1", None)
    limit = _event_bytes(prepare_event(small, MAX)) + 50
    prepare_event(small, limit)
    with pytest.raises(InvalidEventError):
        prepare_event(msgspec.structs.replace(small, metadata={"k": "v" * 100}), limit)


def test_rejection_chains_the_msgspec_error() -> None:
    """A malformed payload's InvalidEventError is raised from the msgspec error."""
    with pytest.raises(InvalidEventError) as info:
        prepare_event(_payload(duration="12"), MAX)
    assert isinstance(info.value.__cause__, msgspec.ValidationError)
    assert "duration" in str(info.value)


@pytest.mark.parametrize("metadata", [{1: "x"}, {"ok": 1, (1, 2): "y"}], ids=repr)
def test_metadata_with_non_str_keys_rejected_or_readable(
    metadata: dict[Any, Any], make_row: Callable[..., Row]
) -> None:
    """Metadata prepare_event accepts must decode again (or be rejected up front)."""
    event = create_agent_started_event("a1", metadata=metadata)
    try:
        prepared = prepare_event(event, MAX)
    except InvalidEventError:
        return
    assert decode_row(make_row(prepared)).metadata == metadata


def test_list_in_tuple_field_rejected_or_round_trips(
    make_row: Callable[..., Row],
) -> None:
    """A list where a tuple is declared is normalised: the prepared value (which
    the store returns) reads back equal."""
    payload = TaskBlocked(task_id="t1", blocked_by=["t0"], blocked_at=T0)  # type: ignore[arg-type]
    event = create_event(payload, "t1")
    prepared = prepare_event(event, MAX)
    assert prepared.value.blocked_by == ("t0",)
    assert decode_row(make_row(prepared)) == msgspec.structs.replace(
        event, payload=prepared.value, version=1, position=1
    )


def test_custom_aggregate_ids_work_for_any_nonempty_string(
    make_row: Callable[..., Row],
) -> None:
    """Any non-empty aggregate id (unicode, spaces) round-trips."""
    for aggregate_id in ("a", " ", "ü-ñ/😀", "x" * 500):
        event = create_agent_started_event(aggregate_id, timestamp=T0)
        assert (
            decode_row(make_row(prepare_event(event, MAX))).aggregate_id == aggregate_id
        )


# -- decode_row --------------------------------------------------------------


_ENVELOPE_ENCODER = msgspec.msgpack.Encoder(uuid_format="bytes")
_DROP: Any = object()
"""Give a field this value in ``_raw_row`` to leave it out of the envelope."""
_STORED = create_task_completed_event("t1", {"n": 1}, 3, timestamp=T0)


def _raw_row(*, columns: dict[str, Any] | None = None, **changes: Any) -> list[Any]:
    """A stored row (EVENT_COLUMNS) for a task:completed event at position 7,
    version 2. ``changes`` override envelope fields (any value, typed or not;
    a ``msgspec.Raw`` is embedded as is). The position, type and schema_version
    columns follow the envelope; ``columns`` overrides them by name."""
    envelope = msgspec.structs.asdict(_STORED)
    envelope.update(position=7, version=2)
    envelope.update(changes)
    envelope = {k: v for k, v in envelope.items() if v is not _DROP}
    values = {
        "position": envelope.get("position", 7),
        "type": envelope.get("type", _STORED.type),
        "schema_version": envelope.get("schema_version", 1),
        "data": _ENVELOPE_ENCODER.encode(envelope),
    }
    values.update(columns or {})
    return [values[c.strip()] for c in EVENT_COLUMNS.split(",")]


def _with_data(data: Any, position: int = 7) -> list[Any]:
    """A row whose ``data`` column holds exactly ``data``."""
    row = _raw_row(position=position)
    row[-1] = data
    return row


def test_raw_row_matches_the_writer(make_row: Callable[..., Row]) -> None:
    """The hand-built rows below decode like the row the writer stores."""
    written = make_row(prepare_event(_STORED, MAX), version=2, position=7)
    assert _raw_row()[:3] == list(written[:3])
    assert decode_row(_raw_row()) == decode_row(written)


def test_decode_row_fields() -> None:
    """decode_row fills every envelope field from the stored envelope."""
    event_id = uuid.uuid4()
    row = _raw_row(
        id=event_id,
        metadata={"k": [1, 2]},
        causation_id="c",
        correlation_id="r",
        source="src",
    )
    event = decode_row(row)
    assert event.id == event_id
    assert (event.position, event.version) == (7, 2)
    assert (event.type, event.aggregate_id, event.aggregate_type) == (
        "task:completed",
        "t1",
        "task",
    )
    assert event.timestamp == T0
    assert event.metadata == {"k": [1, 2]}
    assert (event.causation_id, event.correlation_id, event.source) == ("c", "r", "src")
    assert event.schema_version == 1
    assert event.payload == TaskCompleted(
        task_id="t1", result={"n": 1}, completed_at=T0, duration=3
    )


def test_decode_row_accepts_a_list_or_tuple_row() -> None:
    """A row may be any sequence (sqlite3 gives tuples, tests lists)."""
    row = _raw_row()
    assert decode_row(row) == decode_row(tuple(row))


def test_decode_row_accepts_any_bytes_like_data() -> None:
    """The data column may come back as bytes or memoryview."""
    row = _raw_row()
    assert decode_row(_with_data(memoryview(row[-1]))) == decode_row(row)


def test_decode_unregistered_type_gives_plain_data() -> None:
    """A type not registered in this process decodes to plain data, not an error."""
    data = {"who": "ops", "count": 3, "tags": ["a", "b"], "nested": {"ok": True}}
    row = _raw_row(
        type="custom:unknown",
        aggregate_type="custom",
        payload=data,
        schema_version=4,
    )
    event = decode_row(row)
    assert event.type == "custom:unknown"
    assert event.aggregate_type == "custom"
    assert event.payload == data
    assert isinstance(event.payload, dict)
    assert event.schema_version == 4
    assert (event.position, event.version, event.id) == (7, 2, _STORED.id)


def test_decode_unregistered_type_of_scalar_payload() -> None:
    """An unregistered type's payload may be any msgpack value."""
    row = _raw_row(type="custom:scalar", payload=[1, "two", None])
    assert decode_row(row).payload == [1, "two", None]


def _timestamp_ext(seconds: int) -> msgspec.Raw:
    """A msgpack timestamp96 extension (nanoseconds 0) at ``seconds``."""
    return msgspec.Raw(b"\xc7\x0c\xff" + bytes(4) + seconds.to_bytes(8, "big"))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"payload": msgspec.Raw(b"\xc1\xc1\xc1")}, id="corrupt-payload"),
        pytest.param({"payload": msgspec.Raw(b"")}, id="empty-payload"),
        pytest.param({"payload": None}, id="null-payload"),
        pytest.param({"payload": "text"}, id="text-payload"),
        pytest.param(
            {"payload": {"type": "task:completed", "task_id": 5, "completed_at": 1}},
            id="payload-of-wrong-shape",
        ),
        pytest.param(
            {"payload": {"task_id": "t1"}}, id="payload-missing-required-field"
        ),
        pytest.param(
            {"payload": {"type": "task:started", "task_id": "t"}},
            id="payload-of-wrong-tag",
        ),
        pytest.param(
            {"type": "custom:unknown", "payload": msgspec.Raw(b"\x92\x01")},
            id="truncated-unregistered",
        ),
        pytest.param(
            {"type": "custom:unknown", "metadata": [1, 2]},
            id="unregistered-metadata-not-a-map",
        ),
        pytest.param({"metadata": msgspec.Raw(b"\xc1")}, id="corrupt-metadata"),
        pytest.param({"metadata": [1, 2]}, id="metadata-not-a-map"),
        pytest.param({"metadata": {1: "x"}}, id="metadata-non-str-key"),
        pytest.param({"id": b"short"}, id="short-id"),
        pytest.param({"id": None}, id="null-id"),
        pytest.param({"id": "0190e4c2-not-a-uuid"}, id="text-id"),
        pytest.param({"id": _DROP}, id="missing-id"),
        pytest.param({"timestamp": "yesterday"}, id="text-timestamp"),
        pytest.param({"timestamp": 10**18}, id="int-timestamp"),
        pytest.param({"timestamp": _timestamp_ext(2**62)}, id="out-of-range-timestamp"),
        pytest.param({"aggregate_id": 5}, id="int-aggregate-id"),
        pytest.param({"source": None}, id="null-source"),
        pytest.param({"version": "2"}, id="text-version"),
        pytest.param(
            {"schema_version": "1", "columns": {"schema_version": 1}},
            id="text-schema-version",
        ),
        pytest.param(
            {"columns": {"schema_version": "1"}}, id="text-schema-version-column"
        ),
        pytest.param(
            {"columns": {"schema_version": None}}, id="null-schema-version-column"
        ),
        pytest.param(
            {"columns": {"position": 4243}}, id="envelope-of-another-position"
        ),
        pytest.param({"position": _DROP}, id="envelope-without-position"),
    ],
)
def test_damaged_row_raises_event_decode_error(changes: dict[str, Any]) -> None:
    """A damaged row raises EventDecodeError naming the row's position."""
    envelope = {"position": 4242, **changes}
    columns = {"position": 4242, **envelope.pop("columns", {})}
    row = _raw_row(columns=columns, **envelope)
    with pytest.raises(EventDecodeError) as info:
        decode_row(row)
    assert info.value.position == row[0]
    assert str(row[0]) in str(info.value)
    assert info.value.reason


def _valid_data() -> bytes:
    return _raw_row(position=4242)[-1]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="null-data"),
        pytest.param("text", id="text-data"),
        pytest.param(4242, id="int-data"),
        pytest.param(b"", id="empty-data"),
        pytest.param(b"\xc1\xc1\xc1", id="garbage-data"),
        pytest.param(b"\x8d\xa8position", id="truncated-head"),
        pytest.param(_valid_data()[:-1], id="truncated-by-one"),
        pytest.param(_valid_data()[: len(_valid_data()) // 2], id="truncated-by-half"),
        pytest.param(_valid_data() + b"\x00", id="trailing-byte"),
        pytest.param(msgspec.msgpack.encode([1, 2]), id="data-not-a-map"),
        pytest.param(msgspec.msgpack.encode({}), id="empty-envelope"),
        pytest.param(
            _ENVELOPE_ENCODER.encode(TaskCompleted(task_id="t1", completed_at=T0)),
            id="payload-not-envelope",
        ),
    ],
)
def test_damaged_data_raises_event_decode_error(data: Any) -> None:
    """A data blob that is missing, not bytes or not a whole envelope raises
    EventDecodeError naming the row's position."""
    for event_type in ("task:completed", "custom:unknown"):
        row = _with_data(data, position=4242)
        row[1] = event_type
        with pytest.raises(EventDecodeError) as info:
            decode_row(row)
        assert info.value.position == 4242
        assert "4242" in str(info.value)
        assert info.value.reason


def test_position_mismatch_is_named() -> None:
    """A row whose envelope was stamped with another position is refused, the
    reason naming the envelope's position."""
    with pytest.raises(EventDecodeError, match="99") as info:
        decode_row(_raw_row(position=99, columns={"position": 7}))
    assert info.value.position == 7
    stored = prepare_event(_STORED, MAX).row(2, 99)
    with pytest.raises(EventDecodeError):
        decode_row((98, stored[2], stored[7], stored[8]))


def test_decode_error_is_not_a_raw_msgspec_error() -> None:
    """msgspec errors do not escape decode_row."""
    with pytest.raises(EventDecodeError) as info:
        decode_row(_raw_row(payload=msgspec.Raw(b"\xc1")))
    assert not isinstance(info.value, msgspec.MsgspecError)
    assert isinstance(info.value.__cause__, msgspec.MsgspecError)


# -- encode_value / decode_value --------------------------------------------


def test_encode_value_rejects_unencodable() -> None:
    """encode_value raises InvalidEventError naming what failed."""
    with pytest.raises(InvalidEventError, match="result"):
        encode_value({"x": object()}, "result")
    with pytest.raises(InvalidEventError):
        encode_value(2**70, "result")


def test_encode_decode_value_round_trip() -> None:
    """encode_value/decode_value round-trip JSON-like data and typed Structs."""
    data = {"a": [1, 2.5, None, True, "s"], "b": {}}
    assert decode_value(encode_value(data, "x")) == data
    payload = AgentStarted(agent_id="a1", started_at=T0)
    assert decode_value(encode_value(payload, "x"), AgentStarted) == payload
    initialized = SwarmInitialized(topology="mesh", max_agents=3, initialized_at=T0)
    assert decode_value(encode_value(initialized, "x"), SwarmInitialized) == initialized


def test_registry_decoder_matches_each_class() -> None:
    """Each built-in type's registry decoder reads its own class."""
    for cls in ALL_EVENT_TYPES:
        info = info_for_class(cls)
        assert info is not None
        assert info.decoder.type is cls


def test_factory_events_round_trip(make_row: Callable[..., Row]) -> None:
    """A few factory-built events with metadata round-trip through a row."""
    for event in (
        create_memory_stored_event(
            "m1", "ns", "k", "json", 10, metadata={"a": {"b": [1]}}
        ),
        create_task_completed_event(
            "t1", [{"x": 1}], causation_id="c", correlation_id="r"
        ),
        create_agent_started_event("a1", source="agent-runtime"),
    ):
        back = decode_row(make_row(prepare_event(event, MAX), version=3, position=11))
        assert back == msgspec.structs.replace(event, version=3, position=11)
