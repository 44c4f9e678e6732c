"""The event-type registry: custom types, conflicts, upcasters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES, decode_row, prepare_event
from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import (
    EventDecodeError,
    InvalidEventError,
    UnknownEventTypeError,
)
from swarmlog.schema.events import ALL_EVENT_TYPES, TaskCompleted
from swarmlog.schema.factories import create_event
from swarmlog.schema.registry import (
    BUILTIN_AGGREGATE_TYPES,
    aggregate_type_known,
    info_for_class,
    info_for_type,
    lookup_type,
    register_event_type,
    register_upcaster,
    registered_types,
)
from swarmlog.schema.timeutil import uuid7

if TYPE_CHECKING:
    from collections.abc import Callable

Row = tuple[Any, ...]
T0 = datetime(2024, 3, 4, 5, 6, 7, 891_011, tzinfo=UTC)
MAX = DEFAULT_MAX_PAYLOAD_BYTES


class DeployFinished(msgspec.Struct, frozen=True):
    """A user-defined payload (untagged)."""

    deploy_id: str
    service: str
    finished_at: datetime
    replicas: int = 1


def _register_deploy() -> None:
    register_event_type(DeployFinished, type="deploy:finished", aggregate_type="deploy")


_ENVELOPE_ENCODER = msgspec.msgpack.Encoder(uuid_format="bytes")


def _stored_row(
    type_: str, data: Any, *, schema_version: int, position: int = 5
) -> Row:
    """A read row (EVENT_COLUMNS) at version 1 whose envelope embeds ``data``
    as the payload, as a writer at ``schema_version`` would have stored it."""
    envelope = Event(
        position=position,
        version=1,
        id=uuid7(),
        type=type_,
        aggregate_id="d1",
        aggregate_type="deploy",
        payload=msgspec.Raw(msgspec.msgpack.encode(data)),
        timestamp=T0,
        metadata={"by": "ci"},
        schema_version=schema_version,
    )
    return (position, type_, schema_version, _ENVELOPE_ENCODER.encode(envelope))


# -- built-ins ---------------------------------------------------------------


def test_builtins_registered() -> None:
    """All 23 built-in types are in the registry with their classes."""
    types = registered_types()
    for cls in ALL_EVENT_TYPES:
        tag = cls.__struct_config__.tag
        assert types[tag].cls is cls
        assert lookup_type(tag) is types[tag]


def test_registered_types_is_a_copy() -> None:
    """Mutating the returned mapping does not touch the registry."""
    types = registered_types()
    types.pop("task:completed")
    assert lookup_type("task:completed") is not None


def test_builtin_aggregate_types_known() -> None:
    """agent, task, memory and swarm are known aggregate types; others are not."""
    assert frozenset({"agent", "task", "memory", "swarm"}) == BUILTIN_AGGREGATE_TYPES
    for name in BUILTIN_AGGREGATE_TYPES:
        assert aggregate_type_known(name)
    assert not aggregate_type_known("never-registered-aggregate")


def test_lookup_of_unknown_type() -> None:
    """lookup_type gives None and info_for_type raises UnknownEventTypeError."""
    assert lookup_type("no:such-type") is None
    with pytest.raises(UnknownEventTypeError):
        info_for_type("no:such-type")
    assert info_for_class(dict) is None


# -- custom types ------------------------------------------------------------


def test_register_custom_type() -> None:
    """A custom Struct registers under a type string and a new aggregate type."""
    assert (
        register_event_type(
            DeployFinished, type="deploy:finished", aggregate_type="deploy"
        )
        is DeployFinished
    )
    info = info_for_type("deploy:finished")
    assert (info.cls, info.type, info.aggregate_type) == (
        DeployFinished,
        "deploy:finished",
        "deploy",
    )
    assert info.schema_version == 1
    assert info.datetime_fields == ("finished_at",)
    assert info_for_class(DeployFinished) is info
    assert aggregate_type_known("deploy")


def test_reregistering_same_is_a_noop() -> None:
    """Registering the same class, type and aggregate again changes nothing."""
    _register_deploy()
    before = info_for_type("deploy:finished")
    _register_deploy()
    _register_deploy()
    assert info_for_type("deploy:finished") is before
    assert info_for_class(DeployFinished) is before


def test_custom_event_round_trip(make_row: Callable[..., Row]) -> None:
    """A custom event is built, validated, encoded and decoded like a built-in."""
    _register_deploy()
    payload = DeployFinished(deploy_id="d1", service="api", finished_at=T0, replicas=3)
    event = create_event(payload, "d1", metadata={"by": "ci"}, timestamp=T0)
    assert (event.type, event.aggregate_type) == ("deploy:finished", "deploy")
    back = decode_row(make_row(prepare_event(event, MAX), version=1, position=9))
    assert back == msgspec.structs.replace(event, version=1, position=9)
    assert type(back.payload) is DeployFinished


def test_custom_event_validated() -> None:
    """A custom payload's field types and instants are checked like built-ins."""
    _register_deploy()
    bad_type = DeployFinished(deploy_id="d1", service=3, finished_at=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError):
        prepare_event(create_event(bad_type, "d1"), MAX)
    naive = DeployFinished(
        deploy_id="d1", service="api", finished_at=datetime(2024, 1, 1)
    )
    with pytest.raises(InvalidEventError):
        prepare_event(create_event(naive, "d1"), MAX)


