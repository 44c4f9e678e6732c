"""The event-type registry: type string <-> payload class, decided once.

Every payload class is registered with its type string and aggregate type.
Registration builds what the hot paths need once per type (a typed msgpack
decoder, the names of the datetime fields to check), so that validating,
encoding and decoding an event never inspects classes again.
"""

from __future__ import annotations

import builtins
import threading
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import InvalidEventError, UnknownEventTypeError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BUILTIN_AGGREGATE_TYPES",
    "EventTypeInfo",
    "aggregate_type_known",
    "free_fields",
    "info_for_class",
    "info_for_type",
    "lookup_type",
    "register_event_type",
    "register_upcaster",
    "registered_types",
    "replaced_type",
]

BUILTIN_AGGREGATE_TYPES = frozenset({"agent", "task", "memory", "swarm"})


class EventTypeInfo:
    """What the store knows about one registered event type.

    Attributes:
        type: The type string.
        cls: The payload Struct class.
        aggregate_type: The aggregate type its events belong to.
        schema_version: The current version of the payload's shape.
        decoder: A typed msgpack decoder for ``cls``, built once.
        event_decoder: A typed decoder of a whole stored ``Event[cls]``.
        datetime_fields: Names of fields that hold datetimes (checked UTC).
        free_fields: ``(name, path)`` of the fields that may hold a dict
            or a list: ``path`` (``"payload.<name>"``, for error messages)
            for JSON-like ones (``Any``, ``dict[str, Any]``, ...: checked
            and frozen on append), None for other containers (typed by
            msgspec, only frozen).
        upcasters: ``{from_version: function}`` turning an older stored
            payload (plain data) into the next version's shape.
        short: ``(cls, aggregate_type, decode, schema_version,
            datetime_fields, free_fields)`` in one tuple, for the append hot path
            (one attribute load instead of five).
    """

    __slots__ = (
        "aggregate_type",
        "cls",
        "datetime_fields",
        "decoder",
        "event_decoder",
        "free_fields",
        "schema_version",
        "short",
        "type",
        "upcasters",
    )

    def __init__(
        self,
        type_: str,
        cls: type[msgspec.Struct],
        aggregate_type: str,
        schema_version: int,
    ) -> None:
        self.type = type_
        self.cls = cls
        self.aggregate_type = aggregate_type
        self.schema_version = schema_version
        try:
            self.decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(cls)
            self.event_decoder: msgspec.msgpack.Decoder[Event[Any]] = (
                msgspec.msgpack.Decoder(Event[cls])  # type: ignore[valid-type]
            )
        except TypeError as e:
            msg = f"{cls.__name__} has a field type msgspec cannot decode: {e}"
            raise InvalidEventError(msg) from e
        self.datetime_fields = _datetime_fields(cls)
        self.free_fields = free_fields(cls)
        self.upcasters: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.short: tuple[Any, ...] = ()
        self.refresh_short()

    def refresh_short(self) -> None:
        """Rebuild :attr:`short` (after ``schema_version`` changed)."""
        self.short = (
            self.cls,
            self.aggregate_type,
            self.event_decoder.decode,
            self.schema_version,
            self.datetime_fields,
            self.free_fields,
        )


def _is_instant(t: msgspec.inspect.Type) -> bool:
    """``datetime`` or ``datetime | None``: the fields held to UTC."""
    if isinstance(t, msgspec.inspect.DateTimeType):
        return True
    if isinstance(t, msgspec.inspect.UnionType):
        kinds = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        return len(kinds) == 1 and isinstance(kinds[0], msgspec.inspect.DateTimeType)
    return False


def _datetime_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(f.name for f in info.fields if _is_instant(f.type))


_JSON_SCALARS = (
    msgspec.inspect.StrType,
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.BoolType,
    msgspec.inspect.NoneType,
    msgspec.inspect.AnyType,
)


def _json_like(t: msgspec.inspect.Type) -> bool:
    """Whether every value of type ``t`` is JSON-like as stored (then the
    append walk checks and freezes it exactly as it will read back)."""
    if isinstance(t, _JSON_SCALARS):
        return True
    if isinstance(t, msgspec.inspect.DictType):
        return isinstance(t.key_type, msgspec.inspect.StrType) and _json_like(
            t.value_type
        )
    if isinstance(t, msgspec.inspect.ListType):
        return _json_like(t.item_type)
    if isinstance(t, msgspec.inspect.UnionType):
        return all(_json_like(x) for x in t.types)
    return False


