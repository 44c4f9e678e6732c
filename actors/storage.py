"""The storage seam: what the actors need from a database, and nothing more.

The writer, dispatcher and projections speak only these two protocols, never
SQL. ``swarmlog.actors.sqlite.storage`` implements them on SQLite; a
PostgreSQL backend would implement the same (append a batch, read a stream,
read all from a position, head, snapshots, projection snapshots).

Rows are plain tuples in :data:`swarmlog.schema.codec.EVENT_COLUMNS` order, so
the writer binds them without building objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from swarmlog.schema.envelope import Event

__all__ = [
    "EventQuery",
    "LineageRecord",
    "ProjectionSnapshotRecord",
    "ReadStorage",
    "RequestConflict",
    "SnapshotRecord",
    "StorageStats",
    "WriteStorage",
]

EventRow = tuple[Any, ...]
"""One event row: ``INSERT_COLUMNS`` order when written, ``EVENT_COLUMNS``
order when read."""


class RequestConflict(Exception):  # noqa: N818 - an internal signal, not a user error
    """A request in a batch hit a uniqueness constraint (event id or
    aggregate version); the whole transaction was rolled back.

    Attributes:
        index: Which request of the batch conflicted (-1: unknown).
    """

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"request {index} conflicted")


class CommitUnknownError(Exception):
    """COMMIT failed in a way that leaves its outcome unknown."""


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A validated event query: every filter ANDed, results in commit order."""

    aggregate_ids: tuple[str, ...] | None = None
    aggregate_types: tuple[str, ...] | None = None
    event_types: tuple[str, ...] | None = None
    after_timestamp: int | None = None  # micros, exclusive
    before_timestamp: int | None = None  # micros, exclusive
    from_version: int | None = None
    from_position: int | None = None
    limit: int | None = None
    offset: int = 0


class SnapshotRecord(msgspec.Struct, frozen=True):
    """A stored aggregate snapshot (state still encoded)."""

    aggregate_id: str
    aggregate_type: str
    version: int
    state: bytes
    timestamp: int


class ProjectionSnapshotRecord(msgspec.Struct, frozen=True):
    """A stored projection snapshot: its state as of ``position``."""

    position: int
    state_version: int
    state: bytes


class LineageRecord(msgspec.Struct, frozen=True):
    """One fork in a store's ancestry: forked from ``source`` (its path)
    at ``position``, at ``forked_at`` (micros since the epoch, UTC)."""

    source: str
    position: int
    forked_at: int


class StorageStats(msgspec.Struct, frozen=True):
    """Counts a store reads for ``get_stats``."""

    total_events: int
    events_by_type: dict[str, int]
    events_by_aggregate: dict[str, int]
    oldest_event: datetime | None
    newest_event: datetime | None
    snapshot_count: int
    head_position: int
    database_size_bytes: int
    lineage: tuple[LineageRecord, ...] = ()  # oldest first; last: the parent


