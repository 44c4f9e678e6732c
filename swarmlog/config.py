"""EventStoreConfig: every option of an EventStore, validated once."""

from __future__ import annotations

import os
from typing import Any, Final, Literal

import msgspec

from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES
from swarmlog.schema.errors import InvalidConfigError

__all__ = ["EventStoreConfig"]

_SYNCHRONOUS: Final = ("full", "normal")


class EventStoreConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Options of an :class:`~swarmlog.EventStore`.

    Attributes:
        database_path: The SQLite file, or ``":memory:"`` (a private
            temporary file, deleted at shutdown, so readers work exactly as
            with a file).
        verbose: Log lifecycle and write activity through ``logging``
            (logger ``"swarmlog"``, level INFO).
        auto_persist_interval: Seconds between background WAL checkpoints
            (0: only when the WAL passes ``wal_checkpoint_bytes``, on
            ``persist()`` and at shutdown). Durability never depends on it.
        snapshot_threshold: ``snapshot:recommended`` fires when an
            aggregate's version reaches a multiple of this.
        synchronous: ``"full"`` (an append that returned survives power
            loss) or ``"normal"`` (it survives a process crash).
        read_only: Open without the writer lock and never write.
        pragmas: Extra SQLite pragmas for the writing connection.
        max_in_flight: Appends queued or in progress at once; at the bound
            ``append_async`` blocks its caller (back-pressure).
        max_batch: Most append requests group-committed in one transaction.
        projection_snapshot_every: Events between projection snapshots.
        max_payload_bytes: Largest encoded event (payload, metadata and
            the ~150-byte envelope), in bytes.
        reader_pool_size: Idle reader connections kept.
        wal_checkpoint_bytes: WAL size that triggers a checkpoint.
        poll_interval: On a read-only store, seconds between looks for
            events another process appended (projections stay live).
        caller_commits: Opt-in: let ``append``/``append_many`` on a thread
            other than the main thread commit on that thread when the
            writer is idle and appends come one at a time, instead of
            handing the append to the writer thread (two thread wake-ups).
            Done-callbacks still run on the writer thread. Default
            ``False``: every commit on the writer's thread.
        multi_process: Let several processes (or several stores in one
            process) open the same file this way and append concurrently.
            Each keeps its own writer and group commit; a store-wide write
            lock serialises their transactions, every verdict is checked
            against what any process committed, and projections, listeners
            and strong queries see every process's events. A store opened
            without it on a file that multi-process stores hold (or the
            other way round) gets ``StoreLockedError``. Needs a file, not
            ``":memory:"``; a ``read_only`` store ignores it (it works
            beside both kinds).
        lock_timeout: With ``multi_process``, seconds a write waits for the
            store-wide write lock before it fails with ``LockTimeoutError``
            (nothing written).
    """

    database_path: str = ":memory:"
    verbose: bool = False
    auto_persist_interval: float = 5.0
    snapshot_threshold: int = 100
    synchronous: Literal["full", "normal"] = "full"
    read_only: bool = False
    pragmas: dict[str, Any] | None = None
    max_in_flight: int = 10_000
    max_batch: int = 1024
    projection_snapshot_every: int = 1000
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    reader_pool_size: int = 8
    wal_checkpoint_bytes: int = 64 << 20
    poll_interval: float = 0.2
    caller_commits: bool = False
    multi_process: bool = False
    lock_timeout: float = 30.0

    def __post_init__(self) -> None:
        """Validate every option.

        Raises:
            InvalidConfigError: An option is of the wrong type or range.
        """
        if not isinstance(self.database_path, str | os.PathLike) or not str(
            self.database_path
        ):
            msg = f"database_path must be a path, got {self.database_path!r}"
            raise InvalidConfigError(msg)
        _positive_int(self.snapshot_threshold, "snapshot_threshold")
        _positive_int(self.max_in_flight, "max_in_flight")
        _positive_int(self.max_batch, "max_batch")
        _positive_int(self.projection_snapshot_every, "projection_snapshot_every")
        _positive_int(self.max_payload_bytes, "max_payload_bytes")
        _positive_int(self.reader_pool_size, "reader_pool_size")
        _positive_int(self.wal_checkpoint_bytes, "wal_checkpoint_bytes")
        poll = self.poll_interval
        if isinstance(poll, bool) or not isinstance(poll, int | float) or poll <= 0:
            msg = f"poll_interval must be > 0 seconds, got {poll!r}"
            raise InvalidConfigError(msg)
        interval = self.auto_persist_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            msg = f"auto_persist_interval must be seconds, got {interval!r}"
            raise InvalidConfigError(msg)
        if interval < 0:
            msg = f"auto_persist_interval must be >= 0, got {interval!r}"
            raise InvalidConfigError(msg)
        if self.synchronous not in _SYNCHRONOUS:
            msg = f"synchronous must be 'full' or 'normal', got {self.synchronous!r}"
            raise InvalidConfigError(msg)
        if not all(
            isinstance(flag, bool)
            for flag in (
                self.verbose,
                self.read_only,
                self.caller_commits,
                self.multi_process,
            )
        ):
            msg = (
                "verbose, read_only, caller_commits and multi_process must be booleans"
            )
            raise InvalidConfigError(msg)
        wait = self.lock_timeout
        if (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not wait > 0  # also NaN
        ):
            msg = f"lock_timeout must be > 0 seconds, got {wait!r}"
            raise InvalidConfigError(msg)
        if self.multi_process and str(self.database_path) == ":memory:":
            msg = (
                "multi_process=True needs a database file that several "
                "processes can open, not ':memory:'"
            )
            raise InvalidConfigError(msg)
        if self.pragmas is not None and not isinstance(self.pragmas, dict):
            msg = f"pragmas must be a dict, got {type(self.pragmas).__name__}"
            raise InvalidConfigError(msg)
        if self.read_only and str(self.database_path) == ":memory:":
            msg = "a read-only store needs a database file, not ':memory:'"
            raise InvalidConfigError(msg)


def _positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"{name} must be a positive int, got {value!r}"
        raise InvalidConfigError(msg)
