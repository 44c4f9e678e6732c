"""Argument checks of the store's public methods (the caller's thread).

Each check raises the typed error the caller can act on
(:class:`InvalidQueryError` for reads, :class:`InvalidEventError` for
writes, :class:`InvalidConfigError` for options) and returns the value in
the form the storage seam takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from uuid import UUID

from swarmlog.actors.storage import SnapshotRecord
from swarmlog.schema.causation import event_key
from swarmlog.schema.codec import encode_value
from swarmlog.schema.envelope import Snapshot, StreamState
from swarmlog.schema.errors import (
    InvalidConfigError,
    InvalidEventError,
    InvalidQueryError,
    SwarmlogError,
)
from swarmlog.schema.timeutil import check_utc, to_micros

__all__ = [
    "MAX_INT64",
    "check_aggregate_id",
    "check_count",
    "check_expected",
    "check_instant",
    "check_strings",
    "fork_target",
    "snapshot_record",
    "why_key",
]

MAX_INT64 = 2**63 - 1  # SQLite's INTEGER range


def check_expected(expected: object) -> None:
    """An ``expected_version``: a :class:`StreamState` or an int >= 0.

    Raises:
        InvalidEventError: Anything else.
    """
    if isinstance(expected, StreamState):
        return
    if (
        isinstance(expected, bool)
        or not isinstance(expected, int)
        or not 0 <= expected <= MAX_INT64
    ):
        msg = (
            "expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an "
            f"int >= 0, got {expected!r}"
        )
        raise InvalidEventError(msg)


def check_strings(value: object, name: str) -> tuple[str, ...] | None:
    """A filter of one string or several, as a tuple (None stays None).

    Raises:
        InvalidQueryError: Not a string nor an iterable of strings.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        items = tuple(value)
        if all(isinstance(v, str) for v in items):
            return items
    msg = f"{name} must be a string or a list of strings, got {value!r}"
    raise InvalidQueryError(msg)


def check_count(value: object, name: str, *, minimum: int = 0) -> int | None:
    """An int from ``minimum`` to SQLite's largest (None stays None).

    Raises:
        InvalidQueryError: A bool, a non-int, or out of range.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not minimum <= value <= MAX_INT64
    ):
        msg = f"{name} must be an int from {minimum} to 2**63-1, got {value!r}"
        raise InvalidQueryError(msg)
    return value


def check_aggregate_id(aggregate_id: object) -> None:
    """An aggregate id is a string.

    Raises:
        InvalidQueryError: It is not.
    """
    if not isinstance(aggregate_id, str):
        msg = f"aggregate_id must be a string, got {aggregate_id!r}"
        raise InvalidQueryError(msg)


def check_instant(value: object, name: str) -> int | None:
    """An aware UTC datetime as microseconds (None stays None).

    Raises:
        InvalidQueryError: Naive, not UTC, or not a datetime.
    """
    if value is None:
        return None
    try:
        return to_micros(check_utc(value, name))
    except SwarmlogError as e:
        raise InvalidQueryError(str(e)) from e


def why_key(event_id: object, name: str) -> bytes | str | None:
    """An event id (UUID or string) as the key the why-queries look up.

    Raises:
        InvalidQueryError: Neither a UUID nor a string.
    """
    if not isinstance(event_id, UUID | str):
        msg = f"{name} must be a UUID or a string, got {event_id!r}"
        raise InvalidQueryError(msg)
    return event_key(event_id)


def fork_target(path: object) -> str:
    """A fork's target as an absolute file path.

    Raises:
        InvalidConfigError: Not a path, empty, or ``":memory:"``.
    """
    if not isinstance(path, str | os.PathLike):
        msg = f"a fork's path must be a str or os.PathLike, got {path!r}"
        raise InvalidConfigError(msg)
    target = os.fspath(path)
    if not isinstance(target, str) or target in ("", ":memory:"):
        msg = f"a fork needs a file path, got {target!r}"
        raise InvalidConfigError(msg)
    return os.path.abspath(target)


def snapshot_record(snapshot: object) -> SnapshotRecord:
    """Check an aggregate snapshot and encode it for storage (caller's thread).

    Raises:
        InvalidEventError: The snapshot is malformed or not encodable.
    """
    if not isinstance(snapshot, Snapshot):
        msg = f"expected a Snapshot, got {type(snapshot).__name__}"
        raise InvalidEventError(msg)
    if not isinstance(snapshot.aggregate_id, str) or not snapshot.aggregate_id:
        msg = "snapshot aggregate_id must be a non-empty string"
        raise InvalidEventError(msg)
    if not isinstance(snapshot.aggregate_type, str) or not snapshot.aggregate_type:
        msg = "snapshot aggregate_type must be a non-empty string"
        raise InvalidEventError(msg)
    if (
        isinstance(snapshot.version, bool)
        or not isinstance(snapshot.version, int)
        or not 0 <= snapshot.version <= MAX_INT64
    ):
        msg = (
            f"snapshot version must be an int from 0 to 2**63-1, "
            f"got {snapshot.version!r}"
        )
        raise InvalidEventError(msg)
    check_utc(snapshot.timestamp, "snapshot timestamp")
    return SnapshotRecord(
        snapshot.aggregate_id,
        snapshot.aggregate_type,
        snapshot.version,
        encode_value(snapshot.state, "snapshot state"),
        to_micros(snapshot.timestamp),
    )
