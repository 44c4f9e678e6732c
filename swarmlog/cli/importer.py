"""Read the JSON lines ``swarmlog events --json`` writes back into a store.

Every line is decoded before anything is appended, so a bad line (or an
unknown event type) stores nothing. Events keep their ids, types,
timestamps, source, metadata, causation and correlation ids and schema
version; the store gives them their positions and versions again (the same
ones when the whole log of a store goes into an empty store, in order).
Appends are idempotent by id: a second run stores nothing new, and an id
already stored with different content is an error.

``plain=True`` keeps events of types this process has not registered: for
each such type it registers a payload class whose fields are exactly the
keys the file's payloads use (values kept as plain JSON data, a key a
payload lacks stays absent). The registration lives in the importing
process only. Runs on the command's (main) thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from swarmlog.cli.common import CommandError
from swarmlog.schema.envelope import Event
from swarmlog.schema.errors import SwarmlogError
from swarmlog.schema.registry import lookup_type, register_event_type

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from swarmlog.store import EventStore

__all__ = ["BATCH", "ImportSummary", "decode_lines", "import_events"]

BATCH: Final = 500
"""Events per ``append_many`` (one transaction each)."""

_TAG_FIELD: Final = "type"
"""The key a tagged payload's type string sits under (msgspec's default)."""


class ImportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did.

    Attributes:
        read: Events read from the file.
        added: Events the store did not hold yet.
        already_stored: Events it held already (same id, same content).
        plain_types: Unregistered types kept as plain data (``--plain``).
        head_position: The store's head after the import.
    """

    read: int
    added: int
    already_stored: int
    plain_types: tuple[str, ...]
    head_position: int


class _Line(msgspec.Struct):
    """Just the type of an exported event (the rest is decoded by type)."""

    type: str


_line_decoder: Final = msgspec.json.Decoder(_Line)
_plain_decoder: Final = msgspec.json.Decoder(Event[dict[str, Any]])


def decode_lines(
    lines: Iterable[tuple[int, bytes]], *, plain: bool = False, name: str = "input"
) -> tuple[list[tuple[int, Event[Any]]], tuple[str, ...]]:
    """Decode numbered JSON lines into events ready to append.

    Args:
        lines: ``(line number, text)`` of each non-blank line.
        plain: Keep unregistered types as plain data instead of refusing.
        name: The file's name, for messages.

    Returns:
        ``(line number, event)`` pairs in file order, and the types kept
        as plain data.

    Raises:
        CommandError: A line is not an exported event, or has an
            unregistered type without ``plain``.
    """
    decoders: dict[str, msgspec.json.Decoder[Event[Any]]] = {}
    typed: list[tuple[int, bytes, str]] = []
    unknown: dict[str, list[tuple[int, Event[dict[str, Any]]]]] = {}
    for number, text in lines:
        try:
            event_type = _line_decoder.decode(text).type
            if lookup_type(event_type) is not None:
                typed.append((number, text, event_type))
                continue
            if not plain:
                msg = (
                    f"{name} line {number}: unknown event type {event_type!r} "
                    "(not registered here); pass --plain to keep its payload "
                    "as plain data"
                )
                raise CommandError(msg)
            event = _plain_decoder.decode(text)
        except msgspec.DecodeError as e:
            msg = f"{name} line {number}: not an exported event: {e}"
            raise CommandError(msg) from None
        unknown.setdefault(event_type, []).append((number, event))
    for event_type, found in unknown.items():
        _register_plain(event_type, found, name)
    decoded: list[tuple[int, Event[Any]]] = []
    for number, text, event_type in typed:
        decoder = decoders.get(event_type)
        if decoder is None:
            info = lookup_type(event_type)
            assert info is not None
            shape: Any = Event[info.cls]  # type: ignore[name-defined]  # built at runtime
            decoder = msgspec.json.Decoder(shape)
            decoders[event_type] = decoder
        try:
            event = decoder.decode(text)
        except msgspec.DecodeError as e:
            msg = f"{name} line {number}: not a valid {event_type} event: {e}"
            raise CommandError(msg) from None
        decoded.append((number, msgspec.structs.replace(event, position=0, version=0)))
    for event_type, found in unknown.items():
        info = lookup_type(event_type)
        assert info is not None
        for number, plain_event in found:
            fields = {k: v for k, v in plain_event.payload.items() if k != _TAG_FIELD}
            decoded.append(
                (
                    number,
                    msgspec.structs.replace(
                        plain_event, payload=info.cls(**fields), position=0, version=0
                    ),
                )
            )
    decoded.sort(key=lambda pair: pair[0])
    return decoded, tuple(sorted(unknown))