def _holds_container(t: msgspec.inspect.Type) -> bool:
    """Whether a decoded value of type ``t`` may hold a dict or a list."""
    if isinstance(
        t, (msgspec.inspect.AnyType, msgspec.inspect.DictType, msgspec.inspect.ListType)
    ):
        return True
    if isinstance(t, msgspec.inspect.UnionType):
        return any(_holds_container(x) for x in t.types)
    if isinstance(t, (msgspec.inspect.VarTupleType, msgspec.inspect.FrozenSetType)):
        return _holds_container(t.item_type)
    if isinstance(t, msgspec.inspect.TupleType):
        return any(_holds_container(x) for x in t.item_types)
    return False


def free_fields(cls: type[msgspec.Struct]) -> tuple[tuple[str, str | None], ...]:
    """``(name, path)`` of the fields of ``cls`` that may hold a dict or a
    list (decided once, at registration): ``path`` is ``"payload.<name>"``
    when the field is JSON-like free-form data (``Any``, ``dict[str,
    Any]``, ``list[int]``, ...), else None."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(
        (f.name, f"payload.{f.name}" if _json_like(f.type) else None)
        for f in info.fields
        if _holds_container(f.type)
    )


def _shape(cls: type[msgspec.Struct]) -> bytes | None:
    """What makes two payload classes the same definition: their fields
    (names, types, defaults, tag, encoding options) as a JSON schema,
    without titles and docstrings; None when there is no JSON schema."""
    try:
        schema = msgspec.json.schema(cls)
    except (TypeError, ValueError):
        return None
    return msgspec.json.encode(_without_prose(schema, mapping=False), order="sorted")


_VERBATIM = frozenset({"default", "const", "enum", "examples"})


def _without_prose(node: Any, *, mapping: bool) -> Any:
    if isinstance(node, dict):
        if mapping:  # field names or $defs names -> schemas
            return {k: _without_prose(v, mapping=False) for k, v in node.items()}
        return {
            k: v if k in _VERBATIM else _without_prose(v, mapping=k in _MAPPINGS)
            for k, v in node.items()
            if k not in ("title", "description")
        }
    if isinstance(node, list):
        return [_without_prose(x, mapping=False) for x in node]
    return node


_MAPPINGS = frozenset({"properties", "$defs", "patternProperties"})


def _same_definition(a: type[msgspec.Struct], b: type[msgspec.Struct]) -> bool:
    shape = _shape(a)
    return (
        shape is not None
        and shape == _shape(b)
        and a.__struct_config__.tag == b.__struct_config__.tag
        and a.__struct_config__.frozen == b.__struct_config__.frozen
    )


_BUILTIN_MODULE = "swarmlog.schema.events"  # built-in types are never replaced
_lock = threading.Lock()
_by_type: dict[str, EventTypeInfo] = {}
_by_class: dict[type[Any], EventTypeInfo] = {}
_replaced: dict[type[Any], str] = {}  # classes an identical definition replaced
_aggregate_types: set[str] = set(BUILTIN_AGGREGATE_TYPES)


def register_event_type(
    cls: type[msgspec.Struct],
    *,
    type: str | None = None,
    aggregate_type: str,
    schema_version: int = 1,
) -> type[msgspec.Struct]:
    """Register a payload class so its events can be appended and decoded.

    Safe from any thread. Registering the same class with the same type again
    is a no-op (at a higher ``schema_version``, it moves the type on). An
    identical definition in a new class (same type string, aggregate type,
    schema version, fields and tag: a notebook cell run again) replaces the
    old class, which new events and decoding then use; the old class's
    instances are refused with a message saying so. The type string
    defaults to the class's msgspec ``tag``.

    Args:
        cls: A frozen ``msgspec.Struct`` subclass.
        type: The type string, e.g. ``"deploy:finished"``.
        aggregate_type: The aggregate type its events belong to (a new name
            registers a custom aggregate type).
        schema_version: The current version of the payload's shape; bump it
            and register an upcaster when you change the shape.

    Returns:
        ``cls``, so this also works as a decorator helper.

    Raises:
        InvalidEventError: ``cls`` is not a Struct, or the type string is
            missing or taken by a different definition (the message names
            both classes).
    """
    if not (isinstance(cls, builtins.type) and issubclass(cls, msgspec.Struct)):
        msg = f"payload class must be a msgspec.Struct subclass, got {cls!r}"
        raise InvalidEventError(msg)
    tag = cls.__struct_config__.tag
    type_ = type if type is not None else tag
    if not isinstance(type_, str) or not type_:
        msg = f"{cls.__name__} needs a type string (type=... or a str msgspec tag)"
        raise InvalidEventError(msg)
    if isinstance(tag, str) and tag != type_:
        msg = f"{cls.__name__} is tagged {tag!r} but registered as {type_!r}"
        raise InvalidEventError(msg)
    if not isinstance(aggregate_type, str) or not aggregate_type:
        msg = "aggregate_type must be a non-empty string"
        raise InvalidEventError(msg)
    if not isinstance(schema_version, int) or schema_version < 1:
        msg = "schema_version must be an int >= 1"
        raise InvalidEventError(msg)
    with _lock:
        existing = _by_type.get(type_)
        if existing is not None:
            if existing.cls is cls and existing.aggregate_type == aggregate_type:
                existing.schema_version = max(existing.schema_version, schema_version)
                existing.refresh_short()
                return cls
            if not (
                existing.cls.__module__ != _BUILTIN_MODULE
                and existing.aggregate_type == aggregate_type
                and existing.schema_version == schema_version
                and _same_definition(existing.cls, cls)
            ):
                msg = (
                    f"event type {type_!r} is already registered to "
                    f"{_describe(existing.cls)} (aggregate type "
                    f"{existing.aggregate_type!r}, schema version "
                    f"{existing.schema_version}); {_describe(cls)} (aggregate "
                    f"type {aggregate_type!r}, schema version {schema_version}) "
                    "is a different definition"
                )
                raise InvalidEventError(msg)
        info = EventTypeInfo(type_, cls, aggregate_type, schema_version)
        if existing is not None:  # the same definition again: the new class wins
            info.upcasters.update(existing.upcasters)
            _replaced[existing.cls] = type_
        _by_type[type_] = info
        _by_class[cls] = info
        _aggregate_types.add(aggregate_type)
    return cls


def _describe(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def replaced_type(cls: type[Any]) -> str | None:
    """The type string ``cls`` was registered under before an identical
    definition replaced it (re-running a notebook cell), or None."""
    return _replaced.get(cls)


def register_upcaster(
    event_type: str,
    from_version: int,
    upcaster: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Register a function that upgrades a stored payload by one version.

    Stored events written at ``from_version`` are passed (as plain data) to
    ``upcaster``, whose result is treated as ``from_version + 1``; upcasters
    chain until the registered ``schema_version`` is reached, on every read
    path, without rewriting the log.

    Raises:
        UnknownEventTypeError: ``event_type`` is not registered.
        InvalidEventError: ``from_version`` is not below the current version.
    """
    info = info_for_type(event_type)
    if not isinstance(from_version, int) or not 1 <= from_version < info.schema_version:
        msg = (
            f"upcaster for {event_type!r} must start below its schema_version "
            f"{info.schema_version}, got {from_version!r}"
        )
        raise InvalidEventError(msg)
    with _lock:
        info.upcasters[from_version] = upcaster


def info_for_type(event_type: str) -> EventTypeInfo:
    """The registration of ``event_type``.

    Raises:
        UnknownEventTypeError: it is not registered.
    """
    info = _by_type.get(event_type)
    if info is None:
        raise UnknownEventTypeError(event_type)
    return info


def lookup_type(event_type: str) -> EventTypeInfo | None:
    """The registration of ``event_type``, or None."""
    return _by_type.get(event_type)


def info_for_class(cls: type[Any]) -> EventTypeInfo | None:
    """The registration of a payload class, or None."""
    return _by_class.get(cls)


def aggregate_type_known(aggregate_type: str) -> bool:
    """Whether ``aggregate_type`` is built in or was registered."""
    return aggregate_type in _aggregate_types


def registered_types() -> dict[str, EventTypeInfo]:
    """A copy of the registry: type string -> registration."""
    with _lock:
        return dict(_by_type)
