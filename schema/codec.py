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

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec

from swarmlog.schema.causation import cause_key
from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import (
    EventDecodeError,
    InvalidEventError,
    UnknownEventTypeError,
)
from swarmlog.schema.frozen import EMPTY_DICT, freeze_json, freeze_stored
from swarmlog.schema.registry import (
    EventTypeInfo,
    info_for_class,
    lookup_type,
    replaced_type,
)
from swarmlog.schema.registry import _by_type as _registered
from swarmlog.schema.timeutil import check_utc, to_micros

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "EVENT_COLUMNS",
    "INSERT_COLUMNS",
    "POSITION_OFFSET",
    "PreparedEvent",
    "decode_row",
    "decode_value",
    "encode_value",
    "prepare_event",
]

DEFAULT_MAX_PAYLOAD_BYTES: Final = 1 << 20
"""Largest encoded event (payload, metadata, envelope) accepted (1 MiB)."""

EVENT_COLUMNS: Final = "position, type, schema_version, data"
"""The columns every event SELECT reads, in :func:`decode_row`'s order."""

INSERT_COLUMNS: Final = (
    "position, id, type, aggregate_id, aggregate_type, version, timestamp, "
    "schema_version, data, cause, correlation_id"
)
"""The columns of a stored row, in :meth:`PreparedEvent.row`'s order. The
envelope lives whole in ``data``; the other columns exist to be indexed and
filtered on."""

# One encoder for payloads, metadata and envelopes, so that what validation
# decodes is exactly what reads will decode.
_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_encode = _encoder.encode
_any_event_decoder = msgspec.msgpack.Decoder(Event[Any])
_raw_event_decoder = msgspec.msgpack.Decoder(Event[msgspec.Raw])

# An envelope encodes as a 13-entry map whose first entries are position and
# version (Event's first fields), 0 until stored. The writer swaps this head
# for one holding the real numbers (fixed-width uint64s): no re-encoding.
_UNSTORED_HEAD: Final = b"\x8d\xa8position\x00\xa7version\x00"
_HEAD_POSITION: Final = b"\x8d\xa8position\xcf"
_HEAD_VERSION: Final = b"\xa7version\xcf"
_ID_HEAD: Final = b"\xa2id\xc4\x10"  # then the id's 16 bytes
POSITION_OFFSET: Final = len(_HEAD_POSITION)
"""Where a stored envelope (a row's ``data``) holds its position: 8 bytes,
big-endian. A backend that places rows itself (PostgreSQL's writer outside
a round) writes the position it gives a row there."""
_ID_START: Final = len(_UNSTORED_HEAD) + len(_ID_HEAD)
_ID_END: Final = _ID_START + 16
_UNSTORED_HEAD_SIZE: Final = len(_UNSTORED_HEAD)
_STORED_LAYOUT: Final = _UNSTORED_HEAD + _ID_HEAD  # every prepared envelope's start
_plain_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()
_metadata_decoder = msgspec.msgpack.Decoder(dict[str, Any])
_force_setattr = msgspec.structs.force_setattr


class PreparedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event validated and encoded on the caller's thread.

    The writer turns it into a row with :meth:`row`, adding only ``version``
    and ``position``. (A msgspec Struct: built in C, the cheapest object
    to make once per appended event; ``gc=False``, as it never takes part
    in a reference cycle.)

    Attributes:
        event: The event exactly as it will read back (decoded from
            ``data``: lists in tuple fields are tuples, metadata and
            free-form payload fields are read-only JSON-like data), with
            position and version 0.
        data: The encoded envelope, with position and version still 0.
        cause: The ``cause`` column: the causation id as the why-queries
            look it up (:func:`~swarmlog.schema.causation.cause_key`),
            decided here, on the appending thread.
    """

    event: Event[Any]
    data: bytes
    cause: bytes | str | None = None

    @property
    def id_bytes(self) -> bytes:
        """The event id's 16 bytes (at a fixed offset of the envelope,
        checked by :func:`prepare_event`: slicing beats ``UUID.bytes``)."""
        return self.data[_ID_START:_ID_END]

    @property
    def value(self) -> Any:
        """The payload as it will read back."""
        return self.event.payload

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata as it will read back."""
        return self.event.metadata

    def row(self, version: int, position: int) -> tuple[Any, ...]:
        """The stored row (:data:`INSERT_COLUMNS` order) at these numbers.

        Runs on the writing thread; the ``timestamp`` column is computed
        here, where the row is built, not on the appending thread.
        """
        event = self.event
        data = self.data
        stamped = b"".join(
            (
                _HEAD_POSITION,
                position.to_bytes(8, "big"),
                _HEAD_VERSION,
                version.to_bytes(8, "big"),
                data[_UNSTORED_HEAD_SIZE:],
            )
        )
        return (
            position,
            data[_ID_START:_ID_END],
            event.type,
            event.aggregate_id,
            event.aggregate_type,
            version,
            to_micros(event.timestamp),
            event.schema_version,
            stamped,
            self.cause,
            event.correlation_id,
        )


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


