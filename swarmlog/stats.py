"""EventStoreStats: what ``EventStore.get_stats()`` returns."""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec reads annotations at runtime

import msgspec

from swarmlog.actors.projection import ProjectionStatus  # noqa: TC001 - msgspec reads it

__all__ = ["EventStoreStats", "ForkOrigin", "SubscriptionStatus"]


class ForkOrigin(msgspec.Struct, frozen=True, kw_only=True):
    """One fork in a store's ancestry (see ``EventStore.fork``).

    Attributes:
        source: The path of the store it was forked from.
        position: The last position copied from it.
        forked_at: When the fork was made (timezone-aware UTC).
    """

    source: str
    position: int
    forked_at: datetime


class SubscriptionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One durable subscription (see ``EventStore.subscribe``).

    Attributes:
        position: Its last handled position (stored).
        lag: Committed events it has not handled yet.
        status: ``"running"``, ``"failed"`` or ``"stopped"`` in this store
            (``"stopped"``: not running here, its position kept).
        error: What stopped a failed one (type and message), else None.
    """

    position: int
    lag: int
    status: str
    error: str | None = None


class EventStoreStats(msgspec.Struct, frozen=True, kw_only=True):
    """Store statistics, read in one consistent snapshot of the file.

    Attributes:
        total_events: Events stored.
        events_by_type: Event type -> count.
        events_by_aggregate: Aggregate id -> count.
        oldest_event: Timestamp of the oldest event (None when empty).
        newest_event: Timestamp of the newest event (None when empty).
        snapshot_count: Aggregate snapshots stored.
        head_position: Highest committed position.
        database_size_bytes: Database plus WAL file size.
        appends: Append requests committed by this process's writer.
        transactions: Transactions the writer committed.
        caller_transactions: Of those, the ones an appending thread
            committed itself while the writer was idle (``caller_commits``).
        mean_batch_size: Append requests per transaction (group commit).
        failed_appends: Append requests that failed.
        appends_in_flight: Append requests queued or being committed now.
        writer_stopped: The writer stopped accepting appends (an unknown
            commit outcome, or its actor stopped): appends raise
            ``WriterStoppedError`` until the store is reopened.
        callback_errors: Done-callbacks of appends that raised (logged and
            ignored), in this process.
        projections: Projection name -> its status.
        listener_errors: Listener callbacks that raised (logged and
            ignored, ``BaseException`` included), since the store opened.
        lineage: Where this store was forked from, oldest ancestor first
            (the last entry is its direct source); empty if it is no fork.
        subscriptions: Durable subscription name -> its position, lag and
            status (every one stored in the file).
        lock_waits: With ``multi_process``: this process's writes that had
            to wait for the store-wide write lock (other processes held it).
        lock_wait_max: The longest of those waits, in seconds.
    """

    total_events: int
    events_by_type: dict[str, int]
    events_by_aggregate: dict[str, int]
    oldest_event: datetime | None
    newest_event: datetime | None
    snapshot_count: int
    head_position: int
    database_size_bytes: int
    appends: int = 0
    transactions: int = 0
    caller_transactions: int = 0
    mean_batch_size: float = 0.0
    failed_appends: int = 0
    appends_in_flight: int = 0
    writer_stopped: bool = False
    callback_errors: int = 0
    projections: dict[str, ProjectionStatus] = {}
    listener_errors: int = 0
    lineage: tuple[ForkOrigin, ...] = ()
    subscriptions: dict[str, SubscriptionStatus] = {}
    lock_waits: int = 0
    lock_wait_max: float = 0.0