def test_tagged_class_type_defaults_to_tag(unique_type: str) -> None:
    """Without ``type=``, a tagged class registers under its tag."""
    tagged = msgspec.defstruct("Tagged", [("x", int)], frozen=True, tag=unique_type)
    register_event_type(tagged, aggregate_type="deploy")
    assert info_for_type(unique_type).cls is tagged


def test_different_class_for_taken_custom_type() -> None:
    """Another class cannot take a custom type string already registered."""
    _register_deploy()

    class Impostor(msgspec.Struct, frozen=True):
        deploy_id: str

    with pytest.raises(InvalidEventError, match="deploy:finished"):
        register_event_type(Impostor, type="deploy:finished", aggregate_type="deploy")
    assert info_for_type("deploy:finished").cls is DeployFinished
    assert info_for_class(Impostor) is None


def test_different_class_for_builtin_type() -> None:
    """A user class cannot take a built-in type string, tagged or not."""

    class Untagged(msgspec.Struct, frozen=True):
        task_id: str

    class Tagged(msgspec.Struct, frozen=True, tag="task:completed"):
        task_id: str

    for cls in (Untagged, Tagged):
        with pytest.raises(InvalidEventError):
            register_event_type(cls, type="task:completed", aggregate_type="task")
    with pytest.raises(InvalidEventError):
        register_event_type(Tagged, aggregate_type="task")
    assert info_for_type("task:completed").cls is TaskCompleted


def test_same_class_other_aggregate_type() -> None:
    """Re-registering a type under another aggregate type is an error."""
    with pytest.raises(InvalidEventError):
        register_event_type(TaskCompleted, aggregate_type="agent")
    assert info_for_type("task:completed").aggregate_type == "task"


@pytest.mark.parametrize(
    "cls",
    [dict, object, int, TaskCompleted(task_id="t", completed_at=T0), "deploy:x", None],
    ids=repr,
)
def test_non_struct_rejected(cls: Any) -> None:
    """Only msgspec.Struct subclasses can be registered."""
    with pytest.raises(InvalidEventError):
        register_event_type(cls, type="custom:not-a-struct", aggregate_type="deploy")
    assert lookup_type("custom:not-a-struct") is None


def test_tag_mismatch_rejected(unique_type: str) -> None:
    """A class tagged one way cannot be registered under another type string."""

    class Tagged(msgspec.Struct, frozen=True, tag="custom:the-tag"):
        x: int

    with pytest.raises(InvalidEventError, match="custom:the-tag"):
        register_event_type(Tagged, type=unique_type, aggregate_type="deploy")
    assert lookup_type(unique_type) is None
    assert lookup_type("custom:the-tag") is None


def test_missing_type_string_rejected() -> None:
    """An untagged class needs ``type=``."""

    class Untagged(msgspec.Struct, frozen=True):
        x: int

    with pytest.raises(InvalidEventError):
        register_event_type(Untagged, aggregate_type="deploy")
    with pytest.raises(InvalidEventError):
        register_event_type(Untagged, type="", aggregate_type="deploy")


@pytest.mark.parametrize(
    ("aggregate_type", "schema_version"),
    [("", 1), (None, 1), (3, 1), ("deploy", 0), ("deploy", -1), ("deploy", "2")],
)
def test_bad_registration_options(
    unique_type: str, aggregate_type: Any, schema_version: Any
) -> None:
    """An empty/non-str aggregate type or a schema_version below 1 is rejected."""

    class Payload(msgspec.Struct, frozen=True):
        x: int

    with pytest.raises(InvalidEventError):
        register_event_type(
            Payload,
            type=unique_type,
            aggregate_type=aggregate_type,
            schema_version=schema_version,
        )
    assert lookup_type(unique_type) is None


def test_concurrent_registration_of_one_class(unique_type: str) -> None:
    """Many threads registering the same class all succeed with one registration."""

    class Payload(msgspec.Struct, frozen=True):
        x: int

    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait(timeout=5)
        try:
            register_event_type(Payload, type=unique_type, aggregate_type="deploy")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert info_for_type(unique_type).cls is Payload


# -- upcasters ---------------------------------------------------------------