def prepare_event(event: Event[Any], max_payload_bytes: int) -> PreparedEvent:
    """Validate ``event`` completely and encode it for storage.

    Runs on the appending thread, before any transaction. The event is
    encoded once, then decoded back with its type's typed decoder, which
    checks every field's type in C (``Struct.__init__`` does not validate);
    the decoded copy is what the store returns and what reads will return.

    The common case (a registered type, its payload class, instants in
    ``datetime.timezone.utc``) takes a short path of identity checks
    around the encode and decode; anything else, and anything the short
    path finds wrong, goes through
    the careful path, which names the problem. On both, the free-form
    values (metadata, ``Any`` fields) are checked JSON-like and copied
    read-only in one walk (:func:`~swarmlog.schema.frozen.freeze_json`)
    before encoding; the copies replace the decoded plain containers.
    ``causation_id``/``correlation_id`` given as UUIDs are stored as their
    strings.

    Raises:
        UnknownEventTypeError: ``event.type`` is not registered.
        InvalidEventError: Anything else is wrong with the event.
    """
    try:
        cls, aggregate_type, decode, schema_version, instants, free = _registered[
            event.type
        ].short
        timestamp = event.timestamp
        # (An Event subclass or look-alike with other fields encodes to
        # another layout, checked below, and goes the careful way.)
        usual = (
            type(event.payload) is cls
            and event.aggregate_type == aggregate_type
            and type(timestamp) is datetime
            and timestamp.tzinfo is UTC
            and type(event.id) is UUID
        )
        if usual and instants:
            for name in instants:
                value = getattr(event.payload, name)
                if value is not None and (
                    type(value) is not datetime or value.tzinfo is not UTC
                ):
                    usual = False
    except (KeyError, TypeError, AttributeError):
        usual = False
    if usual:
        # The free-form values are checked (JSON-like) and their read-only
        # copies built in one walk before encoding; they replace the
        # decoded copy's plain containers, which they equal.
        # (A falsy non-dict metadata fails the typed decode below and goes
        # the careful way, which refuses it: EMPTY_DICT is never installed.)
        metadata = event.metadata
        frozen_metadata = freeze_json(metadata, "metadata") if metadata else EMPTY_DICT
        frozen = _freeze_fields(event.payload, free) if free else None
        try:
            data = _encode(event)
            # The layout check also stands for two field checks: position
            # and version are 0.
            if len(data) <= max_payload_bytes and data.startswith(_STORED_LAYOUT):
                stored: Event[Any] = decode(data)
                if (
                    stored.aggregate_id
                    and stored.source
                    and stored.schema_version == schema_version
                ):
                    _force_setattr(stored, "metadata", frozen_metadata)
                    if frozen is not None:
                        _install(stored.payload, free, frozen)
                    cause = stored.causation_id
                    if cause is None:  # most events: no call
                        return PreparedEvent(stored, data)
                    return PreparedEvent(stored, data, cause_key(cause))
        except (TypeError, ValueError, OverflowError, msgspec.MsgspecError):
            pass
    return _prepare_carefully(event, max_payload_bytes)


def _freeze_fields(payload: Any, free: tuple[tuple[str, str | None], ...]) -> list[Any]:
    """The checked read-only copies of the JSON-like free-form fields of the
    payload to append (None for the fields only frozen after decoding)."""
    return [
        None if path is None else freeze_json(getattr(payload, name), path)
        for name, path in free
    ]


