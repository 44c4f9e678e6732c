"""The event envelope, snapshots and expected-version sentinels."""

from __future__ import annotations

import enum
import uuid  # noqa: TC003 - msgspec resolves field annotations at runtime
from datetime import datetime  # noqa: TC003 - ditto
from typing import Any, Final, Generic, TypeVar

import msgspec

P = TypeVar("P")

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Event",
    "ExpectedVersion",
    "Snapshot",
    "StreamState",
]


class Event(msgspec.Struct, Generic[P], frozen=True, kw_only=True, gc=False):
    """One stored fact about a swarm: a payload in its envelope.

    Build events with :func:`swarmlog.create_event` or one of the 23
    ``create_*_event`` factories; :meth:`swarmlog.EventStore.append` returns
    the stored copy with ``version`` and ``position`` set. Events are frozen:
    the store never mutates the object you pass in, and the events it hands
    out keep their free-form data in read-only containers.
    ``Event[TaskCompleted]`` types an event by its payload.

    Attributes:
        position: Global commit order, 1-based and gap-free; 0 until stored.
        version: Per-aggregate version, 1-based; 0 until stored.
        id: Unique id, time-ordered (UUIDv7 layout). Appending the same id
            twice with the same content is an idempotent retry.
        type: The event type string, e.g. ``"task:completed"``.
        aggregate_id: The aggregate (stream) the event belongs to.
        aggregate_type: ``agent``, ``task``, ``memory``, ``swarm`` or a
            registered custom type.
        payload: The payload Struct (or plain data when the type is not
            registered in this process).
        timestamp: When the event was made (timezone-aware UTC).
        source: Who emitted the event.
        metadata: JSON-like extra data; read-only (a
            :class:`~swarmlog.schema.frozen.FrozenDict`) in every event the
            store hands out, which projections and listeners share.
        causation_id: Id of the event or command that caused this one (a
            UUID given is stored as its string; see ``caused_by=`` of the
            factories).
        correlation_id: Id shared by a whole conversation of events.
        schema_version: Version of the payload's shape when it was written.
    """

    # gc=False: an Event is never part of a reference cycle (its payload
    # and metadata are plain data), so the garbage collector need not track
    # or traverse the tens of thousands an append burst keeps alive.
    # position and version come first: the writer stamps them into the
    # encoded envelope by rewriting its fixed-size head (see codec.py).
    position: int = 0
    version: int = 0
    id: uuid.UUID
    type: str
    aggregate_id: str
    aggregate_type: str
    payload: P
    timestamp: datetime
    source: str = "swarm"
    metadata: dict[str, Any] = {}
    causation_id: str | None = None
    correlation_id: str | None = None
    schema_version: int = 1


class Snapshot(msgspec.Struct, frozen=True):
    """An aggregate's state as of ``version``.

    Resume the aggregate with
    ``store.get_events(aggregate_id, from_version=snapshot.version + 1)``.

    Attributes:
        aggregate_id: The aggregate.
        aggregate_type: Its type.
        version: The last event version folded into ``state``.
        state: JSON-like data or a msgspec Struct.
        timestamp: When the snapshot was taken (timezone-aware UTC).
    """

    aggregate_id: str
    aggregate_type: str
    version: int
    state: Any
    timestamp: datetime


class StreamState(enum.Enum):
    """Expected-version conditions that are not an exact version."""

    ANY = "any"
    NO_STREAM = "no-stream"
    STREAM_EXISTS = "stream-exists"

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


ANY: Final = StreamState.ANY
"""Append whatever the aggregate's version."""

NO_STREAM: Final = StreamState.NO_STREAM
"""Append only if the aggregate has no events yet (same as version 0)."""

STREAM_EXISTS: Final = StreamState.STREAM_EXISTS
"""Append only if the aggregate already has events."""

ExpectedVersion = int | StreamState
"""An exact version (0 means no stream) or one of the three conditions."""
