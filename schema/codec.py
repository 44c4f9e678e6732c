"""Encoding events for storage and decoding stored rows, built once.

The append path calls :func:`prepare_event` on the caller's thread: it
validates the event completely (registered type, payload class, field types,
UTC instants, size) and encodes it, so that a bad event is rejected before any
transaction and the writer only binds ready-made bytes. The read path calls
:func:`decode_row` with one typed msgpack decoder per registered type.

msgspec errors are translated here, at one boundary, into
:class:`~swarmlog.schema.errors.InvalidEventError` and
:class:`~swarmlog.schema.errors.EventDecodeError`. msgpack carries no code:
a database file can never make the reader execute anything.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import msgspec

from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import (
    EventDecodeError,
    InvalidEventError,
    UnknownEventTypeError,
)
from swarmlog.schema.registry import (
    EventTypeInfo,
    aggregate_type_known,
    info_for_class,
    lookup_type,
)
from swarmlog.schema.timeutil import check_utc, from_micros, to_micros

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "EVENT_COLUMNS",
    "PreparedEvent",
    "decode_row",
    "decode_value",
    "encode_value",
    "prepare_event",
]

DEFAULT_MAX_PAYLOAD_BYTES: Final = 1 << 20
"""Largest encoded payload (plus metadata) accepted, in bytes (1 MiB)."""

EVENT_COLUMNS: Final = (
    "position, id, type, aggregate_id, aggregate_type, version, timestamp, "
    "schema_version, source, payload, metadata, causation_id, correlation_id"
)
"""The column order every event SELECT uses, matching :func:`decode_row`."""

_encoder = msgspec.msgpack.Encoder()
_plain_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()
_metadata_decoder = msgspec.msgpack.Decoder(dict[str, Any])


class PreparedEvent:
    """An event validated and encoded on the caller's thread.

    The writer turns it into a row by adding ``version`` and ``position``.
    """

    __slots__ = ("event", "id_bytes", "metadata", "payload", "timestamp", "value")

    def __init__(
        self, event: Event, payload: bytes, metadata: bytes | None, value: Any
    ) -> None:
        self.event = event
        self.id_bytes = event.id.bytes
        self.payload = payload
        self.metadata = metadata
        self.timestamp = to_micros(event.timestamp)
        self.value = value
        """The payload as it will read back (e.g. lists in tuple fields
        become tuples): the stored event carries this one."""


def encode_value(value: Any, what: str) -> bytes:
    """msgpack-encode JSON-like ``value`` (or a Struct).

    Raises:
        InvalidEventError: ``value`` holds something msgpack cannot carry.
    """
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        msg = f"{what} cannot be encoded: {e}"
        raise InvalidEventError(msg) from e


def decode_value(data: bytes, type_: Any = Any) -> Any:
    """Decode msgpack ``data``, as ``type_`` when given.

    Raises:
        msgspec.DecodeError: The caller translates it with context.
    """
    if type_ is Any:
        return _plain_decoder.decode(data)
    return msgspec.msgpack.decode(data, type=type_)


def _check_str(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or (not optional and not value):
        msg = f"{what} must be a non-empty string, got {value!r}"
        raise InvalidEventError(msg)


def prepare_event(event: Event, max_payload_bytes: int) -> PreparedEvent:
    """Validate ``event`` completely and encode it for storage.

    Runs on the appending thread, before any transaction.

    Raises:
        UnknownEventTypeError: ``event.type`` is not registered.
        InvalidEventError: Anything else is wrong with the event.
    """
    info = _check_envelope(event)
    encoded, value = _encode_payload(event, info)
    metadata = _encode_metadata(event.metadata)
    size = len(encoded) + (len(metadata) if metadata else 0)
    if size > max_payload_bytes:
        msg = (
            f"{event.type} payload and metadata take {size} bytes, "
            f"over the limit of {max_payload_bytes}"
        )
        raise InvalidEventError(msg)
    return PreparedEvent(event, encoded, metadata, value)


def _check_envelope(event: Event) -> EventTypeInfo:
    if not isinstance(event, Event):
        msg = f"expected a swarmlog Event, got {type(event).__name__}"
        raise InvalidEventError(msg)
    if not isinstance(event.id, uuid.UUID):
        msg = f"event id must be a uuid.UUID, got {event.id!r}"
        raise InvalidEventError(msg)
    if not isinstance(event.type, str):
        raise UnknownEventTypeError(event.type)
    info = lookup_type(event.type)
    if info is None:
        raise UnknownEventTypeError(event.type)
    if type(event.payload) is not info.cls:
        by_class = info_for_class(type(event.payload))
        got = by_class.type if by_class is not None else type(event.payload).__name__
        msg = (
            f"event type {event.type!r} needs a {info.cls.__name__} payload, got {got}"
        )
        raise InvalidEventError(msg)
    _check_str(event.aggregate_id, "aggregate_id")
    if event.aggregate_type != info.aggregate_type:
        msg = (
            f"event type {event.type!r} belongs to aggregate type "
            f"{info.aggregate_type!r}, not {event.aggregate_type!r}"
        )
        raise InvalidEventError(msg)
    if not aggregate_type_known(event.aggregate_type):
        msg = f"unknown aggregate type {event.aggregate_type!r}"
        raise InvalidEventError(msg)
    check_utc(event.timestamp, "timestamp")
    _check_str(event.source, "source")
    _check_str(event.causation_id, "causation_id", optional=True)
    _check_str(event.correlation_id, "correlation_id", optional=True)
    if event.schema_version != info.schema_version:
        msg = (
            f"event type {event.type!r} is at schema version "
            f"{info.schema_version}, the event says {event.schema_version!r}"
        )
        raise InvalidEventError(msg)
    return info


def _encode_payload(event: Event, info: EventTypeInfo) -> tuple[bytes, Any]:
    """Encode the payload and decode it back typed (``Struct.__init__`` does
    not validate): the decoded value is what reads will return."""
    payload = event.payload
    for name in info.datetime_fields:
        original = getattr(payload, name)
        if original is not None:
            check_utc(original, f"{event.type} {name}")
    encoded = encode_value(payload, f"{event.type} payload")
    try:
        value = info.decoder.decode(encoded)
    except msgspec.ValidationError as e:
        msg = f"{event.type} payload is malformed: {e}"
        raise InvalidEventError(msg) from e
    for name in info.datetime_fields:  # e.g. a naive ISO string became a datetime
        decoded = getattr(value, name)
        if isinstance(decoded, datetime):
            check_utc(decoded, f"{event.type} {name}")
    return encoded, value


def _encode_metadata(metadata: object) -> bytes | None:
    if not isinstance(metadata, dict):
        msg = f"metadata must be a dict, got {type(metadata).__name__}"
        raise InvalidEventError(msg)
    if not metadata:
        return None
    encoded = encode_value(metadata, "metadata")
    try:
        _metadata_decoder.decode(encoded)
    except msgspec.ValidationError as e:
        msg = f"metadata must be JSON-like with string keys: {e}"
        raise InvalidEventError(msg) from e
    return encoded


def _upcast(row_type: str, stored_version: int, data: bytes, position: int) -> Any:
    info = lookup_type(row_type)
    assert info is not None
    value = _plain_decoder.decode(data)
    version = stored_version
    while version < info.schema_version:
        upcaster = info.upcasters.get(version)
        if upcaster is None:
            reason = (
                f"no upcaster registered for {row_type!r} from schema version {version}"
            )
            raise EventDecodeError(position, reason)
        value = upcaster(value)
        version += 1
    return msgspec.convert(value, info.cls)


def decode_payload(
    row_type: str, schema_version: int, data: bytes, position: int
) -> tuple[Any, int]:
    """Decode a stored payload into its registered class (upcast if older).

    Unregistered types come back as plain data. Returns the payload and the
    schema version it now has.

    Raises:
        EventDecodeError: The bytes do not decode, or no upcaster applies.
    """
    info = lookup_type(row_type)
    try:
        if info is None:
            return _plain_decoder.decode(data), schema_version
        if schema_version == info.schema_version:
            return info.decoder.decode(data), schema_version
        if schema_version > info.schema_version:
            reason = (
                f"{row_type!r} was written at schema version {schema_version}, "
                f"newer than this code's {info.schema_version}"
            )
            raise EventDecodeError(position, reason)
        return _upcast(row_type, schema_version, data, position), info.schema_version
    except EventDecodeError:
        raise
    except Exception as e:  # msgspec errors, or a failing upcaster
        raise EventDecodeError(position, f"{type(e).__name__}: {e}") from e


def decode_row(row: Sequence[Any]) -> Event:
    """Turn one row (columns in :data:`EVENT_COLUMNS` order) into an Event.

    Raises:
        EventDecodeError: The row is damaged; the error names its position.
    """
    position = row[0]
    try:
        payload, schema_version = decode_payload(row[2], row[7], row[9], position)
        metadata = _metadata_decoder.decode(row[10]) if row[10] is not None else {}
        return Event(
            id=uuid.UUID(bytes=row[1]),
            type=row[2],
            aggregate_id=row[3],
            aggregate_type=row[4],
            version=row[5],
            timestamp=from_micros(row[6]),
            schema_version=schema_version,
            source=row[8],
            payload=payload,
            metadata=metadata,
            causation_id=row[11],
            correlation_id=row[12],
            position=position,
        )
    except EventDecodeError:
        raise
    except Exception as e:  # damaged columns: wrong types, bad uuid bytes
        raise EventDecodeError(position, f"{type(e).__name__}: {e}") from e


def datetime_or_none(value: object, what: str) -> datetime | None:
    """Check an optional instant filter or field (UTC-aware or None)."""
    if value is None:
        return None
    return check_utc(value, what)
