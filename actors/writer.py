"""WriterActor: the one writing connection, with group commit.

Every append in the process goes through this actor. When it takes an
:class:`AppendRequest` from its inbox it also drains the append requests
queued behind it (bounded) and stores them all in one transaction, so one
fsync serves many callers: the batch size follows the queue depth, never a
timer. Each caller's future is resolved only after COMMIT, and a request
that fails (a version conflict, a duplicate id) fails only its own future:
the writer drops it from the batch and commits the rest.

Positions are assigned here, in commit order, so they are gap-free and are
published (:class:`CommitHead`, then a :class:`DeliverPage` to the
dispatcher) only after the transaction committed. If COMMIT fails with an
unknown outcome the writer stops accepting appends rather than guess.
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import pykka

from swarmlog.actors.messages import (
    AppendRequest,
    CheckpointSaved,
    DeleteCheckpoint,
    DeliverPage,
    Flush,
    Notify,
    SaveCheckpoint,
    SaveSnapshot,
)
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread
from swarmlog.actors.storage import CommitUnknownError, RequestConflict
from swarmlog.schema.envelope import ANY, NO_STREAM, STREAM_EXISTS
from swarmlog.schema.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidEventError,
    StorageError,
    StoreClosedError,
    SwarmlogError,
    WriterStoppedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.runtime import CommitHead, WriterMetrics
    from swarmlog.actors.storage import EventRow, WriteStorage
    from swarmlog.schema.codec import PreparedEvent
    from swarmlog.schema.envelope import Event, ExpectedVersion

__all__ = ["WriterActor"]

logger = logging.getLogger("swarmlog.writer")

_OWN_MESSAGES = (AppendRequest, SaveCheckpoint, SaveSnapshot, DeleteCheckpoint, Flush)
_KNOWN_LIMIT = 262_144  # aggregate versions cached before the cache restarts
_CHECKPOINT_AFTER_TXNS = 200  # idle-time WAL checkpoint after this many commits
_CHECKPOINT_FORCED_TXNS = 2000  # ... and at this many even when busy


class _Planned:
    """One request's rows and stored events within a transaction."""

    __slots__ = ("events", "request", "rows", "versions")

    def __init__(
        self,
        request: AppendRequest,
        rows: list[EventRow],
        events: list[Event[Any]],
        versions: dict[str, tuple[str, int]],
    ) -> None:
        self.request = request
        self.rows = rows
        self.events = events
        self.versions = versions


