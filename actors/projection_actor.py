"""ProjectionActor: one actor per projection, owning its read model.

On start it restores the projection's latest snapshot (when its
``state_version`` matches), subscribes to the dispatcher, then catches up
from the store in pages (reader connections, never through the writer)
until it reaches the committed head, and only then goes live. Live pages
whose events it already applied are skipped and a gap is filled from the
store, so the switch from catch-up to live can neither skip nor repeat an
event, whatever the interleaving of concurrent appends.

Every ``snapshot_every`` live events it encodes its model on its own thread
and tells the writer to store it (one-way; the acknowledgement comes back as
a :class:`ProjectionSnapshotSaved` message). Queries and waits that need a position
it has not reached are parked and answered as soon as it gets there: its
thread never blocks on anyone.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec
import pykka

from swarmlog.actors.messages import (
    DeliverPage,
    Notify,
    ProjectionSnapshotSaved,
    SaveProjectionSnapshot,
    Subscribe,
)
from swarmlog.actors.projection import DeadLetter
from swarmlog.actors.projection_messages import (
    CatchUpStep,
    Finalize,
    Rebuild,
    RebuildStep,
    RetryDeadLetters,
    RunQuery,
    WaitFor,
)
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread
from swarmlog.actors.storage import ProjectionSnapshotRecord
from swarmlog.schema.errors import ProjectionFailedError, ProjectionStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from concurrent.futures import Future

    from swarmlog.actors.projection import Projection
    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import ReadStorage
    from swarmlog.schema.envelope import Event

__all__ = ["ProjectionActor"]

logger = logging.getLogger("swarmlog.projection")

PAGE_SIZE = 1000


class _RebuildRun:
    __slots__ = ("dead_letters", "fresh", "future", "on_progress", "position")

    def __init__(
        self,
        fresh: Projection,
        future: Future[None],
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        self.fresh = fresh
        self.future = future
        self.on_progress = on_progress
        self.position = 0
        self.dead_letters: list[tuple[DeadLetter, Event[Any]]] = []


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class ProjectionActor(FastInboxActor):
    """Keeps one projection's read model live. Runs on its own thread.

    Args:
        projection: The projection whose model this actor owns.
        reader: Reader connections for catch-up and gap filling.
        writer: The writer actor (stores snapshots), None when read-only.
        dispatcher: The dispatcher to subscribe to.
        notifier: Where ``error`` notifications go.
        head: The writer's published committed head.
        snapshot_every: Default events between snapshots.
    """

    def __init__(
        self,
        projection: Projection,
        reader: ReadStorage,
        writer: pykka.ActorRef[Any] | None,
        dispatcher: pykka.ActorRef[Any] | None,
        notifier: pykka.ActorRef[Any] | None,
        head: CommitHead,
        snapshot_every: int,
    ) -> None:
        super().__init__()
        self._projection = projection
        self._engine = projection._engine
        self._table = type(projection)._handler_table
        self._reader = reader
        self._writer = writer
        self._dispatcher = dispatcher
        self._notifier = notifier
        self._head = head
        every = self._engine.options.snapshot_every
        self._snapshot_every = every if every is not None else snapshot_every
        self._snapshot_requested = 0
        self._waiters: list[tuple[int, int, Any]] = []
        self._sequence = itertools.count()
        self._finalizing: list[tuple[int, Future[None]]] = []
        self._rebuild: _RebuildRun | None = None

    # -- lifecycle --------------------------------------------------------------

    def on_start(self) -> None:
        """Restore the snapshot, subscribe, start catching up."""
        mark_engine_thread()
        engine = self._engine
        engine.thread = threading.current_thread()
        engine.head = self._head
        engine.progress.failure = None
        self._restore_snapshot()
        engine.progress.status = "catching-up"
        if self._dispatcher is not None:
            self._dispatcher.tell(Subscribe(self.actor_ref))
        self.actor_ref.tell(CatchUpStep())

    def _restore_snapshot(self) -> None:
        projection = self._projection
        engine = self._engine
        record = self._reader.load_projection_snapshot(projection.name)
        if record is None or record.state_version != projection.state_version:
            return
        try:
            state = msgspec.msgpack.decode(record.state, type=projection.state_type)
            projection.reset_state()
            projection.restore_state(state)
        except BaseException:  # user code: a guard for everything
            logger.exception(
                "projection %r: cannot restore its snapshot; rebuilding",
                projection.name,
            )
            projection.reset_state()
            return
        engine.progress.position = record.position
        engine.progress.snapshot_position = record.position
        self._snapshot_requested = record.position

    def on_stop(self) -> None:
        """Fail whatever still waits; mark the projection stopped."""
        engine = self._engine
        if engine.progress.status != "failed":
            engine.progress.status = "stopped"
        error = ProjectionStateError(f"projection {self._projection.name!r} stopped")
        for _, _, message in self._waiters:
            if not message.future.done():
                message.future.set_exception(error)
        self._waiters.clear()
        for _, future in self._finalizing:
            if not future.done():
                future.set_result(None)
        if self._rebuild is not None and not self._rebuild.future.done():
            self._rebuild.future.set_exception(error)
        engine.thread = None

    def on_receive(self, message: Any) -> Any:
        """Handle one message (this actor's thread).

        A failure outside a handler (a damaged stored row met while catching
        up, a bug) puts the projection in ``failed`` at once, so queries get
        a typed error instead of waiting for an actor that died.
        """
        try:
            self._handle(message)
        except BaseException as error:  # nothing leaves this actor
            position = getattr(error, "position", self._engine.progress.position + 1)
            logger.exception("projection %r failed", self._projection.name)
            self._stop_at(position, error)
            future = getattr(message, "future", None)
            if future is not None and not future.done():
                future.set_exception(self._engine.progress.failure)
        return None

    def _stop_at(
        self, position: int, error: BaseException, *, applied_before: bool = False
    ) -> None:
        """Enter ``failed`` at ``position`` (the event it could not apply);
        ``applied_before``: every event before it was applied."""
        engine = self._engine
        if applied_before:
            engine.progress.position = position - 1
        else:
            engine.progress.position = min(engine.progress.position, position - 1)
        engine.progress.failure = ProjectionFailedError(
            self._projection.name, position, _error_text(error)
        )
        engine.progress.status = "failed"
        self._fail_waiters(engine.progress.failure)
        if self._rebuild is not None:
            run, self._rebuild = self._rebuild, None
            if not run.future.done():
                run.future.set_exception(engine.progress.failure)
        if self._notifier is not None:
            self._notifier.tell(Notify("error", (engine.progress.failure,)))

    def _handle(self, message: Any) -> None:
        if isinstance(message, DeliverPage):
            self._deliver(message.events)
        elif isinstance(message, RunQuery | WaitFor | Finalize):
            self._park(message)
        elif isinstance(message, CatchUpStep):
            self._catch_up_step()
        elif isinstance(message, ProjectionSnapshotSaved):
            self._snapshot_saved(message)
        elif isinstance(message, Rebuild):
            self._rebuild_start(message)
        elif isinstance(message, RebuildStep):
            self._rebuild_step()
        elif isinstance(message, RetryDeadLetters):
            message.future.set_result(self._retry_dead_letters())

    # -- applying events -----------------------------------------------------------

    def _catch_up_step(self) -> None:
        engine = self._engine
        if engine.progress.status != "catching-up":
            return
        page = self._reader.read_page(engine.progress.position, PAGE_SIZE)
        if page and not self._apply_page(page):
            return
        if len(page) == PAGE_SIZE or engine.progress.position < self._head.position:
            self.actor_ref.tell(CatchUpStep())
            return
        engine.progress.status = "live"
        self._snapshot_if_due()
        self._answer_waiters()

    def _deliver(self, events: tuple[Event[Any], ...]) -> None:
        engine = self._engine
        if (
            engine.progress.status != "live"
            or events[-1].position <= engine.progress.position
        ):
            return
        first = events[0].position
        while first > engine.progress.position + 1:  # a gap: fill it from the store
            gap = self._reader.read_page(
                engine.progress.position, PAGE_SIZE, upto=first - 1
            )
            if not gap or not self._apply_page(gap):
                break
        if engine.progress.status == "live" and first <= engine.progress.position + 1:
            skip = engine.progress.position - first + 1
            fresh = events[skip:] if skip > 0 else events
            if fresh:
                self._apply_page(fresh)
        if engine.progress.status == "live":
            self._snapshot_if_due()
        self._answer_waiters()

    def _apply_page(self, page: Sequence[Event[Any]]) -> bool:
        """Apply contiguous events; False if the projection stopped."""
        table = self._table
        projection = self._projection
        engine = self._engine
        for event in page:
            handlers = table.get(event.type)
            if handlers is None:
                continue
            try:
                for handler in handlers:
                    handler(projection, event)
            except BaseException as error:  # user code: a guard for everything
                if not self._apply_failure_policy(event, handlers, error):
                    return False
        engine.progress.position = page[-1].position
        engine.progress.events_handled += len(page)
        return True

    def _apply_failure_policy(
        self,
        event: Event[Any],
        handlers: tuple[Callable[[Any, Event[Any]], None], ...],
        error: BaseException,
    ) -> bool:
        """Apply the failure policy; True to go on, False if stopped."""
        engine = self._engine
        projection = self._projection
        retries = (
            0 if engine.options.on_failure == "skip" else engine.options.max_retries
        )
        delay = engine.options.retry_backoff
        for _ in range(retries):
            time.sleep(delay)  # only this projection's own thread waits
            delay *= 2
            try:
                for handler in handlers:
                    handler(projection, event)
            except BaseException as again:  # user code: a guard for everything
                error = again
            else:
                return True
        logger.error(
            "projection %r failed on %s at position %d: %s",
            projection.name,
            event.type,
            event.position,
            _error_text(error),
        )
        if engine.options.on_failure == "retry-then-stop":
            self._stop_at(event.position, error, applied_before=True)
            return False
        letter = DeadLetter(
            projection.name, event.position, event.type, _error_text(error)
        )
        engine.progress.dead_letters = (*engine.progress.dead_letters, (letter, event))
        return True

    # -- waiting -------------------------------------------------------------------

    def _park(self, message: RunQuery | WaitFor | Finalize) -> None:
        engine = self._engine
        if engine.progress.failure is not None and not isinstance(message, Finalize):
            message.future.set_exception(engine.progress.failure)
            return
        if engine.progress.position >= message.position or (
            isinstance(message, Finalize) and engine.progress.failure is not None
        ):
            self._answer(message)
            return
        heapq.heappush(self._waiters, (message.position, next(self._sequence), message))

    def _answer_waiters(self) -> None:
        waiters = self._waiters
        position = self._engine.progress.position
        while waiters and waiters[0][0] <= position:
            self._answer(heapq.heappop(waiters)[2])

    def _answer(self, message: RunQuery | WaitFor | Finalize) -> None:
        if isinstance(message, RunQuery):
            try:
                result = message.method(*message.args, **message.kwargs)
            except BaseException as error:  # user code: a guard for everything
                message.future.set_exception(error)
            else:
                message.future.set_result(result)
        elif isinstance(message, WaitFor):
            message.future.set_result(None)
        else:
            self._finalize(message)

    def _fail_waiters(self, error: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for _, _, message in waiters:
            if isinstance(message, Finalize):
                self._finalize(message)
            else:
                message.future.set_exception(error)

    # -- snapshots -------------------------------------------------------------------

    def _snapshot_if_due(self) -> None:
        """Snapshot every ``snapshot_every`` events: after live pages and
        once at the end of catch-up, never in the middle of it."""
        if (
            self._engine.progress.position - self._snapshot_requested
            >= self._snapshot_every
        ):
            self._snapshot()

    def _snapshot(self) -> bool:
        """Hand the model to the writer; True if a snapshot was sent."""
        engine = self._engine
        projection = self._projection
        if self._writer is None or engine.progress.status == "failed":
            return False
        try:
            state = projection.snapshot_state()
            if state is None:
                return False
            blob = msgspec.msgpack.encode(state)
        except BaseException:  # user code: a guard for everything
            logger.exception("projection %r: snapshot failed", projection.name)
            return False
        record = ProjectionSnapshotRecord(
            engine.progress.position, projection.state_version, blob
        )
        self._snapshot_requested = engine.progress.position
        try:
            self._writer.tell(
                SaveProjectionSnapshot(projection.name, record, self.actor_ref)
            )
        except pykka.ActorDeadError:
            return False
        return True

    def _snapshot_saved(self, message: ProjectionSnapshotSaved) -> None:
        if message.error is None:
            self._engine.progress.snapshot_position = max(
                self._engine.progress.snapshot_position, message.position
            )
        else:
            logger.warning(
                "projection %r: snapshot at %d not stored: %s",
                self._projection.name,
                message.position,
                message.error,
            )
        still = []
        for position, future in self._finalizing:
            if message.position >= position:
                future.set_result(None)
            else:
                still.append((position, future))
        self._finalizing = still

    def _finalize(self, message: Finalize) -> None:
        engine = self._engine
        if (
            engine.progress.position > engine.progress.snapshot_position
            and self._snapshot()
        ):
            self._finalizing.append((engine.progress.position, message.future))
        else:
            message.future.set_result(None)

    # -- rebuild -----------------------------------------------------------------------

    def _rebuild_start(self, message: Rebuild) -> None:
        if self._rebuild is not None:
            error = ProjectionStateError("a rebuild is already running")
            message.future.set_exception(error)
            return
        fresh = self._projection._fresh_copy()
        self._rebuild = _RebuildRun(fresh, message.future, message.on_progress)
        self.actor_ref.tell(RebuildStep())

    def _rebuild_step(self) -> None:
        run = self._rebuild
        if run is None:
            return
        target = self._head.position
        page = self._reader.read_page(run.position, PAGE_SIZE, upto=target)
        try:
            for event in page:
                self._apply_to_fresh(run, event)
        except ProjectionFailedError as failure:
            self._rebuild = None
            run.future.set_exception(failure)
            return
        if page:
            run.position = page[-1].position
        if run.on_progress is not None:
            try:
                run.on_progress(run.position, target)
            except BaseException:  # user code: a guard for everything
                logger.exception("rebuild progress callback raised")
        if page and run.position < target:
            self.actor_ref.tell(RebuildStep())
            return
        self._swap(run)

    def _apply_to_fresh(self, run: _RebuildRun, event: Event[Any]) -> None:
        handlers = self._table.get(event.type)
        if handlers is None:
            return
        try:
            for handler in handlers:
                handler(run.fresh, event)
        except BaseException as error:  # user code: a guard for everything
            name = self._projection.name
            if self._engine.options.on_failure == "retry-then-stop":
                raise ProjectionFailedError(
                    name, event.position, _error_text(error)
                ) from error
            letter = DeadLetter(name, event.position, event.type, _error_text(error))
            run.dead_letters.append((letter, event))

    def _swap(self, run: _RebuildRun) -> None:
        engine = self._engine
        self._projection._adopt(run.fresh)
        engine.progress.position = run.position
        engine.progress.dead_letters = tuple(run.dead_letters)
        engine.progress.failure = None
        engine.progress.status = "live"
        self._rebuild = None
        self._snapshot_requested = 0
        self._snapshot()
        run.future.set_result(None)
        self._answer_waiters()

    def _retry_dead_letters(self) -> int:
        fixed = 0
        remaining = []
        for letter, event in self._engine.progress.dead_letters:
            try:
                for handler in self._table.get(event.type, ()):
                    handler(self._projection, event)
            except BaseException as error:  # user code: a guard for everything
                remaining.append((letter, event))
                logger.warning("dead letter %d still fails: %s", letter.position, error)
            else:
                fixed += 1
        self._engine.progress.dead_letters = tuple(remaining)
        return fixed
