"""Committer: group commit on the one writing connection, one turn at a time.

Every write in the process goes through one :class:`Committer`: its append
queue, its storage connection, its aggregate-version cache. Only the thread
holding its *turn* (a lock) may touch any of that. The writer actor's thread
takes the turn whenever it is told to work; while appends come one at a
time, an appending thread takes it itself when it is free (see
:meth:`Committer.submit`), so that a lone caller appending to an idle store
commits on its own thread, with no thread hand-off at all. Concurrent
appends are left to the writer's group commit.

Whoever holds the turn drains the queue (bounded by ``max_batch``) into one
transaction: the batch size follows the queue depth, never a timer. Each
request's reply is settled only after COMMIT, and a request that fails (a
version conflict, a duplicate id) fails only itself: it is dropped from the
batch and the rest commit.

Positions are assigned under the turn, in commit order, so they are gap-free
and published (:class:`CommitHead`, then a :class:`DeliverPage` to the
dispatcher) only after the transaction committed. If COMMIT fails with an
unknown outcome the committer stops accepting appends rather than guess.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.messages import DeliverPage, Notify
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

    import pykka

    from swarmlog.actors.messages import AppendRequest
    from swarmlog.actors.reply import Callbacks
    from swarmlog.actors.runtime import Audience, CommitHead, WriterMetrics
    from swarmlog.actors.storage import (
        CheckpointRecord,
        EventRow,
        SnapshotRecord,
        WriteStorage,
    )
    from swarmlog.schema.codec import PreparedEvent
    from swarmlog.schema.envelope import Event, ExpectedVersion

__all__ = ["Committer"]

logger = logging.getLogger("swarmlog.writer")

_CALM_APPENDS = 16  # appends in a row finding the writer idle before callers lead
_LEADER_EXTRA = 1  # batches a leading caller commits after its own
_KNOWN_LIMIT = 262_144  # aggregate versions cached before the cache restarts
_CHECKPOINT_AFTER_TXNS = 1000  # idle-time WAL checkpoint after this many commits
_CHECKPOINT_FORCED_TXNS = 2000  # ... and at this many even when busy


class _Round:
    """What one transaction will store, as it is planned."""

    __slots__ = ("ends", "events", "position", "requests", "rows", "tentative")

    def __init__(self, head: int) -> None:
        self.position = head  # the last position planned so far
        self.rows: list[EventRow] = []
        self.events: list[Event[Any]] = []
        self.requests: list[AppendRequest] = []  # planned, in order
        self.ends: list[int] = []  # per planned request: its end in events
        self.tentative: dict[str, tuple[str, int]] = {}  # aggregate versions

    def add(
        self,
        request: AppendRequest,
        rows: list[EventRow],
        events: list[Event[Any]],
        versions: dict[str, tuple[str, int]],
    ) -> None:
        self.tentative.update(versions)
        self.position += len(rows)
        self.rows += rows
        self.events += events
        self.requests.append(request)
        self.ends.append(len(self.events))


def _expected_ok(expected: ExpectedVersion, current: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return current == 0
    if expected is STREAM_EXISTS:
        return current > 0
    return current == expected


def _type_clash(aggregate_id: str, stored: str, given: str) -> InvalidEventError:
    msg = f"aggregate {aggregate_id!r} is a {stored!r}, not a {given!r}"
    return InvalidEventError(msg)


def _same_content(stored: Event[Any], prepared: PreparedEvent) -> bool:
    event = prepared.event
    return (
        stored.type == event.type
        and stored.aggregate_id == event.aggregate_id
        and stored.payload == event.payload
        and stored.metadata == event.metadata
    )


def run_callbacks(later: list[Callbacks]) -> None:
    """Run done-callbacks that were held back while the turn was held."""
    for callbacks in later:
        callbacks()


class Committer:
    """The append queue and the one writing connection, behind one turn.

    Thread-safe entry points: :meth:`submit`, :attr:`turn`, :meth:`has_work`.
    Every other method needs the turn held (``with committer.turn:``).

    Args:
        storage: The writing connection (owned from here on).
        dispatcher: Where committed pages go (when ``audience`` is present).
        audience: Whether anybody wants committed pages.
        notifier: Where ``error`` notifications go.
        head: The committed head this committer publishes.
        metrics: Counters it keeps.
        max_batch: Most append requests in one transaction.
        on_commit: Called (turn held) after each commit: the checkpointer
            nudge; must be quick and never raise.
        on_settled: Called (turn held) with how many requests were just
            settled, once per batch: the in-flight limit's release.
    """

    def __init__(
        self,
        storage: WriteStorage,
        dispatcher: pykka.ActorRef[Any],
        audience: Audience,
        notifier: pykka.ActorRef[Any] | None,
        head: CommitHead,
        metrics: WriterMetrics,
        max_batch: int,
        on_commit: Callable[[], None] | None = None,
        on_settled: Callable[[int], None] | None = None,
    ) -> None:
        self.turn = threading.Lock()
        self._queue: deque[AppendRequest] = deque()
        self._storage = storage
        self._dispatcher = dispatcher
        self._audience = audience
        self._notifier = notifier
        self._head = head
        self._metrics = metrics
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._on_settled = on_settled
        self._settled = 0
        self._calm = _CALM_APPENDS  # appends in a row that found the writer idle
        self._checkpointing = False  # the turn is held for a WAL checkpoint
        self._known: dict[str, tuple[str, int] | None] = {}
        self._stopped: WriterStoppedError | None = None
        self._closed = False
        self._txns_since_checkpoint = 0
        self._in_progress: list[AppendRequest] = []
        self._later: list[Callbacks] = []
        self._room = threading.Condition(threading.Lock())
        self._room_waiters = 0
        self.writer_ident: int | None = None  # set by the writer actor

    # -- thread-safe -------------------------------------------------------

    def submit(
        self, request: AppendRequest, *, lead: bool, wake: Callable[[], None]
    ) -> None:
        """Queue ``request`` and see that somebody commits it (any thread).

        With ``lead`` and the turn free, the calling thread commits the
        queue itself, up to and including ``request``, and returns with
        its reply settled. Otherwise whoever holds the turn picks the
        request up before letting go of it, or ``wake`` (which tells the
        writer actor to take the turn) is called.

        Never blocks on the turn (except on the writer's own thread, which
        must commit what it waits for): a holder never waits on anybody, so
        waiting for the reply cannot form a cycle.
        """
        # Commit on the caller's thread only while appends come one at a
        # time: under concurrency the writer thread's group commit wins
        # (callers then wait for one wake-up each, and the thread doing
        # SQLite work is not also one that others must wake).
        if self._queue or (self.turn.locked() and not self._checkpointing):
            self._calm = 0
        elif self._calm < _CALM_APPENDS:
            self._calm += 1
        lead = lead and self._calm >= _CALM_APPENDS
        self._queue.append(request)
        # The writer's own thread (a done-callback appending) must commit
        # itself, waiting for the turn if need be: nobody else would.
        own = threading.get_ident() == self.writer_ident
        if (lead or own) and self.turn.acquire(blocking=own):
            try:
                # One batch more than its own: callers that queued behind it
                # are served by one commit, without waking the writer
                # thread (a hop that costs them a wake-up and the GIL).
                later = self.commit_queued(until=request, extra=_LEADER_EXTRA)
            finally:
                self.turn.release()
            run_callbacks(later)
            # Whoever queued while we held the turn saw it taken and relies
            # on us: hand their requests (or a due checkpoint) to the actor.
            if self.has_work():
                wake()
            return
        if not self.turn.locked():
            wake()
        # else: the holder checks the queue after it lets go of the turn.
        if len(self._queue) >= self._max_batch:
            self._wait_until_taken()

    def shut(self) -> None:
        """Close (any thread; takes the turn): see :meth:`close`. Requests
        queued meanwhile fail too: nobody commits after this."""
        while True:
            with self.turn:
                later = self.close()
            run_callbacks(later)
            if not self._queue:
                return

    def _wait_until_taken(self) -> None:
        """Block while a whole batch waits in the queue (back-pressure).

        A thread that keeps queueing ``append_async`` calls would otherwise
        compete for the GIL with the committing thread, which then waits a
        whole switch interval (5 ms) to get it back after each SQLite call;
        parked here, it lets the committer plan and settle at full speed and
        resumes (to fill the next batch while SQLite works) as soon as the
        queue is taken.
        """
        with self._room:
            self._room_waiters += 1
            try:
                while len(self._queue) >= self._max_batch and not self._closed:
                    self._room.wait()
            finally:
                self._room_waiters -= 1

    def _make_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def has_work(self) -> bool:
        """Whether requests are queued or an idle-time checkpoint is due."""
        return bool(self._queue) or (
            self._txns_since_checkpoint >= _CHECKPOINT_AFTER_TXNS and not self._closed
        )

    # -- turn held --------------------------------------------------------

    def commit_queued(
        self, until: AppendRequest | None = None, extra: int = 0
    ) -> list[Callbacks]:
        """Commit queued requests in batches of at most ``max_batch``.

        Stops when the queue is empty, or (a leading caller) ``extra``
        batches after the one that settled ``until``. Turn held.

        Returns:
            Done-callbacks held back: run them after letting go of the turn
            (a callback may append).
        """
        queue = self._queue
        try:
            while queue:
                batch = [queue.popleft()]
                while queue and len(batch) < self._max_batch:
                    batch.append(queue.popleft())
                if self._room_waiters:  # they fill the next batch while
                    self._make_room()  # this one is planned and written
                self._in_progress = batch
                self._append_batch(batch)
                self._in_progress = []
                if until is not None and until.done():
                    if extra <= 0:
                        break
                    extra -= 1
        except Exception as error:  # a bug: nobody may be left waiting
            logger.exception("writer failed unexpectedly")
            stopped = self._stop_writer(error)
            for request in self._in_progress:
                if not request.done():
                    self._settle_error(request, stopped)
            self._in_progress = []
            self._release_settled()
        if self._room_waiters:
            self._make_room()
        later, self._later = self._later, []
        return later

    def checkpoint_if_idle(self) -> None:
        """Fold the WAL back when nobody waits for the writer. Turn held.

        A WAL that keeps growing makes every commit slower, and a checkpoint
        from another connection can never let it restart while commits keep
        coming. So after enough commits, when the queue is empty (no caller
        is waiting), a PASSIVE checkpoint runs on the writing connection; the
        next transaction then restarts the WAL from its beginning. Under
        sustained saturation it checkpoints anyway at a hard bound.
        """
        if self._closed or self._txns_since_checkpoint < _CHECKPOINT_AFTER_TXNS:
            return
        if not self._queue or self._txns_since_checkpoint >= _CHECKPOINT_FORCED_TXNS:
            self._txns_since_checkpoint = 0
            self._checkpointing = True
            try:
                self._storage.checkpoint_passive()
            except Exception:  # an optimisation: never a reason to stop
                logger.exception("idle WAL checkpoint failed")
            finally:
                self._checkpointing = False

    def publish_head(self) -> None:
        """Publish the stored head (at start). Turn held."""
        self._head.position = self._storage.head()

    def close(self) -> list[Callbacks]:
        """Fail what is queued; the first time, also checkpoint the WAL into
        the database file and close the connection. Later submissions
        fail. Turn held.

        Returns:
            Done-callbacks to run after letting go of the turn.
        """
        closed = StoreClosedError("the store shut down before this write")
        while self._queue:
            self._settle_error(self._queue.popleft(), closed)
        self._release_settled()
        self._make_room()
        if not self._closed:
            self._closed = True
            try:
                if self._stopped is None:
                    self._storage.checkpoint()
            finally:
                self._storage.close()
        later, self._later = self._later, []
        return later

    # -- one transaction ----------------------------------------------------

    def _append_batch(self, batch: list[AppendRequest]) -> None:
        rounds: deque[list[AppendRequest]] = deque([batch])
        while rounds:
            group = rounds.popleft()
            refusal = self._refusal()
            if refusal is not None:
                for request in group:
                    self._fail(request, refusal)
                continue
            rounds.extendleft(reversed(self._commit_round(group)))
        self._release_settled()
        self._txns_since_checkpoint += 1
        if self._txns_since_checkpoint >= _CHECKPOINT_FORCED_TXNS:
            self.checkpoint_if_idle()

    def _refusal(self) -> SwarmlogError | None:
        if self._stopped is not None:
            return self._stopped
        if self._closed:
            return StoreClosedError("the store shut down before this write")
        return None

    def _commit_round(self, requests: list[AppendRequest]) -> list[list[AppendRequest]]:
        """Plan and commit ``requests`` in one transaction.

        Returns:
            The groups to commit next, in order (empty when all were settled).
        """
        round_ = _Round(self._head.position)
        for request in requests:
            prepared = request.prepared
            if len(prepared) == 1 and request.expected is ANY:
                self._plan_one(request, prepared[0], round_)
                continue
            try:
                rows, events, versions = self._plan(
                    request, round_.tentative, round_.position
                )
            except SwarmlogError as error:
                self._resolve_failed(request, error)
                continue
            round_.add(request, rows, events, versions)
        planned = round_.requests
        if not planned:
            return []
        try:
            self._storage.write_events(round_.rows, len(planned))
        except RequestConflict:
            if len(planned) == 1:
                self._resolve_conflict(planned[0])
                return []
            # Some request clashed (a stored id, or the same id twice in this
            # batch): settle each on its own, in order, so only the culprit
            # fails and a retry of a stored event resolves idempotently.
            return [[request] for request in planned]
        except StorageError as error:
            if len(planned) == 1:
                self._fail(planned[0], error)
                return []
            # Batch-wide failure (e.g. disk full): settle each on its own.
            return [[request] for request in planned]
        except CommitUnknownError as unknown:
            stopped = self._stop_writer(unknown)
            for request in planned:
                self._fail(request, stopped)
            return []
        self._committed(round_)
        return []

    def _plan_one(
        self, request: AppendRequest, prepared: PreparedEvent, round_: _Round
    ) -> None:
        """The common case, kept short: one event, no expected version."""
        event = prepared.event
        aggregate_id = event.aggregate_id
        state = round_.tentative.get(aggregate_id) or self._known_state(aggregate_id)
        if state is None:
            version = 1
        elif state[0] == event.aggregate_type:
            version = state[1] + 1
        else:
            clash = _type_clash(aggregate_id, state[0], event.aggregate_type)
            self._resolve_failed(request, clash)
            return
        position = round_.position + 1
        round_.position = position
        round_.tentative[aggregate_id] = (event.aggregate_type, version)
        round_.rows.append(prepared.row(version, position))
        round_.events.append(
            msgspec.structs.replace(event, version=version, position=position)
        )
        round_.requests.append(request)
        round_.ends.append(len(round_.events))

    def _plan(
        self,
        request: AppendRequest,
        tentative: dict[str, tuple[str, int]],
        position: int,
    ) -> tuple[list[EventRow], list[Event[Any]], dict[str, tuple[str, int]]]:
        """One request's rows, stored events and new aggregate versions.

        Raises:
            ConcurrencyError: An aggregate is not at its expected version.
            InvalidEventError: An aggregate id is used by another type.
        """
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
                raise _type_clash(aggregate_id, state[0], event.aggregate_type)
            version = (0 if state is None else state[1]) + 1
            position += 1
            versions[aggregate_id] = (event.aggregate_type, version)
            rows.append(prepared.row(version, position))
            events.append(
                msgspec.structs.replace(event, version=version, position=position)
            )
        return rows, events, versions

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

    def _committed(self, round_: _Round) -> None:
        tentative = round_.tentative
        if len(self._known) + len(tentative) >= _KNOWN_LIMIT:
            self._known.clear()
        self._known.update(tentative)
        self._head.position = round_.position
        events = round_.events
        metrics = self._metrics
        metrics.transactions += 1
        if threading.get_ident() != self.writer_ident:
            metrics.caller_transactions += 1
        metrics.appends += len(round_.requests)
        metrics.events += len(events)
        if self._audience.present:
            self._dispatcher.tell(DeliverPage(tuple(events)))
        start = 0
        for request, end in zip(round_.requests, round_.ends, strict=True):
            value = events[end - 1] if request.single else events[start:end]
            self._settle(request, value)
            start = end
        if self._on_commit is not None:
            self._on_commit()

    # -- settling -------------------------------------------------------------

    def _settle(self, request: AppendRequest, value: Any) -> None:
        self._settled += 1
        callbacks = request.settle_result(value)
        if callbacks is not None:
            self._later.append(callbacks)

    def _settle_error(self, request: AppendRequest, error: BaseException) -> None:
        self._settled += 1
        callbacks = request.settle_exception(error)
        if callbacks is not None:
            self._later.append(callbacks)

    def _release_settled(self) -> None:
        """Tell the in-flight limit how many requests settled since last."""
        settled, self._settled = self._settled, 0
        if settled and self._on_settled is not None:
            self._on_settled(settled)

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
        self._settle(request, stored[0] if request.single else stored)

    def _fail(self, request: AppendRequest, error: BaseException) -> None:
        self._metrics.failed_appends += 1
        self._settle_error(request, error)

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

    # -- other writes -----------------------------------------------------------

    def write(self, function: Callable[[WriteStorage], None]) -> None:
        """Run one non-append write on the connection. Turn held.

        Raises:
            WriterStoppedError: The writer stopped (now or before).
            StoreClosedError: The connection is closed.
            SwarmlogError: The write failed; nothing was stored.
        """
        refusal = self._refusal()
        if refusal is not None:
            raise refusal
        try:
            function(self._storage)
        except CommitUnknownError as unknown:
            raise self._stop_writer(unknown) from unknown

    def save_snapshot(self, record: SnapshotRecord) -> None:
        """Store an aggregate snapshot. Turn held; raises like :meth:`write`."""
        self.write(lambda storage: storage.save_snapshot(record))

    def save_checkpoint(self, name: str, record: CheckpointRecord) -> None:
        """Store a projection checkpoint. Turn held; raises like :meth:`write`."""
        self.write(lambda storage: storage.save_checkpoint(name, record))

    def delete_checkpoint(self, name: str) -> None:
        """Forget a projection checkpoint. Turn held; raises like :meth:`write`."""
        self.write(lambda storage: storage.delete_checkpoint(name))