def _register_plain(
    event_type: str, found: Sequence[tuple[int, Event[dict[str, Any]]]], name: str
) -> None:
    """Register a plain-data payload class for ``event_type``: one optional
    field per key its payloads use, in the order they use them."""
    fields: list[str] = []
    tagged = True
    for number, event in found:
        payload = event.payload
        keys = [k for k in payload if k != _TAG_FIELD]
        tagged = tagged and payload.get(_TAG_FIELD) == event_type
        known = [k for k in fields if k in payload]
        new = [k for k in keys if k not in fields]
        if [k for k in keys if k in known] != known:
            msg = (
                f"{name} line {number}: {event_type} payload keys come in another "
                "order than on earlier lines; --plain cannot keep them as written"
            )
            raise CommandError(msg)
        fields += new
    if not tagged and any(_TAG_FIELD in e.payload for _, e in found):
        msg = f"{name}: {event_type} payloads have a 'type' key that is not the type"
        raise CommandError(msg)
    spec = [(field, Any, msgspec.UNSET) for field in fields]
    cls = msgspec.defstruct(
        "PlainPayload",
        spec,
        tag=event_type if tagged else None,
        frozen=True,
        module=__name__,
    )
    first = found[0][1]
    try:
        register_event_type(
            cls,
            type=event_type,
            aggregate_type=first.aggregate_type,
            schema_version=max(e.schema_version for _, e in found),
        )
    except SwarmlogError as e:
        msg = f"{name}: cannot keep {event_type} as plain data: {e}"
        raise CommandError(msg) from e


def import_events(
    store: EventStore,
    events: Sequence[tuple[int, Event[Any]]],
    *,
    on_progress: Callable[[int], None] | None = None,
    plain_types: tuple[str, ...] = (),
    name: str = "input",
) -> ImportSummary:
    """Append ``events`` in order, idempotently by id, in batches.

    A batch whose ids are all new (or all stored already) is one
    ``append_many``; a batch that mixes both goes one event at a time.

    Args:
        store: A writable store.
        events: ``(line number, event)`` pairs from :func:`decode_lines`.
        on_progress: Called with the number of events handled so far.
        plain_types: Reported in the summary.
        name: The file's name, for messages.

    Raises:
        CommandError: An event's id is stored with different content, or
            the store refused an event (naming its line).
    """
    added = 0
    done = 0
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        head = store.head_position
        try:
            stored = store.append_many([event for _, event in batch])
        except SwarmlogError:
            # Some ids stored already (an interrupted run), or a bad event:
            # one at a time, so the store skips the first and names the line
            # of the second.
            stored = [
                _append_one(store, number, event, name) for number, event in batch
            ]
        for (number, event), copy in zip(batch, stored, strict=True):
            if copy.position > head:
                added += 1
            else:
                _check_same(number, event, copy, name)
        done += len(batch)
        if on_progress is not None:
            on_progress(done)
    return ImportSummary(
        read=len(events),
        added=added,
        already_stored=len(events) - added,
        plain_types=plain_types,
        head_position=store.head_position,
    )


_COMPARED: Final = tuple(
    name for name in Event.__struct_fields__ if name not in ("position", "version")
)
"""Fields an already stored event must match (the store gives positions)."""


def _check_same(number: int, event: Event[Any], stored: Event[Any], name: str) -> None:
    """Refuse an event whose id is stored with other content.

    The store's own retry check compares the type, aggregate, payload and
    metadata; an import must match the file exactly, so every field counts.
    """
    differ = [f for f in _COMPARED if getattr(event, f) != getattr(stored, f)]
    if differ:
        msg = (
            f"{name} line {number}: event id {event.id} is already stored with "
            f"different content ({', '.join(differ)})"
        )
        raise CommandError(msg)


def _append_one(
    store: EventStore, number: int, event: Event[Any], name: str
) -> Event[Any]:
    try:
        return store.append(event)
    except SwarmlogError as e:
        msg = f"{name} line {number}: {e}"
        raise CommandError(msg) from e
