"""SnapshotMethods: aggregate snapshots, saved through the writer and read
from the reader pool.

Mixed into :class:`~swarmlog.EventStore` (safe from any thread). Not to be
confused with a projection's saved position
(:mod:`swarmlog.actors.projection_actor`).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.messages import SaveSnapshot
from swarmlog.schema.codec import decode_value
from swarmlog.schema.envelope import Snapshot
from swarmlog.schema.errors import EventDecodeError, InvalidQueryError
from swarmlog.schema.timeutil import from_micros
from swarmlog.validation import snapshot_record

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.committer import Committer
    from swarmlog.actors.storage import ReadStorage
    from swarmlog.wiring import StoreWiring

__all__ = ["SnapshotMethods"]


class SnapshotMethods:
    """Save and load aggregate snapshots (see each method)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what EventStore provides (a mixin never imports
        # the store: that would be an import cycle)
        _wiring: StoreWiring
        _log: Callable[..., None]

        def _reader_checked(self) -> ReadStorage: ...

        def _require_writable(self) -> Committer: ...

        def _notify(
            self, name: str, args: tuple[Any, ...]
        ) -> None: ...  # EventStore's: tell the listeners

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store an aggregate snapshot (a lower version never replaces a
        higher one). Returns once it is committed.

        Raises:
            InvalidEventError: The snapshot is malformed or not encodable.
        """
        record = snapshot_record(snapshot)
        committer = self._require_writable()
        if threading.get_ident() == committer.writer_ident:
            # A done-callback on the writer's own thread: write it here, as
            # waiting for the writer would wait for itself.
            with committer.turn:
                committer.write(lambda storage: storage.save_snapshot(record))
        else:
            future: Future[None] = Future()
            self._wiring.ask_writer(SaveSnapshot(record, future), future)
        self._log(
            "swarmlog: snapshot of %s at version %d",
            snapshot.aggregate_id,
            snapshot.version,
        )
        self._notify("snapshot:saved", (snapshot,))

    def get_snapshot(self, aggregate_id: str, *, type: Any = None) -> Snapshot | None:
        """The highest-version snapshot of an aggregate, or None.

        Args:
            aggregate_id: The aggregate.
            type: Decode the state into this type (e.g. a Struct); default
                plain JSON-like data.

        Raises:
            EventDecodeError: The stored state does not decode as ``type``.
        """
        if not isinstance(aggregate_id, str):
            msg = f"aggregate_id must be a string, got {aggregate_id!r}"
            raise InvalidQueryError(msg)
        record = self._reader_checked().load_snapshot(aggregate_id)
        if record is None:
            return None
        try:
            state = decode_value(record.state, Any if type is None else type)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise EventDecodeError(record.version, f"snapshot state: {e}") from e
        return Snapshot(
            record.aggregate_id,
            record.aggregate_type,
            record.version,
            state,
            from_micros(record.timestamp),
        )