def _expected_ok(expected: ExpectedVersion, current: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return current == 0
    if expected is STREAM_EXISTS:
        return current > 0
    return current == expected


def _same_content(stored: Event[Any], prepared: PreparedEvent) -> bool:
    event = prepared.event
    return (
        stored.type == event.type
        and stored.aggregate_id == event.aggregate_id
        and stored.payload == event.payload
        and stored.metadata == event.metadata
    )


class WriterActor(FastInboxActor):
    """Serialises every append, snapshot and checkpoint write.

    Runs on its own thread; its storage connection is private to it from
    ``on_start`` to ``on_stop``.

    Args:
        storage: The writing connection (opened by the store, so that open
            errors reach ``initialize()``'s caller; owned by this actor).
        dispatcher: Where committed pages go.
        notifier: Where ``error`` notifications go.
        head: The committed head this actor publishes.
        metrics: Counters this actor keeps.
        max_batch: Most append requests in one transaction.
        on_commit: Called on this thread after each commit (the checkpointer
            nudge); must be quick and never raise.
    """

    def __init__(
        self,
        storage: WriteStorage,
        dispatcher: pykka.ActorRef[Any],
        notifier: pykka.ActorRef[Any] | None,
        head: CommitHead,
        metrics: WriterMetrics,
        max_batch: int,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._storage = storage
        self._dispatcher = dispatcher
        self._notifier = notifier
        self._head = head
        self._metrics = metrics
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._known: dict[str, tuple[str, int] | None] = {}
        self._stopped: WriterStoppedError | None = None
        self._txns_since_checkpoint = 0
        self._in_progress: list[AppendRequest] = []
        self._held: Any = None

    def on_start(self) -> None:
        """Mark the thread and publish the stored head."""
        mark_engine_thread()
        self._head.position = self._storage.head()

    def on_stop(self) -> None:
        """Fail anything still queued, checkpoint the WAL into the database
        file and close."""
        self._fail_queued()
        try:
            if self._stopped is None:
                self._storage.checkpoint()
        finally:
            self._storage.close()

    def _fail_queued(self) -> None:
        """pykka drops told messages left behind a stop: settle them."""
        inbox: queue.SimpleQueue[Any] = self.actor_inbox  # type: ignore[assignment]
        closed = StoreClosedError("the store shut down before this write")
        while True:
            try:
                message = inbox.get_nowait().message
            except queue.Empty:
                return
            future = getattr(message, "future", None)
            if future is not None and not future.done():
                future.set_exception(closed)
            if isinstance(message, SaveCheckpoint) and message.reply_to is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    message.reply_to.tell(
                        CheckpointSaved(message.record.position, closed)
                    )

    def on_receive(self, message: Any) -> Any:
        """Handle one message (this actor's thread).

        A bug-level exception here must not leave callers waiting forever:
        the writer stops accepting appends and fails what it held.
        """
        try:
            self._dispatch(message)
            if self._held is not None:
                self._handle_held()
        except Exception as error:
            logger.exception("writer failed unexpectedly")
            stopped = self._stop_writer(error)
            future = getattr(message, "future", None)
            if future is not None and not future.done():
                future.set_exception(stopped)
            for request in self._in_progress:
                if not request.future.done():
                    request.future.set_exception(stopped)
        self._in_progress = []
        return None

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, AppendRequest):
            self._append_group(message)
        elif isinstance(message, SaveCheckpoint):
            self._save_checkpoint(message)
        elif isinstance(message, SaveSnapshot):
            self._run(message.future, self._storage.save_snapshot, message.record)
        elif isinstance(message, DeleteCheckpoint):
            self._run(message.future, self._storage.delete_checkpoint, message.name)
        elif isinstance(message, Flush):
            message.future.set_result(None)

    # -- group commit -----------------------------------------------------

    def _drain(self, first: AppendRequest) -> list[AppendRequest]:
        """The first request plus those queued right behind it (bounded).

        A message of another kind ends the batch; it is kept and handled
        right after the batch commits, so order is preserved.
        """
        batch = [first]
        inbox: queue.SimpleQueue[Any] = self.actor_inbox  # type: ignore[assignment]
        while len(batch) < self._max_batch:
            try:
                envelope = inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(envelope.message, AppendRequest):
                batch.append(envelope.message)
            else:
                self._held = envelope
                break
        return batch

    def _handle_held(self) -> None:
        """Handle the message that ended the last batch."""
        envelope, self._held = self._held, None
        if envelope is None:
            return
        if isinstance(envelope.message, _OWN_MESSAGES):
            self.on_receive(envelope.message)
        else:  # a pykka system message (stop): back to pykka's loop
            self.actor_inbox.put(envelope)

    def _append_group(self, first: AppendRequest) -> None:
        batch = self._drain(first)
        self._in_progress = batch
        rounds: deque[list[AppendRequest]] = deque([batch])
        while rounds:
            group = rounds.popleft()
            if self._stopped is not None:
                for request in group:
                    self._fail(request, self._stopped)
                continue
            rounds.extendleft(reversed(self._commit_round(group)))
        self._checkpoint_when_idle()

    def _checkpoint_when_idle(self) -> None:
        """Fold the WAL back when nobody waits for the writer.

        A WAL that keeps growing makes every commit slower, and a checkpoint
        from another connection can never let it restart while commits keep
        coming. So after enough commits, when the inbox is empty (no caller
        is waiting), the writer runs a PASSIVE checkpoint itself; the next
        transaction then restarts the WAL from its beginning. Under
        sustained saturation it checkpoints anyway at a hard bound.
        """
        self._txns_since_checkpoint += 1
        if self._txns_since_checkpoint < _CHECKPOINT_AFTER_TXNS:
            return
        if self.actor_inbox.empty() or (
            self._txns_since_checkpoint >= _CHECKPOINT_FORCED_TXNS
        ):
            self._txns_since_checkpoint = 0
            self._storage.checkpoint_passive()

    def _commit_round(self, requests: list[AppendRequest]) -> list[list[AppendRequest]]:
        """Plan and commit ``requests`` in one transaction.

        Returns:
            The groups to commit next, in order (empty when all were settled).
        """
        plan: list[_Planned] = []
        tentative: dict[str, tuple[str, int]] = {}
        position = self._head.position
        for request in requests:
            try:
                planned = self._plan(request, tentative, position)
            except SwarmlogError as error:
                self._resolve_failed(request, error)
                continue
            tentative.update(planned.versions)
            position += len(planned.rows)
            plan.append(planned)
        if not plan:
            return []
        try:
            self._storage.write_events([p.rows for p in plan])
        except RequestConflict:
            if len(plan) == 1:
                self._resolve_conflict(plan[0].request)
                return []
            # Some request clashed (a stored id, or the same id twice in this
            # batch): settle each on its own, in order, so only the culprit
            # fails and a retry of a stored event resolves idempotently.
            return [[p.request] for p in plan]
        except StorageError as error:
            if len(plan) == 1:
                self._fail(plan[0].request, error)
                return []
            # Batch-wide failure (e.g. disk full): settle each on its own.
            return [[p.request] for p in plan]
        except CommitUnknownError as unknown:
            stopped = self._stop_writer(unknown)
            for p in plan:
                self._fail(p.request, stopped)
            return []
        self._committed(plan, tentative, position)
        return []

    def _plan(
        self,
        request: AppendRequest,
        tentative: dict[str, tuple[str, int]],
        position: int,
    ) -> _Planned:
        expected = request.expected
        per_aggregate = isinstance(expected, Mapping)
        versions: dict[str, tuple[str, int]] = {}
        rows: list[EventRow] = []
        events: list[Event[Any]] = []
        for prepared in request.prepared:
            event = prepared.event
            aggregate_id = event.aggregate_id
            state = versions.get(aggregate_id)
            if state is None:
                state = tentative.get(aggregate_id) or self._known_state(aggregate_id)
                current = 0 if state is None else state[1]
                wanted = expected.get(aggregate_id, ANY) if per_aggregate else expected  # type: ignore[union-attr]
                if not _expected_ok(wanted, current):  # type: ignore[arg-type]
                    raise ConcurrencyError(aggregate_id, wanted, current)
            if state is not None and state[0] != event.aggregate_type:
                msg = (
                    f"aggregate {aggregate_id!r} is a {state[0]!r}, "
                    f"not a {event.aggregate_type!r}"
                )
                raise InvalidEventError(msg)
            version = (0 if state is None else state[1]) + 1
            position += 1
            versions[aggregate_id] = (event.aggregate_type, version)
            rows.append(prepared.row(version, position))
            events.append(
                msgspec.structs.replace(event, version=version, position=position)
            )
        return _Planned(request, rows, events, versions)

    def _known_state(self, aggregate_id: str) -> tuple[str, int] | None:
        try:
            return self._known[aggregate_id]
        except KeyError:
            pass
        state = self._storage.aggregate(aggregate_id)
        if len(self._known) >= _KNOWN_LIMIT:
            self._known.clear()
        self._known[aggregate_id] = state
        return state

    def _committed(
        self, plan: list[_Planned], tentative: dict[str, tuple[str, int]], head: int
    ) -> None:
        if len(self._known) + len(tentative) >= _KNOWN_LIMIT:
            self._known.clear()
        self._known.update(tentative)
        self._head.position = head
        metrics = self._metrics
        metrics.transactions += 1
        metrics.appends += len(plan)
        if len(plan) == 1:
            page = tuple(plan[0].events)
        else:
            page = tuple(e for p in plan for e in p.events)
        metrics.events += len(page)
        self._dispatcher.tell(DeliverPage(page))
        for p in plan:
            request = p.request
            request.future.set_result(p.events[0] if request.single else p.events)
        if self._on_commit is not None:
            self._on_commit()

    # -- failures -----------------------------------------------------------

    def _stored_copies(self, request: AppendRequest) -> list[Event[Any]] | None:
        """The stored events of a retried request, or None if not a retry.

        Raises:
            DuplicateEventError: An id is stored with different content, or
                only some of the request's ids are stored.
        """
        ids = [p.id_bytes for p in request.prepared]
        found = {e.id.bytes: e for e in self._storage.find_events(ids)}
        if not found:
            return None
        stored = []
        for p in request.prepared:
            copy = found.get(p.id_bytes)
            if copy is None or not _same_content(copy, p):
                culprit = p.event.id if copy is None else copy.id
                raise DuplicateEventError(culprit)
            stored.append(copy)
        return stored

    def _resolve_failed(self, request: AppendRequest, error: SwarmlogError) -> None:
        """A request failed planning: a retry of stored events still succeeds
        (idempotence is checked first), anything else gets ``error``."""
        try:
            stored = self._stored_copies(request)
        except SwarmlogError as duplicate:
            self._fail(request, duplicate)
            return
        if stored is None:
            self._fail(request, error)
        else:
            self._succeed_without_write(request, stored)

    def _resolve_conflict(self, request: AppendRequest) -> None:
        try:
            stored = self._stored_copies(request)
        except SwarmlogError as duplicate:
            self._fail(request, duplicate)
            return
        if stored is not None:
            self._succeed_without_write(request, stored)
            return
        # A version clash the cache did not foresee: forget and report.
        self._known.clear()
        self._fail(request, StorageError("aggregate version clash; please retry"))

    def _succeed_without_write(
        self, request: AppendRequest, stored: list[Event[Any]]
    ) -> None:
        self._metrics.appends += 1
        request.future.set_result(stored[0] if request.single else stored)

    def _fail(self, request: AppendRequest, error: BaseException) -> None:
        self._metrics.failed_appends += 1
        request.future.set_exception(error)

    def _stop_writer(self, cause: BaseException) -> WriterStoppedError:
        msg = (
            f"the writer stopped accepting appends ({type(cause).__name__}: "
            f"{cause}); the outcome of the last commit may be unknown. Reopen "
            "the store to see what was stored."
        )
        self._stopped = WriterStoppedError(msg)
        logger.error(msg)
        if self._notifier is not None:
            self._notifier.tell(Notify("error", (self._stopped,)))
        return self._stopped

    # -- other writes ---------------------------------------------------------

    def _run(self, future: Any, function: Callable[[Any], None], argument: Any) -> None:
        if self._stopped is not None:
            future.set_exception(self._stopped)
            return
        try:
            function(argument)
        except SwarmlogError as error:
            future.set_exception(error)
        except CommitUnknownError as unknown:
            future.set_exception(self._stop_writer(unknown))
        else:
            future.set_result(None)

    def _save_checkpoint(self, message: SaveCheckpoint) -> None:
        error: BaseException | None = self._stopped
        if error is None:
            try:
                self._storage.save_checkpoint(message.name, message.record)
            except SwarmlogError as failure:
                error = failure
            except CommitUnknownError as unknown:
                error = self._stop_writer(unknown)
        if message.reply_to is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                message.reply_to.tell(CheckpointSaved(message.record.position, error))
