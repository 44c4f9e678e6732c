"""Free-form event data is JSON-like, checked on append with the field's
path, and read-only wherever an event is handed out (prepared or decoded)."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES, decode_row, prepare_event
from swarmlog.schema.errors import InvalidEventError, InvalidValueError
from swarmlog.schema.factories import (
    create_agent_task_completed_event,
    create_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_terminated_event,
    create_task_completed_event,
)
from swarmlog.schema.frozen import (
    MAX_DEPTH,
    FrozenDict,
    FrozenList,
    freeze_json,
    freeze_stored,
)
from swarmlog.schema.registry import register_event_type

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.schema.envelope import Event

MAX = DEFAULT_MAX_PAYLOAD_BYTES
T0 = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Tier(enum.StrEnum):
    GOLD = "gold"


class Point(msgspec.Struct):
    x: int


NOT_JSON = [
    pytest.param(uuid.UUID(int=7), "uuid.UUID", id="uuid"),
    pytest.param(Decimal("1.10"), "decimal.Decimal", id="decimal"),
    pytest.param({1, 2}, "builtins.set", id="set"),
    pytest.param(frozenset({1}), "builtins.frozenset", id="frozenset"),
    pytest.param(b"raw", "builtins.bytes", id="bytes"),
    pytest.param(bytearray(b"raw"), "builtins.bytearray", id="bytearray"),
    pytest.param(T0, "datetime.datetime", id="datetime"),
    pytest.param(Color.RED, "Color", id="plain-enum"),
    pytest.param(Point(1), "Point", id="struct"),
    pytest.param(object(), "builtins.object", id="object"),
    pytest.param(float("nan"), "not a finite number", id="nan"),
    pytest.param(float("inf"), "not a finite number", id="inf"),
    pytest.param(-math.inf, "not a finite number", id="-inf"),
    pytest.param(2**63, "64-bit", id="int-too-big"),
    pytest.param(-(2**63) - 1, "64-bit", id="int-too-small"),
    pytest.param({1: "x"}, "keys must be str", id="int-key"),
]


def _task(result: Any, **envelope: Any) -> Event[Any]:
    return create_task_completed_event("t1", result, 5, timestamp=T0, **envelope)


FIELDS: list[Any] = [
    pytest.param(_task, "payload.result", id="task-result"),
    pytest.param(
        lambda v: create_agent_task_completed_event("a1", "t1", v, T0, 5),
        "payload.result",
        id="agent-task-result",
    ),
    pytest.param(
        lambda v: create_swarm_initialized_event("mesh", 4, v, timestamp=T0),
        "payload.config",
        id="config",
    ),
    pytest.param(
        lambda v: create_swarm_terminated_event("done", v, timestamp=T0),
        "payload.metrics",
        id="metrics",
    ),
    pytest.param(
        lambda v: create_swarm_error_event("e", v, timestamp=T0),
        "payload.context",
        id="context",
    ),
    pytest.param(lambda v: _task(None, metadata={"m": v}), "metadata.m", id="metadata"),
]


class TestRefused:
    """Anything not JSON-like raises InvalidValueError naming the path."""

    @pytest.mark.parametrize(("bad", "named"), NOT_JSON)
    @pytest.mark.parametrize(("make", "path"), FIELDS)
    def test_every_free_form_field(
        self, make: Callable[[Any], Event[Any]], path: str, bad: Any, named: str
    ) -> None:
        """Each kind of bad value, in each free-form field, nested or not."""
        with pytest.raises(InvalidValueError, match=named) as info:
            prepare_event(make(bad), MAX)
        assert info.value.path == path
        nested = {"items": [0, 1, 2, bad]}
        with pytest.raises(InvalidValueError) as info:
            prepare_event(make(nested), MAX)
        assert info.value.path == f"{path}.items[3]"
        assert str(info.value).startswith(f"{path}.items[3] cannot be encoded: ")
        assert isinstance(info.value, InvalidEventError)

    def test_odd_keys_are_quoted_in_the_path(self) -> None:
        """A key that is not an identifier shows as ['...']."""
        with pytest.raises(InvalidValueError) as info:
            prepare_event(_task({"a b": [{"c": {1, 2}}]}), MAX)
        assert info.value.path == "payload.result['a b'][0].c"

    def test_deep_nesting_is_refused_not_a_recursion_error(self) -> None:
        """5,000 levels raise InvalidValueError, never RecursionError."""
        value: Any = []
        for _ in range(5000):
            value = [value]
        with pytest.raises(InvalidValueError, match=f"deeper than {MAX_DEPTH}"):
            prepare_event(_task(value), MAX)
        with pytest.raises(InvalidValueError, match="deeper"):
            prepare_event(_task(None, metadata={"m": value}), MAX)

    def test_depth_limit_is_exact(self) -> None:
        """MAX_DEPTH nested containers pass; one more does not."""
        value: Any = 1
        for _ in range(MAX_DEPTH):
            value = {"k": value}
        assert prepare_event(_task(value), MAX).event.payload.result == value
        with pytest.raises(InvalidValueError, match="deeper"):
            prepare_event(_task([value]), MAX)

    def test_int64_bounds_pass(self) -> None:
        """The ends of the signed 64-bit range are JSON-like."""
        value = [-(2**63), 2**63 - 1]
        assert prepare_event(_task(value), MAX).event.payload.result == value

    @pytest.mark.parametrize("metadata", [[1], [], None, "", 0, ()])
    def test_metadata_must_be_a_dict(self, metadata: Any) -> None:
        """Metadata that is not a dict is refused, empty or not."""
        event = msgspec.structs.replace(_task(None), metadata=metadata)
        with pytest.raises(InvalidEventError, match="metadata"):
            prepare_event(event, MAX)

    def test_custom_any_fields_are_checked(self, unique_type: str) -> None:
        """A registered type's Any and dict[str, Any] fields are free-form."""

        class Report(msgspec.Struct, frozen=True):
            body: Any
            extra: dict[str, Any] = {}
            counts: list[int] = []

        register_event_type(Report, type=unique_type, aggregate_type="report")
        bad = create_event(Report(body=1, extra={"x": [uuid.uuid4()]}), "r1")
        with pytest.raises(InvalidValueError) as info:
            prepare_event(bad, MAX)
        assert info.value.path == "payload.extra.x[0]"
        good = prepare_event(
            create_event(Report(body={"a": (1, 2)}, counts=[3]), "r1"), MAX
        ).event
        assert good.payload.body == {"a": [1, 2]}
        for value in (good.payload.body, good.payload.extra, good.payload.counts):
            assert type(value) in (FrozenDict, FrozenList)


