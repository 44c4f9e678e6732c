"""Instants and ids: UTC datetimes, integer microseconds, UUIDv7.

Every instant swarmlog stores is a timezone-aware UTC ``datetime``, kept on
disk as integer microseconds since the Unix epoch so that it reads back equal.
Event ids are UUIDs with the UUIDv7 layout (48-bit millisecond timestamp
first), so the UNIQUE index on ``id`` grows at its right edge instead of
touching random pages.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from swarmlog.schema.errors import InvalidEventError, InvalidQueryError

__all__ = [
    "EPOCH",
    "check_utc",
    "from_micros",
    "query_now",
    "to_micros",
    "utc_now",
    "uuid7",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)


def utc_now() -> datetime:
    """The current instant as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def query_now(now: datetime | None) -> datetime:
    """The instant a query asks about: ``now``, or the current instant.

    Raises:
        InvalidQueryError: ``now`` is not a timezone-aware datetime.
    """
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.utcoffset() is None:
        msg = f"now must be a timezone-aware datetime, got {now!r}"
        raise InvalidQueryError(msg)
    return now


def check_utc(value: object, what: str) -> datetime:
    """Return ``value`` if it is a timezone-aware UTC datetime.

    Raises:
        InvalidEventError: ``value`` is not a datetime, is naive, or has a
            non-zero UTC offset.
    """
    if not isinstance(value, datetime):
        msg = f"{what} must be a datetime, got {type(value).__name__}"
        raise InvalidEventError(msg)
    offset = value.utcoffset()
    if offset is None:
        msg = f"{what} is a naive datetime; use a timezone-aware UTC datetime"
        raise InvalidEventError(msg)
    if offset != _ZERO:
        msg = f"{what} has UTC offset {offset}; swarmlog stores UTC instants only"
        raise InvalidEventError(msg)
    return value


def to_micros(value: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=micros)


_uuid7_lock = threading.Lock()
_uuid7_last = [0, 0]  # last millisecond, last 12-bit counter


def uuid7() -> uuid.UUID:
    """A new time-ordered UUID (RFC 9562 version 7 layout).

    Ids made in the same millisecond by this process are strictly increasing
    (a 12-bit counter in ``rand_a``, seeded randomly each millisecond).
    """
    rand = int.from_bytes(os.urandom(8), "big")
    with _uuid7_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, counter = _uuid7_last
        if ms <= last_ms:
            ms = last_ms
            counter += 1
            if counter > 0xFFF:  # counter overflow: borrow the next millisecond
                ms += 1
                counter = rand >> 53 & 0x3FF
        else:
            counter = rand >> 53 & 0x3FF  # leave headroom for increments
        _uuid7_last[0] = ms
        _uuid7_last[1] = counter
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)