def _install(
    payload: Any, free: tuple[tuple[str, str | None], ...], frozen: list[Any]
) -> None:
    """Put read-only values into a freshly decoded payload: the checked
    copies for JSON-like fields, the decoded values wrapped for others."""
    for (name, path), value in zip(free, frozen, strict=True):
        if path is None:
            value = freeze_stored(getattr(payload, name))  # noqa: PLW2901
        _force_setattr(payload, name, value)


def _prepare_carefully(event: Event[Any], max_payload_bytes: int) -> PreparedEvent:
    """:func:`prepare_event` one check at a time, each with its message."""
    info = _check_routing(event)
    check_utc(event.timestamp, "timestamp")
    payload = event.payload
    for name in info.datetime_fields:  # non-UTC offsets vanish once encoded
        original = getattr(payload, name)
        if original is not None:
            check_utc(original, f"{event.type} {name}")
    if event.position != 0 or event.version != 0:
        event = msgspec.structs.replace(event, position=0, version=0)
    ids = {}
    for name in ("causation_id", "correlation_id"):
        value = getattr(event, name)
        if isinstance(value, UUID):
            ids[name] = str(value)
    if ids:
        event = msgspec.structs.replace(event, **ids)
    frozen_metadata = freeze_json(event.metadata, "metadata")
    if type(frozen_metadata) is not type(EMPTY_DICT):
        msg = f"metadata must be a dict, got {type(event.metadata).__name__}"
        raise InvalidEventError(msg)
    frozen = _freeze_fields(payload, info.free_fields)
    try:
        data = _encoder.encode(event)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        msg = f"{info.type} event cannot be encoded: {e}"
        raise InvalidEventError(msg) from e
    if len(data) > max_payload_bytes:
        msg = (
            f"{info.type} event takes {len(data)} bytes encoded, over the "
            f"limit of {max_payload_bytes} (max_payload_bytes)"
        )
        raise InvalidEventError(msg)
    try:
        stored: Event[Any] = info.event_decoder.decode(data)
    except msgspec.ValidationError as e:
        msg = f"{info.type} event is malformed: {e}"
        raise InvalidEventError(msg) from e
    if not data.startswith(_STORED_LAYOUT):  # pragma: no cover
        msg = "the event envelope did not encode in the stored layout"
        raise InvalidEventError(msg)
    _check_decoded(stored, info)
    _force_setattr(stored, "metadata", frozen_metadata or EMPTY_DICT)
    _install(stored.payload, info.free_fields, frozen)
    return PreparedEvent(stored, data, cause_key(stored.causation_id))


def _check_routing(event: Event[Any]) -> EventTypeInfo:
    """What must hold before encoding: the class, the type, the payload
    class, the aggregate."""
    if type(event) is not Event:  # a subclass would encode another layout
        msg = f"expected a swarmlog Event, got {type(event).__name__}"
        raise InvalidEventError(msg)
    event_type = event.type
    info = _registered.get(event_type) if isinstance(event_type, str) else None
    if info is None:
        raise UnknownEventTypeError(event_type)
    if type(event.payload) is not info.cls:
        if replaced_type(type(event.payload)) == event_type:
            msg = (
                f"event type {event_type!r} was registered again with a new "
                f"{info.cls.__name__} class; build the payload from that class "
                "(this one is the replaced class)"
            )
            raise InvalidEventError(msg)
        by_class = info_for_class(type(event.payload))
        got = by_class.type if by_class is not None else type(event.payload).__name__
        msg = (
            f"event type {event_type!r} needs a {info.cls.__name__} payload, got {got}"
        )
        raise InvalidEventError(msg)
    if event.aggregate_type != info.aggregate_type:
        msg = (
            f"event type {event_type!r} belongs to aggregate type "
            f"{info.aggregate_type!r}, not {event.aggregate_type!r}"
        )
        raise InvalidEventError(msg)
    aggregate_id = event.aggregate_id
    if not aggregate_id or type(aggregate_id) is not str:
        msg = f"aggregate_id must be a non-empty string, got {aggregate_id!r}"
        raise InvalidEventError(msg)
    if type(event.id) is not UUID:
        msg = f"event id must be a uuid.UUID, got {event.id!r}"
        raise InvalidEventError(msg)
    return info