def _v2_class() -> type[msgspec.Struct]:
    class JobDoneV2(msgspec.Struct, frozen=True):
        name: str
        priority: int

    return JobDoneV2


def test_upcaster_turns_v1_row_into_v2(unique_type: str) -> None:
    """A v1 row decodes through the upcaster into the v2 class, at schema 2."""
    v2 = _v2_class()
    register_event_type(v2, type=unique_type, aggregate_type="deploy", schema_version=2)
    register_upcaster(unique_type, 1, lambda d: {**d, "priority": 0})
    row = _stored_row(unique_type, {"name": "x"}, schema_version=1)
    event = decode_row(row)
    assert event.payload == v2(name="x", priority=0)
    assert event.schema_version == 2
    assert (event.type, event.position) == (unique_type, 5)
    stored = msgspec.msgpack.decode(row[3], type=Event[Any])
    assert event == msgspec.structs.replace(
        stored, payload=event.payload, schema_version=2
    )
    assert (event.version, event.aggregate_id) == (1, "d1")
    assert event.metadata == {"by": "ci"}


def test_current_rows_skip_upcasters(unique_type: str) -> None:
    """A row already at the current schema version is decoded without upcasting."""
    v2 = _v2_class()
    register_event_type(v2, type=unique_type, aggregate_type="deploy", schema_version=2)
    calls: list[Any] = []
    register_upcaster(unique_type, 1, lambda d: calls.append(d) or d)  # type: ignore[func-returns-value]
    event = decode_row(
        _stored_row(unique_type, {"name": "x", "priority": 4}, schema_version=2)
    )
    assert event.payload == v2(name="x", priority=4)
    assert calls == []


def test_upcasters_chain_in_order(unique_type: str) -> None:
    """Upcasters 1->2->3 apply in order to a v1 row; a v2 row uses only 2->3."""

    class V3(msgspec.Struct, frozen=True):
        title: str
        priority: int
        tags: tuple[str, ...]

    register_event_type(V3, type=unique_type, aggregate_type="deploy", schema_version=3)
    register_upcaster(unique_type, 2, lambda d: {**d, "tags": [d["title"].lower()]})
    register_upcaster(unique_type, 1, lambda d: {"title": d["name"], "priority": 1})
    v1 = decode_row(_stored_row(unique_type, {"name": "Ship"}, schema_version=1))
    assert v1.payload == V3(title="Ship", priority=1, tags=("ship",))
    assert v1.schema_version == 3
    v2 = decode_row(
        _stored_row(unique_type, {"title": "Go", "priority": 7}, schema_version=2)
    )
    assert v2.payload == V3(title="Go", priority=7, tags=("go",))


def test_upcaster_for_tagged_class(unique_type: str) -> None:
    """Upcasting works for a tagged class whose stored payload carries the tag."""
    tagged = msgspec.defstruct(
        "TaggedV2", [("name", str), ("priority", int)], frozen=True, tag=unique_type
    )
    register_event_type(tagged, aggregate_type="deploy", schema_version=2)
    seen: list[Any] = []

    def upcast(d: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(d))
        return {**d, "priority": 9}

    register_upcaster(unique_type, 1, upcast)
    event = decode_row(
        _stored_row(unique_type, {"type": unique_type, "name": "n"}, schema_version=1)
    )
    assert event.payload == tagged(name="n", priority=9)
    assert seen == [{"name": "n"}]  # the upcaster sees the fields, not the tag


def test_new_events_carry_current_schema_version(
    unique_type: str, make_row: Callable[..., Row]
) -> None:
    """create_event stamps the registered schema version, and it round-trips."""
    v2 = _v2_class()
    register_event_type(v2, type=unique_type, aggregate_type="deploy", schema_version=2)
    event = create_event(v2(name="n", priority=1), "d1", timestamp=T0)
    assert event.schema_version == 2
    back = decode_row(make_row(prepare_event(event, MAX)))
    assert back == msgspec.structs.replace(event, version=1, position=1)


def test_reregistering_at_a_newer_schema_version_moves_appends_on(
    unique_type: str,
) -> None:
    """Registering the same class again at a higher schema version: new
    events carry it and are accepted; events still saying the old version
    are refused (prepare_event's short path reads the current version)."""
    v2 = _v2_class()
    register_event_type(v2, type=unique_type, aggregate_type="deploy")
    old = create_event(v2(name="n", priority=1), "d1", timestamp=T0)
    assert prepare_event(old, MAX).event.schema_version == 1
    register_event_type(v2, type=unique_type, aggregate_type="deploy", schema_version=2)
    new = create_event(v2(name="n", priority=1), "d1", timestamp=T0)
    assert new.schema_version == 2
    assert prepare_event(new, MAX).event.schema_version == 2
    with pytest.raises(InvalidEventError, match="schema version"):
        prepare_event(old, MAX)


