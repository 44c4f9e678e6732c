"""Registering a type again: an identical definition (a notebook cell run
twice) replaces the class; a different one is an error naming both."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES, decode_row, prepare_event
from swarmlog.schema.errors import InvalidEventError
from swarmlog.schema.factories import create_event
from swarmlog.schema.registry import (
    info_for_class,
    info_for_type,
    register_event_type,
    register_upcaster,
)
from swarmlog.store import EventStore

MAX = DEFAULT_MAX_PAYLOAD_BYTES
T0 = datetime(2024, 3, 4, tzinfo=UTC)


def _cell(type_: str, *, doc: str = "A deploy.") -> type[msgspec.Struct]:
    """What running the same notebook cell does: a new, identical class."""

    class Deployed(msgspec.Struct, frozen=True):
        service: str
        ok: bool = True
        detail: dict[str, Any] = {}

    Deployed.__doc__ = doc
    register_event_type(Deployed, type=type_, aggregate_type="deploy")
    return Deployed


def test_identical_definition_replaces_the_class(unique_type: str) -> None:
    """The second registration succeeds; new events and decoding use it."""
    first = _cell(unique_type)
    stored = prepare_event(create_event(first("api"), "d1", timestamp=T0), MAX)
    second = _cell(unique_type, doc="Edited docstring.")
    assert second is not first
    assert info_for_type(unique_type).cls is second
    assert info_for_class(second) is info_for_type(unique_type)
    back = decode_row((1, unique_type, 1, stored.row(1, 1)[8]))
    assert type(back.payload) is second
    assert back.payload == second("api")
    fresh = prepare_event(create_event(second("web"), "d2"), MAX)
    assert type(fresh.event.payload) is second


def test_old_class_instances_are_refused_clearly(unique_type: str) -> None:
    """A payload built from the replaced class says so."""
    first = _cell(unique_type)
    _cell(unique_type)
    with pytest.raises(InvalidEventError, match="registered again"):
        prepare_event(create_event(first("api"), "d1"), MAX)


def test_replacement_keeps_upcasters(unique_type: str) -> None:
    """Upcasters registered for the type survive the replacement."""

    def cell() -> type[msgspec.Struct]:
        class JobV2(msgspec.Struct, frozen=True):
            name: str
            priority: int

        register_event_type(
            JobV2, type=unique_type, aggregate_type="deploy", schema_version=2
        )
        return JobV2

    cell()
    register_upcaster(unique_type, 1, lambda d: {**d, "priority": 0})
    second = cell()
    old_row = msgspec.msgpack.encode(
        {
            "position": 1,
            "version": 1,
            "id": b"\x01" * 16,
            "type": unique_type,
            "aggregate_id": "d1",
            "aggregate_type": "deploy",
            "payload": {"name": "x"},
            "timestamp": T0,
            "schema_version": 1,
        }
    )
    event = decode_row((1, unique_type, 1, old_row))
    assert event.payload == second(name="x", priority=0)


def test_different_fields_are_an_error_naming_both(unique_type: str) -> None:
    """Same type string and version, other fields: refused, both named."""
    first = _cell(unique_type)

    class Deployed(msgspec.Struct, frozen=True):
        service: str
        ok: int = 1  # another type
        detail: dict[str, Any] = {}

    with pytest.raises(InvalidEventError) as info:
        register_event_type(Deployed, type=unique_type, aggregate_type="deploy")
    message = str(info.value)
    assert unique_type in message
    assert message.count("Deployed") == 2
    assert "different definition" in message
    assert info_for_type(unique_type).cls is first


@pytest.mark.parametrize(
    "change",
    [
        {"aggregate_type": "other"},
        {"schema_version": 2},
    ],
)
def test_other_aggregate_or_version_is_an_error(
    unique_type: str, change: dict[str, Any]
) -> None:
    """An identical class under another aggregate type or schema version is
    not the same definition."""
    first = _cell(unique_type)

    class Deployed(msgspec.Struct, frozen=True):
        service: str
        ok: bool = True
        detail: dict[str, Any] = {}

    options: dict[str, Any] = {"aggregate_type": "deploy", **change}
    with pytest.raises(InvalidEventError, match="different definition"):
        register_event_type(Deployed, type=unique_type, **options)
    assert info_for_type(unique_type).cls is first


def test_other_default_is_a_different_definition(unique_type: str) -> None:
    """A changed default changes the definition."""
    _cell(unique_type)

    class Deployed(msgspec.Struct, frozen=True):
        service: str
        ok: bool = False
        detail: dict[str, Any] = {}

    with pytest.raises(InvalidEventError, match="different definition"):
        register_event_type(Deployed, type=unique_type, aggregate_type="deploy")


def test_tagged_cell_run_twice(unique_type: str) -> None:
    """A tagged class defined again registers again (type from its tag)."""

    def cell() -> type[msgspec.Struct]:
        cls = msgspec.defstruct(
            "Tagged", [("x", int), ("title", str)], frozen=True, tag=unique_type
        )
        register_event_type(cls, aggregate_type="deploy")
        return cls

    cell()
    second = cell()
    assert info_for_type(unique_type).cls is second


def test_store_reads_with_the_new_class(unique_type: str) -> None:
    """A store keeps working across the re-registration."""
    first = _cell(unique_type)
    with EventStore() as store:
        store.append(create_event(first("api", detail={"v": 1}), "d1"))
        second = _cell(unique_type)
        store.append(create_event(second("web"), "d1"))
        payloads = [e.payload for e in store.get_events("d1")]
    assert [type(p) for p in payloads] == [second, second]
    assert payloads[0].detail == {"v": 1}
