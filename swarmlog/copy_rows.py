"""The rows a whole-store copy moves, in one backend-neutral shape, and the
two sides of a copy (:class:`RowSource`, :class:`RowTarget`).

A row here is exactly what a store holds, never decoded: an event's
envelope stays the stored bytes, so a copy needs none of the store's event
types registered and changes nothing in them. Strings are ``str`` on every
backend (PostgreSQL stores caller-chosen strings as UTF-8 ``bytea``; its
side converts), and a cause is the causing event's 16 id bytes or an
outside causation id's text, as in SQLite's ``cause`` column.

Runs on the thread that copies (the caller's).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from swarmlog.schema.errors import SwarmlogError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "TABLES",
    "CopyTargetNotEmptyError",
    "CopyVerificationError",
    "Digest",
    "EventRow",
    "LineageRow",
    "ProjectionSnapshotRow",
    "RowSource",
    "RowTarget",
    "SnapshotRow",
    "SubscriptionRow",
    "TableDigest",
]

EventRow = tuple[Any, ...]
"""``(position, id, type, aggregate_id, aggregate_type, version, timestamp,
schema_version, data, cause, correlation_id)``: SQLite's INSERT_COLUMNS."""
SnapshotRow = tuple[str, str, int, bytes, int]
"""``(aggregate_id, aggregate_type, version, state, timestamp)``."""
ProjectionSnapshotRow = tuple[str, int, int, bytes, int]
"""``(name, position, state_version, state, updated_at)``."""
SubscriptionRow = tuple[str, int, int]
"""``(name, position, updated_at)``."""
LineageRow = tuple[int, str, int, int]
"""``(generation, source, position, forked_at)``."""

TABLES: Final = (
    "events",
    "snapshots",
    "projection_snapshots",
    "subscriptions",
    "lineage",
)
"""What a copy moves and verifies, in the order it moves them."""

_encode = msgspec.msgpack.Encoder().encode


class CopyTargetNotEmptyError(SwarmlogError):
    """A copy's destination already holds a store's rows; nothing was written.

    Attributes:
        target: The destination (a URL without its password).
        events: Events it holds.
        other_rows: Snapshots, projection snapshots, subscription positions
            and lineage rows it holds.
    """

    def __init__(self, target: str, events: int, other_rows: int) -> None:
        self._init_args = (target, events, other_rows)
        self.target = target
        self.events = events
        self.other_rows = other_rows
        msg = (
            f"copy destination {target!r} is not empty ({events} events, "
            f"{other_rows} other rows); copy into a new file or an empty schema"
        )
        super().__init__(msg)


class CopyVerificationError(SwarmlogError):
    """What a copy wrote does not read back as what it read: the copy was
    rolled back (nothing is left in the destination).

    Attributes:
        target: The destination (a URL without its password).
        differences: What differs, one phrase each (a table's row count or
            checksum, the head).
    """

    def __init__(self, target: str, differences: tuple[str, ...]) -> None:
        self._init_args = (target, differences)
        self.target = target
        self.differences = differences
        msg = (
            f"copy into {target!r} failed verification and was rolled back: "
            f"{'; '.join(differences)}"
        )
        super().__init__(msg)


class TableDigest:
    """A running count and BLAKE2b checksum of one table's rows, in the
    order a copy reads them (msgpack of each row: bytes and text differ)."""

    __slots__ = ("_hash", "count")

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.count = 0

    def add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Fold ``rows`` in."""
        update = self._hash.update
        n = 0
        for row in rows:
            update(_encode(row))
            n += 1
        self.count += n

    def hexdigest(self) -> str:
        """The checksum so far."""
        return self._hash.hexdigest()


class Digest(msgspec.Struct, frozen=True):
    """Row counts and checksums of every table a copy moves.

    Attributes:
        counts: Rows per table (:data:`TABLES`).
        checksums: BLAKE2b-128 of each table's rows, hex.
        head_position: The store's committed head.
    """

    counts: dict[str, int]
    checksums: dict[str, str]
    head_position: int

    @property
    def checksum(self) -> str:
        """One checksum over every table's."""
        whole = hashlib.blake2b(digest_size=16)
        for table in TABLES:
            whole.update(
                f"{table}:{self.counts[table]}:{self.checksums[table]};".encode()
            )
        return whole.hexdigest()

    def differences(self, other: Digest) -> list[str]:
        """What differs from ``other`` (empty: nothing), one phrase each."""
        found = []
        if self.head_position != other.head_position:
            found.append(f"head {self.head_position} != {other.head_position}")
        for table in TABLES:
            mine, theirs = self.counts[table], other.counts[table]
            if mine != theirs:
                found.append(f"{table}: {mine} rows != {theirs}")
            elif self.checksums[table] != other.checksums[table]:
                found.append(f"{table}: checksum differs")
        return found


class RowSource(Protocol):
    """One consistent read of a whole store (one snapshot from the first
    read to :meth:`close`)."""

    display: str
    """The store as swarmlog shows it (a URL without its password)."""

    def head(self) -> int:
        """The committed head of the snapshot."""
        ...

    def event_count(self) -> int:
        """Events in the snapshot."""
        ...

    def events(self, after: int, limit: int) -> Sequence[EventRow]:
        """Up to ``limit`` events past position ``after``, in order."""
        ...

    def snapshots(self, after: str | None, limit: int) -> Sequence[SnapshotRow]:
        """Up to ``limit`` aggregate snapshots with ids above ``after``
        (None: from the first), ordered by the id's UTF-8 bytes."""
        ...

    def projection_snapshots(self) -> Sequence[ProjectionSnapshotRow]:
        """Every projection snapshot, by name."""
        ...

    def subscriptions(self) -> Sequence[SubscriptionRow]:
        """Every durable subscription position, by name."""
        ...

    def lineage(self) -> Sequence[LineageRow]:
        """The fork ancestry, oldest first."""
        ...

    def close(self) -> None:
        """End the read and close the connection."""
        ...


class RowTarget(RowSource, Protocol):
    """An empty store being filled, in one transaction that reads its own
    writes (the copy reads them back to verify before committing)."""

    def check_empty(self) -> None:
        """Lock the store against other writers and check it is empty.

        Raises:
            CopyTargetNotEmptyError: It holds rows.
        """
        ...

    def write_events(self, rows: Sequence[EventRow]) -> None:
        """Insert events as given (positions included)."""
        ...

    def write_snapshots(self, rows: Sequence[SnapshotRow]) -> None:
        """Insert aggregate snapshots."""
        ...

    def write_projection_snapshots(self, rows: Sequence[ProjectionSnapshotRow]) -> None:
        """Insert projection snapshots."""
        ...

    def write_subscriptions(self, rows: Sequence[SubscriptionRow]) -> None:
        """Insert durable subscription positions."""
        ...

    def write_lineage(self, rows: Sequence[LineageRow]) -> None:
        """Insert the fork ancestry."""
        ...

    def set_head(self, position: int) -> None:
        """Record the committed head (the next append's position - 1)."""
        ...

    def commit(self) -> None:
        """Commit the copy."""
        ...

    def abort(self) -> None:
        """Roll the copy back (and remove a store file it created)."""
        ...