def test_missing_upcaster(unique_type: str) -> None:
    """A v1 row with no upcaster from 1 raises EventDecodeError with its position."""
    register_event_type(
        _v2_class(), type=unique_type, aggregate_type="deploy", schema_version=2
    )
    with pytest.raises(EventDecodeError, match="upcaster") as info:
        decode_row(
            _stored_row(unique_type, {"name": "x"}, schema_version=1, position=77)
        )
    assert info.value.position == 77


def test_gap_in_upcaster_chain(unique_type: str) -> None:
    """A chain missing a middle step raises EventDecodeError."""

    class V3(msgspec.Struct, frozen=True):
        name: str

    register_event_type(V3, type=unique_type, aggregate_type="deploy", schema_version=3)
    register_upcaster(unique_type, 1, lambda d: d)
    with pytest.raises(EventDecodeError):
        decode_row(_stored_row(unique_type, {"name": "x"}, schema_version=1))


def test_row_newer_than_code(unique_type: str) -> None:
    """A row written by a newer schema version raises EventDecodeError."""
    register_event_type(
        _v2_class(), type=unique_type, aggregate_type="deploy", schema_version=2
    )
    row = _stored_row(
        unique_type, {"name": "x", "priority": 1}, schema_version=3, position=8
    )
    with pytest.raises(EventDecodeError, match="newer") as info:
        decode_row(row)
    assert info.value.position == 8


def test_failing_upcaster(unique_type: str) -> None:
    """An upcaster that raises gives EventDecodeError, not its own exception."""
    register_event_type(
        _v2_class(), type=unique_type, aggregate_type="deploy", schema_version=2
    )

    def broken(data: dict[str, Any]) -> dict[str, Any]:
        return {"name": data["missing"]}

    register_upcaster(unique_type, 1, broken)
    with pytest.raises(EventDecodeError) as info:
        decode_row(_stored_row(unique_type, {"name": "x"}, schema_version=1))
    assert isinstance(info.value.__cause__, KeyError)


def test_upcaster_producing_wrong_shape(unique_type: str) -> None:
    """An upcaster whose output does not fit the class gives EventDecodeError."""
    register_event_type(
        _v2_class(), type=unique_type, aggregate_type="deploy", schema_version=2
    )
    register_upcaster(unique_type, 1, lambda d: {**d, "priority": "high"})
    with pytest.raises(EventDecodeError):
        decode_row(_stored_row(unique_type, {"name": "x"}, schema_version=1))


def test_register_upcaster_unknown_type() -> None:
    """An upcaster for an unregistered type raises UnknownEventTypeError."""
    with pytest.raises(UnknownEventTypeError):
        register_upcaster("no:such-type", 1, lambda d: d)


@pytest.mark.parametrize("from_version", [0, 2, 3, "1", None])
def test_register_upcaster_bad_version(unique_type: str, from_version: Any) -> None:
    """An upcaster must start at a version in [1, schema_version)."""
    register_event_type(
        _v2_class(), type=unique_type, aggregate_type="deploy", schema_version=2
    )
    with pytest.raises(InvalidEventError):
        register_upcaster(unique_type, from_version, lambda d: d)


def test_register_upcaster_on_current_only_type() -> None:
    """A type at schema version 1 accepts no upcaster."""
    with pytest.raises(InvalidEventError):
        register_upcaster("task:completed", 1, lambda d: d)


def test_union_with_datetime_accepts_other_member(
    unique_type: str, make_row: Callable[..., Row]
) -> None:
    """A ``datetime | int`` field may hold an int."""

    class Flexible(msgspec.Struct, frozen=True):
        when: datetime | int

    register_event_type(Flexible, type=unique_type, aggregate_type="deploy")
    event = create_event(Flexible(when=5), "d1")
    back = decode_row(make_row(prepare_event(event, MAX)))
    assert back.payload == Flexible(when=5)


def test_union_with_datetime_still_checks_datetimes(unique_type: str) -> None:
    """A naive datetime in a ``datetime | None`` field is rejected."""

    class MaybeWhen(msgspec.Struct, frozen=True):
        when: datetime | None = None

    register_event_type(MaybeWhen, type=unique_type, aggregate_type="deploy")
    prepare_event(create_event(MaybeWhen(), "d1"), MAX)
    with pytest.raises(InvalidEventError):
        prepare_event(create_event(MaybeWhen(when=datetime(2024, 1, 1)), "d1"), MAX)


def test_unsupported_field_type_rejected_with_typed_error(unique_type: str) -> None:
    """A Struct msgspec cannot decode is refused with InvalidEventError."""

    class Unsupported(msgspec.Struct, frozen=True):
        when: datetime | str  # msgspec: at most one str-like type per union

    with pytest.raises(InvalidEventError):
        register_event_type(Unsupported, type=unique_type, aggregate_type="deploy")