def _check_decoded(stored: Event[Any], info: EventTypeInfo) -> None:
    """What the typed decode cannot check: values, not types. (Instants were
    checked before encoding: an aware UTC datetime decodes back as one.)"""
    if stored.schema_version != info.schema_version:
        msg = (
            f"event type {info.type!r} is at schema version "
            f"{info.schema_version}, the event says {stored.schema_version!r}"
        )
        raise InvalidEventError(msg)
    if not stored.source:
        msg = "source must be a non-empty string"
        raise InvalidEventError(msg)


def _upcast(
    row_type: str, stored_version: int, data: bytes | msgspec.Raw, position: int
) -> Any:
    info = lookup_type(row_type)
    assert info is not None
    value = _plain_decoder.decode(data)
    config = info.cls.__struct_config__
    if config.tag is not None and isinstance(value, dict):
        value.pop(config.tag_field, None)  # upcasters see the fields only
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


def decode_row(row: Sequence[Any]) -> Event[Any]:
    """Turn one row (:data:`EVENT_COLUMNS`) into an Event.

    This is the read hot path (every get_events, query, replay and
    projection catch-up): the whole envelope, payload included, is decoded
    by one typed msgspec decoder in C. Its containers (metadata, free-form
    payload fields) are then made read-only: the event is shared by every
    projection that handles it.

    Raises:
        EventDecodeError: The row is damaged; the error names its position.
    """
    position, event_type, schema_version, data = row
    info = _registered.get(event_type)
    try:
        if info is not None and info.schema_version == schema_version:
            event: Event[Any] = info.event_decoder.decode(data)
            # _freeze_decoded inlined for the common case (the read hot path)
            metadata = event.metadata
            _force_setattr(
                event, "metadata", freeze_stored(metadata) if metadata else EMPTY_DICT
            )
            if info.free_fields:
                _freeze_payload(event.payload, info.free_fields)
        else:
            event = _decode_other(event_type, schema_version, data, position)
            _freeze_decoded(event, info)
    except EventDecodeError:
        raise
    except Exception as e:  # damaged bytes, a failing upcaster
        raise EventDecodeError(position, f"{type(e).__name__}: {e}") from e
    if event.position != position:
        reason = f"the envelope says position {event.position}"
        raise EventDecodeError(position, reason)
    return event


def _freeze_decoded(event: Event[Any], info: EventTypeInfo | None) -> None:
    """Make a decoded event's containers read-only (in place: it is new
    and nobody else has seen it yet)."""
    metadata = event.metadata
    _force_setattr(
        event, "metadata", freeze_stored(metadata) if metadata else EMPTY_DICT
    )
    payload = event.payload
    if info is None or type(payload) is not info.cls:  # unregistered: plain data
        frozen = freeze_stored(payload)
        if frozen is not payload:
            _force_setattr(event, "payload", frozen)
        return
    _freeze_payload(payload, info.free_fields)


def _freeze_payload(payload: Any, free: tuple[tuple[str, str | None], ...]) -> None:
    for name, _ in free:
        value = getattr(payload, name)
        frozen = freeze_stored(value)
        if frozen is not value:
            _force_setattr(payload, name, frozen)


def _decode_other(
    event_type: str, schema_version: int, data: bytes, position: int
) -> Event[Any]:
    """An unregistered type (payload as plain data) or an older schema
    version (upcast to the current shape)."""
    info = lookup_type(event_type)
    if info is None:
        return _any_event_decoder.decode(data)
    if schema_version > info.schema_version:
        reason = (
            f"{event_type!r} was written at schema version {schema_version}, "
            f"newer than this code's {info.schema_version}"
        )
        raise EventDecodeError(position, reason)
    raw = _raw_event_decoder.decode(data)
    payload = _upcast(event_type, schema_version, raw.payload, position)
    return msgspec.structs.replace(
        raw, payload=payload, schema_version=info.schema_version
    )
