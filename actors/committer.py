"""Committer: group commit on the one writing connection, one turn at a time.

Every write in the process goes through one :class:`Committer`: its append
queue, its storage connection, its aggregate-version cache, behind one lock
(the *turn*). By default only the writer actor's thread takes it; with the
opt-in ``caller_commits`` a lone caller on a thread other than the main one
may (no thread hand-off), its done-callbacks still run by the writer.
The holder drains the queue (up to ``max_batch``) into one transaction;
replies settle only after COMMIT; a failed request fails only itself.

No verdict rests on uncommitted state: requests are planned in order against
committed versions plus those planned before them in the round (see
``actors/planning.py``); a refusal is given only when nothing tentative was
planned before it. Otherwise the round is cut there: what was planned
commits first, and the refused request and those after it are planned again
against the now-committed state.

On a shared store (other processes write it too) a round first takes the write
lock, publishes what others committed (``actors/catch_up.py``), then plans.

Positions are assigned under the turn, in commit order, so they are gap-free
and published (:class:`CommitHead`, then a :class:`DeliverPage` to the
dispatcher) only after the transaction committed. If COMMIT fails with an
unknown outcome the committer never guesses: on SQLite it stops accepting
appends; on PostgreSQL the batch fails with ``CommitOutcomeUnknownError``.

Anything unexpected (a bug, a ``BaseException`` delivered to the committing
thread) is contained: a round whose write returned is still published and
settled; requests not yet written go back to the front of the queue; an
exception inside the write itself (outcome unknown) stops the writer, and
every pending request gets :class:`WriterStoppedError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from swarmlog.actors.catch_up import SharedRounds
from swarmlog.actors.known_versions import KnownVersions
from swarmlog.actors.messages import Notify, TrackedReplies
from swarmlog.actors.planning import Round, plan_request, stored_copies
from swarmlog.actors.publisher import Publisher
from swarmlog.actors.reply import Room
from swarmlog.actors.settling import Settlements, run_callbacks
from swarmlog.actors.storage import CommitUnknownError, RequestConflict
from swarmlog.actors.wal_upkeep import WalUpkeep
from swarmlog.schema.errors import (
    CommitOutcomeUnknownError,
    LockTimeoutError,
    StorageError,
    StoreClosedError,
    SwarmlogError,
    WriterStoppedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from swarmlog.actors.append_request import AppendRequest
    from swarmlog.actors.reply import Callbacks
    from swarmlog.actors.runtime import Audience, CommitHead, WriterMetrics
    from swarmlog.actors.storage import WriteStorage

__all__ = ["Committer"]

logger = logging.getLogger("swarmlog.writer")

_CALM_APPENDS = 16  # appends in a row finding the writer idle before callers lead
_LEADER_EXTRA = 1  # batches a leading caller commits after its own
_UNEXPECTED_LIMIT = 3  # unexpected failures in a row before the writer stops


def _closed_error() -> StoreClosedError:
    return StoreClosedError("the store shut down before this write")


class Committer:
    """The append queue and the one writing connection, behind one turn.

    Thread-safe entry points: :meth:`submit`, :attr:`turn`, :meth:`has_work`,
    :attr:`tracked`, :meth:`expect_close`, :meth:`close`. Every other method
    needs the turn held (``with committer.turn:``).

    Its life, one method per step (``close`` twice is safe):

    ====================  ===================  ================================
    method                thread               step
    ====================  ===================  ================================
    :meth:`open`          writer, turn held    open the connection
    :meth:`submit`        any                  queue appends; somebody commits
    :meth:`stop`          writer, turn held    stop accepting appends (a fault)
    :meth:`expect_close`  any (the store)      announce the store's shutdown
    :meth:`close`         any; takes the turn  fail the queue, checkpoint the
                                               WAL, close the connection
    ====================  ===================  ================================

    A :meth:`close` nobody announced is a writer that stopped under the
    store: appends then raise ``WriterStoppedError``, not
    ``StoreClosedError``.

    Args:
        open_storage: Opens the writing connection; called by the writer
            actor's ``on_start`` (:meth:`open`), closed in its ``on_stop``
            (:meth:`close`).
        dispatcher: Where committed pages go (when ``audience`` is present).
        audience: Whether anybody wants committed pages.
        notifier: Where ``error`` notifications go.
        head: The committed head this committer publishes.
        metrics: Counters it keeps.
        max_batch: Most append requests in one transaction.
        wake: Tells the writer actor to take the turn (any thread; bound
            once, here).
        on_commit: Called (turn held) after each commit: the checkpointer
            nudge; must be quick.
        on_settled: Called (turn held) with how many requests were just
            settled, once per batch: the in-flight limit's release.
        lock_timeout: On a shared store, seconds a round waits for the
            store-wide write lock (then its requests fail with
            ``LockTimeoutError``).
    """

    def __init__(
        self,
        open_storage: Callable[[], WriteStorage],
        dispatcher: pykka.ActorRef[Any],
        audience: Audience,
        notifier: pykka.ActorRef[Any] | None,
        head: CommitHead,
        metrics: WriterMetrics,
        max_batch: int,
        wake: Callable[[], None],
        on_commit: Callable[[], None] | None = None,
        on_settled: Callable[[int], None] | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        self.turn = threading.Lock()
        self._shared: SharedRounds | None = None  # open(): others write too
        self._lock_timeout = lock_timeout
        self.catch_up_asked = False  # a CatchUp message is on its way
        self.wakes_taken = 0  # Wakes the writer took (it then looks at the queue)
        self._wake_sent_after = -1  # wakes_taken when the last Wake was sent
        self._queue: deque[AppendRequest] = deque()
        self._open_storage = open_storage
        self._storage: WriteStorage | None = None
        self.publisher = Publisher(dispatcher, audience, on_commit)
        self._notifier = notifier
        self._head = head
        self._metrics = metrics
        self._max_batch = max_batch
        self._wake = wake
        self._settling = Settlements(on_settled)
        self._calm = _CALM_APPENDS  # appends in a row that found the writer idle
        self._wal = WalUpkeep()
        self._known = KnownVersions(self._load_aggregate)
        self._stopped: WriterStoppedError | None = None
        self._closed = False
        self._close_expected = False  # the store is shutting down
        self._in_progress: list[AppendRequest] = []
        self._writing: Round | None = None  # a write whose outcome is pending
        self._written: Round | None = None  # written, not yet all settled
        self._unexpected = 0  # unexpected failures in a row
        self._handoff: deque[Callbacks | None] = deque()  # for the writer to run
        self.tracked = TrackedReplies()  # reply futures told to the writer
        self._room = Room()
        self._main_ident = threading.main_thread().ident
        self.writer_ident: int | None = None  # set by open()

    # -- life (the writer actor's thread) ----------------------------------------

    def open(self) -> None:
        """Open the writing connection and publish its head. Writer thread
        (``on_start``), turn held.

        Raises:
            SwarmlogError: The connection could not be opened (the store's
                ``initialize()`` re-raises it).
        """
        self.writer_ident = threading.get_ident()
        self._storage = self._open_storage()
        self._wal.every = self._storage.wal_checkpoint_every
        if self._storage.shared:
            self._shared = SharedRounds(
                self._head, self._known, self.publisher, self._lock_timeout
            )
        self._head.position = self._storage.head()
        self._known.complete = self._head.position == 0  # nothing to look up

    @property
    def stopped(self) -> WriterStoppedError | None:
        """Why the writer stopped accepting appends (None: it did not)."""
        return self._stopped

    def expect_close(self) -> None:
        """Say that the coming :meth:`close` is the store's shutdown (any
        thread)."""
        self._close_expected = True

    # -- thread-safe -------------------------------------------------------

    def submit(self, request: AppendRequest, *, lead: bool, park: bool = True) -> None:
        """Queue ``request`` and see that somebody commits it (any thread).

        The writer actor commits it (woken unless it holds the turn; on a
        shared store, unless a ``Wake`` is on its way already). With
        ``lead`` (the opt-in ``caller_commits``), a thread other than the
        main thread that finds the turn free while appends come one at a
        time commits the queue itself, up to and including ``request``; the
        done-callbacks of what it commits run on the writer thread.

        The writer's own thread (a done-callback that appends) commits what
        it queued itself, waiting for the turn if need be: nobody else
        would. With ``park`` (not on an event loop's thread), a whole batch
        waiting untaken blocks the caller until the writer takes it.
        """
        if self._queue or (self.turn.locked() and not self._wal.checkpointing):
            self._calm = 0
        elif self._calm < _CALM_APPENDS:
            self._calm += 1
        ident = threading.get_ident()
        own = ident == self.writer_ident
        lead = (
            lead
            and self._calm >= _CALM_APPENDS
            and ident != self._main_ident
            and not own
        )
        self._queue.append(request)
        if self._closed:  # closed while this caller was suspended (a signal
            self.close()  # handler's shutdown): nobody else would fail it
            return
        if own:
            self._commit_own(request)
            return
        if lead and self._lead(request):
            return
        if not self.turn.locked():  # shared: one Wake on its way is enough
            taken = self.wakes_taken  # (none sent since the last one taken)
            if self._shared is None or self._wake_sent_after != taken:
                self._wake()
                self._wake_sent_after = taken
        # else: the holder (or the Wake on its way) looks at the queue later.
        if park and len(self._queue) >= self._max_batch:
            self._room.wait(self._no_room)

    def _commit_own(self, request: AppendRequest) -> None:
        with self.turn:
            later = self.commit_queued(until=request)
        run_callbacks(later)

    def _lead(self, request: AppendRequest) -> bool:
        """Commit on this (non-main) caller thread if the turn is free."""
        later: list[Callbacks | None] = []
        taken = False
        try:  # the acquire inside: an interrupt never leaves the turn held
            taken = self.turn.acquire(blocking=False)
            if not taken:
                return False
            # One batch more than its own: callers that queued behind it
            # are served by one commit, without waking the writer thread.
            later = self.commit_queued(until=request, extra=_LEADER_EXTRA)
        finally:
            if taken:
                self.turn.release()
            # Done-callbacks never run on a committing caller: the writer
            # runs them. Whoever queued while we held the turn relies on us.
            self._handoff.extend(later)
            if taken and (self._handoff or self._settling.holding or self.has_work()):
                self._wake()
        return True

    def reclaim(self, request: AppendRequest) -> bool:
        """After an exception on a submitting thread (an interrupt): whether
        ``request`` never reached the queue, so its caller must give its
        in-flight slot back. If it did reach the queue, the writer is woken
        for it (any thread but the turn's holder)."""
        with self.turn:
            queued = request.done() or request in self._queue
        if queued:
            self._wake()
        return not queued

    def run_handed_off(self) -> None:
        """Run done-callbacks a committing caller handed over (writer thread)."""
        handoff = self._handoff
        while handoff:
            callbacks = handoff.popleft()
            if callbacks is not None:
                callbacks()

    def close(self) -> None:
        """Close (any thread; takes the turn): see :meth:`_close_held`.
        Requests queued meanwhile fail too: nobody commits after this."""
        while True:
            with self.turn:
                later = self._close_held()
            run_callbacks(later)
            self.run_handed_off()
            if not self._queue:
                return

    def _no_room(self) -> bool:
        return (
            len(self._queue) >= self._max_batch
            and not self._closed
            and self._stopped is None
        )

    def busy(self) -> bool:
        """Whether appends are queued or being committed (any thread)."""
        return bool(self._queue) or self.turn.locked()

    def has_work(self) -> bool:
        """Whether requests are queued or an idle-time checkpoint is due."""
        return bool(self._queue) or (self._wal.due and not self._closed)

    # -- turn held --------------------------------------------------------

    def commit_queued(
        self, until: AppendRequest | None = None, extra: int = 0
    ) -> list[Callbacks | None]:
        """Commit queued requests in batches of at most ``max_batch``.

        Stops when the queue is empty, or (a leading caller) ``extra``
        batches after the one that settled ``until``. Turn held. Never
        raises on the writer thread; on another thread, a ``BaseException``
        (an interrupt) is passed on once the round is made whole.

        Returns:
            Done-callbacks held back: run them after letting go of the turn
            (a callback may append).
        """
        queue = self._queue
        try:
            while queue:
                # Popped straight into _in_progress: an interrupt between
                # two pops never loses a request.
                batch: list[AppendRequest] = []
                self._in_progress = batch
                while queue and len(batch) < self._max_batch:
                    batch.append(queue.popleft())
                # Parked producers fill the next batch while this one is
                # planned and written (see Room).
                self._room.make()
                self._append_batch(batch)
                self._in_progress = []
                self._unexpected = 0
                if until is not None and until.done():
                    if extra <= 0:
                        break
                    extra -= 1
        except BaseException as error:
            self._recover(error)
            if not isinstance(error, Exception) and (
                threading.get_ident() != self.writer_ident
            ):
                raise
        self._room.make()
        return self._settling.take()

    def stop(self, cause: BaseException) -> list[Callbacks | None]:
        """Stop accepting appends; fail what is queued or in progress. Turn
        held (the writer actor's last resort).

        Returns:
            Done-callbacks to run after letting go of the turn.
        """
        stopped = self._stopped or self._stop_writer(cause)
        pending = [*self._in_progress, *self._queue]
        self._in_progress = []
        self._queue.clear()
        for request in pending:
            if not request.done():
                self._fail(request, stopped)
        self._settling.release()
        return self._settling.take()

    def _recover(self, error: BaseException) -> None:
        """Make the interrupted batch whole (see the module docstring)."""
        logger.error("writer interrupted: %r", error, exc_info=error)
        written, self._written = self._written, None
        writing, self._writing = self._writing, None
        batch, self._in_progress = self._in_progress, []
        if written is not None:  # COMMIT returned: publish and settle it
            self._committed(written)
        elif writing is not None:  # the write's outcome is unknown
            stopped = self._stop_writer(error)
            for request in batch:
                if not request.done():
                    self._fail(request, stopped)
        left = [request for request in batch if not request.done()]
        self._unexpected += 1
        if self._unexpected >= _UNEXPECTED_LIMIT:
            stopped = self._stopped or self._stop_writer(error)
            for request in left:
                self._fail(request, stopped)
        else:  # nothing of theirs was written: they go again, first
            self._queue.extendleft(reversed(left))
        self._settling.release()

    def checkpoint_if_idle(self) -> None:
        """Fold the WAL back when nobody waits for the writer (see
        :mod:`swarmlog.actors.wal_upkeep`). Turn held."""
        if self._closed or self._storage is None or self._stopped is not None:
            return
        self._wal.checkpoint_if_due(self._storage, busy=bool(self._queue))

    def _close_held(self) -> list[Callbacks | None]:
        """Fail what is queued; the first time, also checkpoint the WAL into
        the database file and close the connection. Later submissions
        fail. Turn held. A close the store did not announce
        (:meth:`expect_close`) stops the writer: appends then raise
        ``WriterStoppedError``.

        Returns:
            Done-callbacks to run after letting go of the turn.
        """
        if not self._close_expected and self._stopped is None:
            self._stop_writer(RuntimeError("the writer actor stopped"))
        refusal = self._stopped or _closed_error()
        while self._queue:
            self._settling.settle_error(self._queue.popleft(), refusal)
        self._settling.release()
        self._room.make(force=True)
        if not self._closed:
            self._closed = True
            storage, self._storage = self._storage, None
            if storage is not None:
                try:
                    if self._stopped is None:
                        storage.checkpoint()
                finally:
                    storage.close()
        return self._settling.take()

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
        self._settling.release()
        if self._wal.committed():
            self.checkpoint_if_idle()

    def _refusal(self) -> SwarmlogError | None:
        if self._stopped is not None:
            return self._stopped
        if self._closed or self._storage is None:
            return _closed_error()
        return None

    def _commit_round(self, requests: list[AppendRequest]) -> list[list[AppendRequest]]:
        """:meth:`_plan_and_write`; on a shared store alone or inside a
        round of the write lock (see ``SharedRounds.commit``)."""
        storage, shared = self._storage, self._shared
        if shared is None:
            return self._plan_and_write(requests) or []
        assert storage is not None  # _refusal checked it
        queue = self._queue if requests is self._in_progress else None
        plan, fail, limit = self._plan_and_write, self._fail, self._max_batch
        return shared.commit(storage, requests, plan, fail, queue, limit)

    def catch_up(self) -> None:
        """Publish what other processes committed (a shared store's
        ``CatchUp`` message). Turn held; a failed read is only logged."""
        self.catch_up_asked = False
        storage = self._storage
        if self._shared is not None and storage is not None and not self._refusal():
            self._shared.idle(storage)

    def _plan_and_write(
        self, requests: list[AppendRequest], *, solo: bool = False
    ) -> list[list[AppendRequest]] | None:
        """Plan and commit ``requests`` in one transaction.

        A refusal planned on top of requests of this round would rest on
        versions not yet committed: the round is cut there, and the refused
        request and the rest are planned again after this round commits.
        ``solo`` (no lock round): a refusal or a clash returns None.

        Returns:
            The groups to commit next, in order (empty when all were settled).
        """
        round_ = Round(self._head.position)
        committed = self._known.state
        rest: list[AppendRequest] = []
        for index, request in enumerate(requests):
            refusal = plan_request(request, round_, committed)
            if refusal is None:
                continue
            if round_.requests:
                rest = requests[index:]
                break
            if solo:  # the cache may be stale: a round settles it
                return None
            self._resolve(request, refusal)
        planned = round_.requests
        if not planned:
            return []
        after = [rest] if rest else []
        storage = self._storage
        assert storage is not None  # _refusal checked it
        self._writing = round_
        try:
            round_.placed = storage.write_events(round_.rows, len(planned))
        except RequestConflict:
            self._writing = None
            if solo:  # a clash with another process: plan again, caught up
                return None
            if len(planned) == 1:
                self._resolve(planned[0], None)
                return after
            # Some request clashed (a stored id, or the same id twice in this
            # batch): settle each on its own, in order, so only the culprit
            # fails and a retry of a stored event resolves idempotently.
            return [[request] for request in planned] + after
        except (LockTimeoutError, CommitUnknownError) as error:
            self._writing = None  # nothing written (a lock timeout), or unknown
            failure: Exception = error
            if isinstance(error, CommitUnknownError):
                failure = self._outcome_unknown(error)
            for request in planned:
                self._fail(request, failure)
            return after
        except StorageError as error:
            self._writing = None
            if len(planned) == 1:
                self._fail(planned[0], error)
                return after
            # Batch-wide failure (e.g. disk full): settle each on its own.
            return [[request] for request in planned] + after
        self._written = round_
        self._writing = None
        self._committed(round_)
        self._written = None
        return after

    def _load_aggregate(self, aggregate_id: str) -> tuple[str, int] | None:
        assert self._storage is not None
        return self._storage.aggregate(aggregate_id)

    def _committed(self, round_: Round) -> None:
        """Publish a committed round and settle it (one placed after other
        processes' commits: settled, then published after theirs).
        Idempotent (:meth:`_recover` finishes an interrupted one)."""
        shared, placed = self._shared, round_.placed
        if placed is not None and placed != round_.start:
            round_.shift(placed - round_.start)  # to where it was stored
        later = shared is not None and (placed or 0) > self._head.position
        self._known.update(round_.tentative)  # (idempotent up to the page)
        if not later:
            self._publish(round_)
        for request, value in round_.values():
            if not request.done():
                self._settling.settle(request, value)
        if later and shared is not None and not round_.published:
            if shared.placed(self._storage, round_):  # others' commits first
                self._publish(round_)
            else:  # they could not be read: the next catch-up publishes it
                round_.published = True
        self.publisher.nudge()

    def _publish(self, round_: Round) -> None:
        self._head.position = round_.position
        if not round_.published:
            round_.published = True
            by_caller = threading.get_ident() != self.writer_ident
            self._metrics.committed(len(round_.requests), len(round_.events), by_caller)
            self.publisher.page(tuple(round_.events))

    # -- settling -------------------------------------------------------------

    def _resolve(self, request: AppendRequest, error: SwarmlogError | None) -> None:
        """Settle a request refused against committed state (``error``) or
        whose write clashed (None): a retry of stored events still succeeds
        (idempotence is checked first), anything else fails."""
        assert self._storage is not None
        try:
            stored = stored_copies(self._storage, request)
        except SwarmlogError as duplicate:
            self._fail(request, duplicate)
            return
        if stored is not None:
            self._metrics.appends += 1
            self._settling.settle(request, stored[0] if request.single else stored)
            return
        if error is None:  # a version clash the cache did not foresee
            self._known.clear()
            error = StorageError("aggregate version clash; please retry")
        self._fail(request, error)

    def _fail(self, request: AppendRequest, error: BaseException) -> None:
        self._metrics.failed_appends += 1
        self._settling.settle_error(request, error)

    def _outcome_unknown(self, unknown: CommitUnknownError) -> SwarmlogError:
        """The error for a write whose COMMIT outcome is unknown. PostgreSQL:
        the next round reconnects and publishes whatever was stored."""
        storage = self._storage
        if storage is None or not storage.reconnects_after_unknown:
            return self._stop_writer(unknown)
        self._known.clear()
        msg = f"COMMIT outcome unknown ({unknown}); retry the same events"
        return CommitOutcomeUnknownError(msg)

    def _stop_writer(self, cause: BaseException) -> WriterStoppedError:
        msg = (
            f"the writer stopped accepting appends ({type(cause).__name__}: "
            f"{cause}); the outcome of the last commit may be unknown. Reopen "
            "the store to see what was stored."
        )
        self._stopped = WriterStoppedError(msg)
        logger.error(msg)
        if self._notifier is not None:
            with contextlib.suppress(Exception):  # the notifier is gone
                self._notifier.tell(Notify("error", (self._stopped,)))
        self._room.make(force=True)
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
        assert self._storage is not None
        try:
            function(self._storage)
        except CommitUnknownError as unknown:
            raise self._outcome_unknown(unknown) from unknown