class TestAccepted:
    """JSON-like values pass and read back equal, frozen."""

    def test_tuples_become_lists(self) -> None:
        """A tuple is stored, and read back, as a list."""
        prepared = prepare_event(_task({"pair": (1, (2, 3))}), MAX)
        assert prepared.event.payload.result == {"pair": [1, [2, 3]]}
        back = decode_row((1, "task:completed", 1, prepared.row(1, 1)[8]))
        assert back.payload.result == {"pair": [1, [2, 3]]}
        assert type(back.payload.result["pair"]) is FrozenList

    def test_str_int_float_subclasses_become_plain(self) -> None:
        """IntEnum / str-mixin enums are stored as their plain values."""
        result = prepare_event(
            _task({"level": Level.HIGH, "tier": Tier.GOLD, "ok": True}), MAX
        ).event.payload.result
        assert result == {"level": 3, "tier": "gold", "ok": True}
        assert type(result["level"]) is int
        assert type(result["tier"]) is str
        assert result["ok"] is True

    @pytest.mark.parametrize(
        "value", [None, True, 0, -5, 1.5, "s", [], {}, [1, "a", None, {"k": [2.5]}]]
    )
    def test_plain_values_round_trip(self, value: Any) -> None:
        """Every JSON-like shape round-trips equal, containers read-only."""
        prepared = prepare_event(_task(value, metadata={"v": value}), MAX)
        back = decode_row((1, "task:completed", 1, prepared.row(1, 1)[8]))
        for event in (prepared.event, back):
            assert event.payload.result == value
            assert event.metadata == {"v": value}
            assert type(event.metadata) is FrozenDict
            if isinstance(value, dict | list):
                assert type(event.payload.result) in (FrozenDict, FrozenList)

    def test_unregistered_types_decode_read_only(self) -> None:
        """A row of a type this process does not know decodes as frozen
        plain data."""
        prepared = prepare_event(_task({"a": [1]}), MAX)
        data = prepared.row(1, 1)[8].replace(b"task:completed", b"task:complete?")
        back = decode_row((1, "task:complete?", 1, data))
        assert isinstance(back.payload, dict)
        assert type(back.payload) is FrozenDict
        assert type(back.payload["result"]["a"]) is FrozenList

    def test_the_callers_event_is_untouched(self) -> None:
        """The walk copies: the caller's own containers stay mutable."""
        mine = {"items": [1]}
        event = _task(mine)
        prepare_event(event, MAX)
        mine["items"].append(2)
        assert event.payload.result is mine


def test_freeze_stored_keeps_scalars_and_tuples() -> None:
    """freeze_stored returns scalars and container-free tuples as they are."""
    assert freeze_stored(5) == 5
    items = ("a", 1)
    assert freeze_stored(items) is items
    wrapped = freeze_stored(({"a": 1},))
    assert type(wrapped[0]) is FrozenDict
    assert freeze_stored({}) == {}


def test_freeze_json_copies_frozen_input() -> None:
    """Read-only input (an event read back, appended again) passes too."""
    value = freeze_json({"a": [1, {"b": 2}]}, "x")
    assert freeze_json(value, "x") == value


def test_deep_legacy_rows_still_decode() -> None:
    """A row stored before the depth limit, nested far deeper, still reads:
    its top levels read-only, the rest as decoded."""
    deep: Any = [1]
    for _ in range(600):
        deep = [deep]
    event = _task(None)
    envelope = msgspec.to_builtins(event)
    envelope["position"] = envelope["version"] = 1
    envelope["id"] = event.id.bytes
    envelope["payload"]["result"] = deep
    data = msgspec.msgpack.encode(envelope)
    back = decode_row((1, "task:completed", 1, data))
    assert type(back.payload.result) is FrozenList
    assert back.payload.result == deep


def test_builtin_types_cannot_be_replaced() -> None:
    """An identical copy of a built-in payload class is refused: the
    built-in factories and read models keep their classes."""
    from swarmlog.schema.events import TaskQueued
    from swarmlog.schema.registry import info_for_type, register_event_type

    copy = msgspec.defstruct(
        "TaskQueued",
        [("task_id", str), ("priority", str), ("queued_at", datetime)],
        frozen=True,
        kw_only=True,
        tag="task:queued",
    )
    with pytest.raises(InvalidEventError, match="different definition"):
        register_event_type(copy, aggregate_type="task")
    assert info_for_type("task:queued").cls is TaskQueued