class WriteStorage(Protocol):
    """The one writing connection. Used only with the writer's turn held.

    On a *shared* store (other processes may write it too) each append round
    is bracketed: :meth:`begin_round` takes the store-wide write lock and
    opens the transaction that :meth:`write_events` (or :meth:`abort_round`)
    ends; :meth:`aggregate` and :meth:`find_events` read inside it.
    """

    shared: bool
    """True when other processes may write the same store (SQLite opened
    with ``multi_process=True``). False: this connection is the only writer
    and :meth:`begin_round` is never called."""

    places_rows: bool
    """Whether :meth:`write_events` outside a round places the rows itself:
    right after the committed head as the database finds it at COMMIT,
    which other processes may have moved since the rows were planned (their
    positions, in the column and in each envelope, shift by the same
    amount; their versions stay, so a uniqueness clash refuses them if
    another process touched the same aggregate). PostgreSQL: one statement
    moves the head and inserts. A shared store's writer then needs no lock
    round for a write; only a refusal or a clash is settled in one. False:
    a shared store writes only inside rounds."""

    def begin_round(self, timeout: float, after: int | None = None) -> int:
        """Shared stores only. Take the store-wide write lock, waiting at
        most ``timeout`` seconds, open the transaction that the next
        :meth:`write_events` (or :meth:`abort_round`) ends, and return the
        committed head as of now, whichever process committed it.

        ``after`` is the head this writer published: a backend may read the
        events past it in the same round trip, so that this round's
        :meth:`read_after` from ``after`` (and ``versions_after``) need none.

        SQLite: the sidecar lock (``actors/sqlite/write_lock.py``); no SQLite
        transaction is needed under it, as the round's one multi-row INSERT
        commits atomically. PostgreSQL: ``BEGIN`` and a row lock on the head.

        Raises:
            LockTimeoutError: The lock was not free in time; nothing is held.
            StorageError: A known failure; nothing is held.
        """
        ...

    def read_after(self, position: int, limit: int) -> list[Event[Any]]:
        """Up to ``limit`` committed events past ``position``, in order, read
        on the writing connection (inside the open round when one is open)."""
        ...

    def abort_round(self) -> None:
        """Roll back the open round and release the lock (nothing planned).
        A no-op when no round is open."""
        ...

    wal_checkpoint_every: int
    """Commits between the writer's idle-time WAL checkpoints on this
    connection (0: the backend has no WAL to fold)."""

    reconnects_after_unknown: bool
    """Whether, after ``CommitUnknownError``, the next call reconnects and
    the writer goes on (PostgreSQL: the server decided the batch's fate;
    its callers get ``CommitOutcomeUnknownError``). False (SQLite): an
    unknown outcome means a broken file, and the writer stops."""

    def head(self) -> int:
        """The highest committed position (0 when empty)."""
        ...

    def aggregate(self, aggregate_id: str) -> tuple[str, int] | None:
        """``(aggregate_type, version)`` of a stored aggregate, or None."""
        ...

    def find_events(self, ids: Sequence[bytes]) -> list[Event[Any]]:
        """The stored events with these ids (any order; missing ids skipped)."""
        ...

    def write_events(self, rows: Sequence[EventRow], requests: int) -> int | None:
        """Insert ``rows`` (the rows of ``requests`` append requests, in
        order) in one transaction and commit. Inside an open round: in that
        round's transaction, then release the lock (also on failure).

        Returns:
            The committed head the rows were stored after (a backend that
            :attr:`places_rows`), or None: where they were planned.

        Raises:
            RequestConflict: A request broke a uniqueness constraint;
                nothing was stored.
            StorageError: A known failure (e.g. ``StorageFullError``);
                nothing was stored.
            LockTimeoutError: (Shared stores) the database's own lock stayed
                busy past the lock timeout; nothing was stored.
            CommitUnknownError: COMMIT failed with an unknown outcome.
        """
        ...

    def save_snapshot(self, record: SnapshotRecord) -> None:
        """Store an aggregate snapshot unless a higher version is stored.
        On a shared store (as every write below) in its own short
        transaction that waits for the write lock at most ``lock_timeout``
        (``LockTimeoutError``)."""
        ...

    def save_projection_snapshot(
        self, name: str, record: ProjectionSnapshotRecord
    ) -> None:
        """Store a projection snapshot, replacing the previous one (on a
        shared store only if it is not older than the stored one)."""
        ...

    def delete_projection_snapshot(self, name: str) -> None:
        """Forget a projection's snapshot (it will rebuild)."""
        ...

    def save_subscription(self, name: str, position: int) -> None:
        """Store a durable subscription's last handled position."""
        ...

    def delete_subscription(self, name: str) -> None:
        """Forget a durable subscription's position."""
        ...

    def checkpoint_passive(self) -> None:
        """Fold the write-ahead log into the database file while idle."""
        ...

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (at shutdown)."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class ReadStorage(Protocol):
    """Reads, each in its own short read transaction. Safe from any thread."""

    def head(self) -> int:
        """The highest committed position (0 when empty)."""
        ...

    def read_stream(
        self,
        aggregate_id: str,
        from_version: int,
        *,
        limit: int | None = None,
        backwards: bool = False,
    ) -> list[Event[Any]]:
        """One aggregate's events with ``version >= from_version``, oldest
        first (newest first with ``backwards``); at most ``limit``, counted
        from the end read first."""
        ...

    def version(self, aggregate_id: str) -> int:
        """An aggregate's current version (0 when it has no events), from
        an index: the stream itself is not read."""
        ...

    def read_page(
        self, after: int, limit: int, upto: int | None = None
    ) -> list[Event[Any]]:
        """Up to ``limit`` events with ``after < position <= upto``, in order."""
        ...

    def query(self, spec: EventQuery) -> list[Event[Any]]:
        """Events matching ``spec``, in commit order."""
        ...

    def event(self, event_id: bytes) -> Event[Any] | None:
        """The event with this id (16 bytes), or None."""
        ...

    def causal_chain(self, event_id: bytes) -> list[Event[Any]]:
        """The event with this id and its stored causes, root first (each
        cause committed before what it caused); [] for an unknown id."""
        ...

    def consequences(self, cause: bytes | str) -> list[Event[Any]]:
        """Every event caused, directly or transitively, by ``cause`` (an
        event id's 16 bytes or an outside id's text), in commit order, each
        committed after its cause; the event itself excluded."""
        ...

    def correlated(self, correlation_id: str) -> list[Event[Any]]:
        """Every event with this correlation id, in commit order."""
        ...

    def load_snapshot(self, aggregate_id: str) -> SnapshotRecord | None:
        """The stored snapshot of an aggregate, or None."""
        ...

    def load_projection_snapshot(self, name: str) -> ProjectionSnapshotRecord | None:
        """A projection's stored snapshot, or None."""
        ...

    def load_subscription(self, name: str) -> int | None:
        """A durable subscription's stored position, or None."""
        ...

    def subscriptions(self) -> dict[str, int]:
        """Every stored durable subscription position, by name."""
        ...

    def stats(self) -> StorageStats:
        """Counts for ``get_stats``."""
        ...

    def close(self) -> None:
        """Close every pooled connection."""
        ...
