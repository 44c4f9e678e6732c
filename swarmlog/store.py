"""EventStore: the thread-safe front door (a facade).

``EventStore`` holds the store's lifecycle (new -> open -> closing ->
closed, or forked) and hands each job to its room:

- appends: :class:`~swarmlog.submit.AppendGate` encodes on the caller's
  thread and queues on the :class:`~swarmlog.actors.committer.Committer`
  (committed by the :class:`~swarmlog.actors.writer.WriterActor` with group
  commit, or by a lone caller itself when the writer is idle);
- reads: :class:`~swarmlog.reads.EventReads`,
  :class:`~swarmlog.why.WhyQueries`, :class:`~swarmlog.snapshots.SnapshotMethods`
  (pooled reader connections, never queued behind the writer), ``aio``;
- actors and resources: :class:`~swarmlog.wiring.StoreWiring` starts and
  stops writer, dispatcher, notifier, checkpointer and follower in order;
- projections: :class:`~swarmlog.actors.projection_host.ProjectionHost`;
- argument checks: :mod:`swarmlog.validation`; forks:
  :class:`~swarmlog.forking.ForkMethods`.

Shutdown order: stop accepting appends -> drain the writer -> projections
apply what was committed and take a final snapshot -> the writer stores
those -> WAL checkpoint -> close. Nothing committed is lost by a shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Self

import msgspec

from swarmlog.actors import runtime
from swarmlog.actors.append_request import AppendRequest
from swarmlog.actors.messages import Notify
from swarmlog.actors.notifier import Listeners
from swarmlog.actors.projection_host import ProjectionHost
from swarmlog.actors.reply import callback_errors
from swarmlog.actors.runtime import (
    Audience,
    CommitHead,
    WriterMetrics,
    in_engine_thread,
)
from swarmlog.aio import AsyncStoreReads
from swarmlog.config import EventStoreConfig
from swarmlog.forking import ForkMethods
from swarmlog.futures import AppendFuture
from swarmlog.lifecycle import ForkedStoreError
from swarmlog.lifecycle import register as register_open
from swarmlog.lifecycle import unregister as unregister_open
from swarmlog.reads import EventReads
from swarmlog.schema.envelope import ANY, Event, ExpectedVersion
from swarmlog.schema.errors import (
    EngineThreadWaitError,
    ReadOnlyStoreError,
    StoreClosedError,
    StoreNotInitializedError,
)
from swarmlog.schema.timeutil import from_micros
from swarmlog.snapshots import SnapshotMethods
from swarmlog.stats import EventStoreStats, ForkOrigin
from swarmlog.submit import AppendGate
from swarmlog.subscribing import SubscriptionMethods
from swarmlog.subscriptions import SubscriptionManager
from swarmlog.why import WhyQueries
from swarmlog.wiring import StoreWiring

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

    from swarmlog.actors.committer import Committer
    from swarmlog.actors.notifier import ListenerHandle
    from swarmlog.actors.storage import ReadStorage
    from swarmlog.effects import EffectMode, Effects

__all__ = ["EventStore"]

logger = logging.getLogger("swarmlog")

_NEW, _OPEN, _CLOSING, _CLOSED = "new", "open", "closing", "closed"
_FORKED = "forked"  # this process is a fork of the one that opened the store
_DRAIN_LOOK = 0.5  # seconds between wake-ups while shutdown drains (a bound)


class EventStore(
    EventReads, WhyQueries, SnapshotMethods, ForkMethods, SubscriptionMethods
):
    """An embedded, actor-based event store on SQLite.

    Safe from any thread. Use it as a context manager, or call
    :meth:`initialize` and :meth:`shutdown` yourself::

        with EventStore("swarm.db") as store:
            stored = store.append(create_agent_spawned_event("a1", "coder", "core"))

    Args:
        database_path: The SQLite file, ``":memory:"`` (default), or an
            :class:`EventStoreConfig` holding every option.
        **options: The other :class:`EventStoreConfig` fields (``verbose``,
            ``auto_persist_interval``, ``snapshot_threshold``,
            ``synchronous``, ``read_only``, ``pragmas``, ...).

    Raises:
        InvalidConfigError: An option is out of range.
    """

    def __init__(
        self,
        database_path: str | os.PathLike[str] | EventStoreConfig = ":memory:",
        **options: Any,
    ) -> None:
        if isinstance(database_path, EventStoreConfig):
            config = (
                msgspec.structs.replace(database_path, **options)
                if options
                else database_path
            )
        else:
            config = EventStoreConfig(database_path=os.fspath(database_path), **options)
        self.config = config
        self._state = _NEW
        self._lifecycle = threading.RLock()
        self._listeners = Listeners()
        self._audience = Audience(self._listeners)
        self._head = CommitHead()
        self._metrics = WriterMetrics()
        self._host = ProjectionHost(
            self._lifecycle,
            self._require_open,
            self._audience,
            self._head,
            config.projection_snapshot_every,
        )
        self._pid = 0  # the process that opened it
        self._appends = AppendGate(
            config, self._require_writable, lambda: self._state == _OPEN
        )
        self._subscriptions = SubscriptionManager(
            self._reader_checked, self._subscription_write, self._require_writable
        )
        self._wiring = StoreWiring(
            config,
            self._listeners,
            self._audience,
            self._head,
            self._metrics,
            on_settled=self._appends.in_flight.release,
            is_open=lambda: self._state == _OPEN,
            persisted=self._persisted,
            on_error=lambda error: self._notify("error", (error,)),
            on_commit=self._subscriptions.hub.commit_seen,
        )
        self._log: Callable[..., None] = logger.info if config.verbose else _quiet

    # -- lifecycle ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called (or this process is a fork
        of the one that opened the store)."""
        return self._state in (_CLOSING, _CLOSED, _FORKED)

    @property
    def path(self) -> str:
        """The database file in use (a temporary file for ``:memory:``)."""
        return self._wiring.path

    def initialize(self) -> Self:
        """Open the database and start the actors. Idempotent.

        Returns:
            The store itself.

        Raises:
            StoreClosedError: The store was shut down.
            StoreLockedError: Another writing store holds the file.
            StoreOpenError: The path cannot be opened.
            IncompatibleStoreError: Not a swarmlog store, or a newer format.
            ForkedStoreError: The store was opened before this process forked.
        """
        self._check_not_forked()
        with self._lifecycle:
            if self._state == _OPEN:
                return self
            if self._state != _NEW:
                msg = "the store was shut down; create a new EventStore"
                raise StoreClosedError(msg)
            try:
                wiring = self._wiring
                wiring.open()
                assert wiring.reader is not None
                self._host.attach(
                    wiring.reader, wiring.writer, wiring.dispatcher, wiring.notifier
                )
                if self._state != _NEW:  # a signal handler's shutdown() ran
                    msg = "the store was shut down while it opened"
                    raise StoreClosedError(msg)
            except BaseException:
                self._close_resources()
                raise
            self._state = _OPEN
            self._pid = os.getpid()
            register_open(self)  # shut down at exit, fenced in a forked child
        self._log(
            "swarmlog: opened %s (head %d)", self._wiring.path, self._head.position
        )
        self._notify("initialized", ())
        return self

    def __enter__(self) -> Self:
        return self.initialize()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Drain pending appends, snapshot projections, checkpoint, close.

        Safe to call twice (a concurrent call returns once the store is
        closed), and before ``initialize()``.

        Raises:
            EngineThreadWaitError: Called from a handler or a listener (the
                engine would wait for itself); the store stays open.

        In a forked child of the process that opened the store, this does
        nothing (the parent owns the file, its threads and its lock).
        """
        if self._state == _FORKED:
            return
        if in_engine_thread():
            msg = "shutdown() cannot be called from a handler or listener"
            raise EngineThreadWaitError(msg)
        with self._lifecycle:  # held throughout: a second caller waits
            if self._state != _OPEN:
                # Before initialize(), or re-entered on this thread by a
                # signal handler while initialize() or shutdown() runs
                # beneath it: that outer call finishes (or fails) the job.
                if self._state == _NEW:
                    self._state = _CLOSED
                return
            self._state = _CLOSING
            try:
                self._subscriptions.shutdown()  # bounded; before the writer drains
                self._drain_appends()
                self._host.finalize()
                self._wiring.flush_writer()
                self._notify("shutdown", ())
            finally:
                self._close_resources()
                self._state = _CLOSED
                unregister_open(self)
        self._log(
            "swarmlog: closed %s (head %d)", self._wiring.path, self._head.position
        )

    def _shutdown_at_exit(self) -> None:
        """The exit hook's shutdown (main thread, at interpreter exit)."""
        self.shutdown()

    def _fence_after_fork(self) -> None:
        """Refuse every call in a forked child (its only thread, at fork).

        The parent's connections, actors and temporary folder are never
        touched; the inherited lock descriptor is closed without unlocking.
        """
        self._state = _FORKED
        self._lifecycle = threading.RLock()  # a parent thread may have held it
        self._wiring.fence_after_fork()
        self._host.fence_after_fork()
        self._subscriptions.hub.abandon()

    def _check_not_forked(self) -> None:
        if self._state == _FORKED:
            raise ForkedStoreError(self._wiring.path, self._pid)

    def _drain_appends(self) -> None:
        # The state is no longer open, so appends that take a slot from now
        # on give it back and raise; once nothing is in flight, no append is
        # between its state check and its message to the writer. The writer
        # is woken on each look: an append interrupted between queueing and
        # waking it (a signal on its thread) must not hold shutdown up.
        # A signal handler's shutdown() does not wait for the appends of
        # its own thread that are suspended beneath it before queueing.
        allowance = self._appends.unqueued_here()
        deadline = time.monotonic() + runtime.STOP_TIMEOUT
        while time.monotonic() < deadline:
            self._wiring.wake_writer()
            if self._appends.in_flight.wait_idle(_DRAIN_LOOK, allowance=allowance):
                break
        self._wiring.flush_writer()

    def _close_resources(self) -> None:
        self._host.stop_all()
        self._host.detach()
        self._wiring.close()

    def _require_open(self) -> None:
        state = self._state
        if state == _OPEN:
            return
        if state == _NEW:
            msg = "call initialize() (or use `with EventStore(...)`) first"
            raise StoreNotInitializedError(msg)
        self._check_not_forked()
        msg = "the store is shut down"
        raise StoreClosedError(msg)

    def _reader_checked(self) -> ReadStorage:
        self._require_open()
        reader = self._wiring.reader
        if reader is None:
            msg = "the store is shut down"
            raise StoreClosedError(msg)
        return reader

    # -- appending ----------------------------------------------------------------

    def append(
        self, event: Event[Any], *, expected_version: ExpectedVersion = ANY
    ) -> Event[Any]:
        """Append one event to its aggregate.

        Safe from any thread; returns once the event is committed (durable
        by the store's ``synchronous`` level). The caller's event is not
        changed.

        Args:
            event: The event to store.
            expected_version: ``ANY``, ``NO_STREAM``, ``STREAM_EXISTS`` or
                the aggregate's current version (0 = no stream).

        Returns:
            The stored event, with ``version`` and ``position`` set. If an
            event with the same id and content is already stored (a retry),
            that stored event.

        Raises:
            ConcurrencyError: The aggregate is not at ``expected_version``.
            DuplicateEventError: The id is stored with different content.
            UnknownEventTypeError: The event type is not registered.
            InvalidEventError: The event is malformed.
            StorageFullError: The disk is full (nothing was stored).
            WriterStoppedError: The writer stopped after an unknown commit.
        """
        request = AppendRequest(
            (self._appends.prepare(event),), expected_version, single=True
        )
        self._appends.submit(request, lead=True)
        stored: Event[Any] = request.result()
        return stored

    def append_many(
        self,
        events: Iterable[Event[Any]],
        *,
        expected_version: ExpectedVersion | Mapping[str, ExpectedVersion] = ANY,
    ) -> list[Event[Any]]:
        """Append several events, all or nothing, in one transaction.

        Events may span aggregates; ``expected_version`` is then one value
        for every aggregate, or a mapping aggregate_id -> expected version
        (aggregates not in it: ``ANY``). Raises like :meth:`append`.

        Returns:
            The stored events, in the order given.
        """
        prepared = self._appends.prepare_batch(events)
        if not prepared:
            self._require_writable()
            return []
        request = AppendRequest(prepared, expected_version)
        self._appends.submit(request, lead=True)
        stored: list[Event[Any]] = request.result()
        return stored

    def append_async(
        self, event: Event[Any], *, expected_version: ExpectedVersion = ANY
    ) -> AppendFuture[Event[Any]]:
        """Start an append and return at once with its future.

        Validation errors raise here; storage outcomes arrive through the
        future (``future.get(timeout)`` or ``await future``). Back-pressure:
        at ``max_in_flight`` appends in flight this blocks until one
        settles, and while a whole batch (``max_batch`` appends) waits for
        the writer it blocks until the writer takes them (one transaction,
        a few ms): a producer that keeps the GIL busy would otherwise slow
        the writer down.
        """
        future: AppendFuture[Event[Any]] = AppendFuture(
            (self._appends.prepare(event),), expected_version, single=True
        )
        self._appends.submit(future)
        return future

    def append_many_async(
        self,
        events: Iterable[Event[Any]],
        *,
        expected_version: ExpectedVersion | Mapping[str, ExpectedVersion] = ANY,
    ) -> AppendFuture[list[Event[Any]]]:
        """:meth:`append_many` without waiting; returns its future."""
        prepared = self._appends.prepare_batch(events)
        if not prepared:
            self._require_writable()
            done: AppendFuture[list[Event[Any]]] = AppendFuture(prepared, ANY)
            done.set_result([])
            return done
        future: AppendFuture[list[Event[Any]]] = AppendFuture(
            prepared, expected_version
        )
        self._appends.submit(future)
        return future

    def _require_writable(self) -> Committer:
        self._require_open()
        committer = self._wiring.committer
        if committer is None or self._wiring.writer is None:
            if self.config.read_only:
                msg = "the store was opened read-only"
                raise ReadOnlyStoreError(msg)
            msg = "the store is shut down"
            raise StoreClosedError(msg)
        return committer

    @property
    def head_position(self) -> int:
        """The highest committed position (as published by the writer; on a
        read-only store, as found in the file now)."""
        self._check_not_forked()
        if self._wiring.follower is not None:
            self._wiring.follower.poll()
        return self._head.position

    @property
    def projection_host(self) -> ProjectionHost:
        """The host that runs this store's projections (the seam
        :class:`~swarmlog.Projection` uses; not for application code)."""
        return self._host

    @property
    def aio(self) -> AsyncStoreReads:
        """Awaitable forms of the reads (``await store.aio.get_events(...)``,
        ``async for event in store.aio.replay()``); see :mod:`swarmlog.aio`."""
        return AsyncStoreReads(self)

    def effects(
        self,
        run_id: str,
        mode: EffectMode = "record",
        *,
        clock: Callable[[], datetime] | None = None,
        source: str = "swarm",
    ) -> Effects:
        """Recorded effects of the run ``run_id`` (see :class:`Effects`):
        ``"record"``, ``"replay"`` or ``"auto"``; ``clock`` and ``source``
        stamp the recorded events. Safe from any thread.

        Raises:
            InvalidConfigError: A bad ``run_id`` or ``mode``.
        """
        from swarmlog.effects import Effects

        return Effects(self, run_id, mode=mode, clock=clock, source=source)

    # -- stats, listeners, persistence ----------------------------------------------

    def get_stats(self) -> EventStoreStats:
        """Counts, sizes, writer metrics and projection statuses."""
        base = self._reader_checked().stats()
        metrics = self._metrics
        lock_waits, lock_wait_max = self._wiring.lock_waits()
        return EventStoreStats(
            total_events=base.total_events,
            events_by_type=base.events_by_type,
            events_by_aggregate=base.events_by_aggregate,
            oldest_event=base.oldest_event,
            newest_event=base.newest_event,
            snapshot_count=base.snapshot_count,
            head_position=base.head_position,
            database_size_bytes=base.database_size_bytes,
            appends=metrics.appends,
            transactions=metrics.transactions,
            caller_transactions=metrics.caller_transactions,
            mean_batch_size=metrics.mean_batch_size,
            failed_appends=metrics.failed_appends,
            writer_stopped=self._wiring.writer_stopped(),
            callback_errors=callback_errors(),
            appends_in_flight=self._appends.in_flight.count,
            projections=self._host.statuses(),
            listener_errors=self._listeners.errors,
            lineage=tuple(
                ForkOrigin(
                    source=r.source,
                    position=r.position,
                    forked_at=from_micros(r.forked_at),
                )
                for r in base.lineage
            ),
            subscriptions=self._subscriptions.statuses(base.head_position),
            lock_waits=lock_waits,
            lock_wait_max=lock_wait_max,
        )

    def on(self, name: str, callback: Callable[..., Any]) -> ListenerHandle:
        """Call ``callback`` on ``name`` notifications (allowed before
        ``initialize()``).

        Names: ``event:appended`` (the stored Event), ``snapshot:recommended``
        (``{"aggregate_id", "version"}``), ``snapshot:saved`` (the Snapshot),
        ``persisted`` (``{"size", "path"}``), ``error`` (the exception),
        ``initialized`` and ``shutdown`` (no argument). Callbacks run on the
        notifier thread in commit order; a raising one is logged.

        Returns:
            A handle whose ``cancel()`` removes the listener.
        """
        return self._listeners.add(name, callback)

    def persist(self) -> None:
        """Checkpoint the WAL into the database file now.

        Appends are durable when they return whatever this does; it bounds
        the WAL and makes the main file complete on its own.
        """
        self._require_writable()
        assert self._wiring.checkpointer is not None
        self._wiring.checkpointer.persist()

    def _persisted(self, wal_size: int) -> None:
        size = (
            os.path.getsize(self._wiring.path)
            if os.path.exists(self._wiring.path)
            else 0
        )
        self._log("swarmlog: checkpointed %d WAL bytes", wal_size)
        self._notify("persisted", ({"size": size, "path": self._wiring.path},))

    def _notify(self, name: str, args: tuple[Any, ...]) -> None:
        notifier = self._wiring.notifier
        if notifier is not None and self._listeners.get(name):
            try:
                notifier.tell(Notify(name, args))
            except Exception:
                return


def _quiet(*_: Any) -> None:
    return None
