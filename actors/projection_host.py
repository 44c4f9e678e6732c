"""ProjectionHost: one store's running projections and their lifecycle.

The host owns the registry (one running projection per name) and starts,
stops, resets and finalizes projection actors; :class:`Projection` reaches
it through the :class:`~swarmlog.actors.projection.ProjectionHosting`
Protocol, never through the store. The store builds one host, attaches the
actors a projection talks to once they run, and asks the host to finalize
and stop everything at shutdown.

Threads: ``start``/``stop``/``reset`` run on the caller's thread under the
store's lifecycle lock (never inside the engine: stopping an actor waits for
it); ``finalize`` and ``stop_all`` run on the thread shutting the store down.
A projection's progress is only written while no actor of it runs (reset
clears it after the actor stopped).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pykka

from swarmlog.actors import runtime
from swarmlog.actors.messages import DeleteProjectionSnapshot
from swarmlog.actors.projection_actor import ProjectionActor
from swarmlog.actors.projection_messages import Finalize
from swarmlog.actors.runtime import in_engine_thread, stop_bounded
from swarmlog.schema.errors import (
    EngineThreadWaitError,
    ProjectionStateError,
    StoreClosedError,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from swarmlog.actors.projection import Projection, ProjectionStatus
    from swarmlog.actors.runtime import Audience, CommitHead
    from swarmlog.actors.storage import ReadStorage

__all__ = ["ProjectionHost"]

logger = logging.getLogger("swarmlog")


class ProjectionHost:
    """Runs one store's projections (see the module docstring).

    Args:
        lifecycle: The store's lifecycle lock (start/stop/reset hold it).
        require_open: Raises the store's typed error unless it is open.
        audience: Counts running projections (the committer reads it).
        head: The store's commit head.
        snapshot_every: The store's default events between snapshots.
    """

    def __init__(
        self,
        lifecycle: threading.RLock,
        require_open: Callable[[], None],
        audience: Audience,
        head: CommitHead,
        snapshot_every: int,
    ) -> None:
        self._lifecycle = lifecycle
        self._require_open = require_open
        self._audience = audience
        self._head = head
        self._snapshot_every = snapshot_every
        self._running: dict[str, Projection] = {}
        self._reader: ReadStorage | None = None
        self._writer: pykka.ActorRef[Any] | None = None
        self._dispatcher: pykka.ActorRef[Any] | None = None
        self._notifier: pykka.ActorRef[Any] | None = None

    def attach(
        self,
        reader: ReadStorage,
        writer: pykka.ActorRef[Any] | None,
        dispatcher: pykka.ActorRef[Any] | None,
        notifier: pykka.ActorRef[Any] | None,
    ) -> None:
        """Give the host the running store's parts (``initialize``'s thread;
        ``writer`` is None on a read-only store)."""
        self._reader = reader
        self._writer = writer
        self._dispatcher = dispatcher
        self._notifier = notifier

    def detach(self) -> None:
        """Forget the store's parts (after :meth:`stop_all`, at shutdown)."""
        self._reader = self._writer = self._dispatcher = self._notifier = None

    # -- what Projection calls (ProjectionHosting) ----------------------------

    def reader(self) -> ReadStorage:
        """The store's reader pool, for time-travel copies (any thread).

        Raises:
            StoreNotInitializedError: The store was never initialised.
            StoreClosedError: The store is shut down.
        """
        self._require_open()
        reader = self._reader
        if reader is None:
            msg = "the store is shut down"
            raise StoreClosedError(msg)
        return reader

    def start(self, projection: Projection) -> None:
        """Start ``projection``'s actor unless it runs (caller's thread).

        Raises:
            StoreNotInitializedError: The store is not initialised.
            ProjectionStateError: Another running projection has this name.
        """
        with self._lifecycle:
            self._require_open()
            engine = projection._engine
            if engine.actor is not None:
                return
            existing = self._running.get(projection.name)
            if existing is not None and existing is not projection:
                msg = f"a projection named {projection.name!r} is already running"
                raise ProjectionStateError(msg)
            reader = self.reader()
            engine.head = self._head
            self._audience.projections += 1  # before it subscribes
            try:
                engine.actor = ProjectionActor.start(
                    projection,
                    reader,
                    self._writer,
                    self._dispatcher,
                    self._notifier,
                    self._head,
                    self._snapshot_every,
                )
            except BaseException:
                self._audience.projections -= 1
                raise
            self._running[projection.name] = projection

    def stop(self, projection: Projection) -> None:
        """Stop ``projection``'s actor and unregister it (caller's thread).

        Raises:
            EngineThreadWaitError: Called from a handler or listener.
        """
        if in_engine_thread():
            msg = "a projection cannot be stopped or reset from a handler or listener"
            raise EngineThreadWaitError(msg)
        with self._lifecycle:
            self._stop_actor(projection)
            if self._running.get(projection.name) is projection:
                del self._running[projection.name]

    def reset(self, projection: Projection) -> None:
        """Stop it, delete its stored snapshot, empty its model and
        progress (caller's thread; no actor of it runs meanwhile).

        Raises:
            EngineThreadWaitError: Called from a handler or listener.
        """
        self.stop(projection)
        writer = self._writer
        if writer is not None:
            try:
                self._require_open()
            except Exception:
                writer = None
        if writer is not None:
            future: Future[None] = Future()
            writer.tell(DeleteProjectionSnapshot(projection.name, future))
            future.result(runtime.STOP_TIMEOUT)
        projection.reset_state()
        projection._engine.clear_progress()

    # -- what the store calls ---------------------------------------------------

    def statuses(self) -> dict[str, ProjectionStatus]:
        """Each running projection's status by name (any thread)."""
        return {n: p.get_status() for n, p in list(self._running.items())}

    def finalize(self) -> None:
        """Let every running projection apply what was committed and take a
        final snapshot; waits (bounded) for all of them (shutdown's thread)."""
        head = self._head.position
        waits = []
        for projection in list(self._running.values()):
            actor = projection._engine.actor
            if actor is None:
                continue
            future: Future[None] = Future()
            try:
                actor.tell(Finalize(head, future))
            except pykka.ActorDeadError:  # it died; nothing to snapshot
                continue
            waits.append((projection, future))
        for projection, future in waits:
            try:
                future.result(runtime.STOP_TIMEOUT)
            except Exception as error:
                logger.warning(
                    "projection %r: no final snapshot: %s", projection.name, error
                )

    def stop_all(self) -> None:
        """Stop every projection actor and empty the registry (shutdown)."""
        for projection in list(self._running.values()):
            self._stop_actor(projection)
        self._running.clear()

    def fence_after_fork(self) -> None:
        """Forget the actors in a forked child (their threads stayed in the
        parent); runs on the child's only thread."""
        for projection in list(self._running.values()):
            projection._engine.actor = None

    def _stop_actor(self, projection: Projection) -> None:
        engine = projection._engine
        actor = engine.actor
        if actor is None:
            return
        engine.actor = None
        self._audience.projections -= 1
        if actor.is_alive():
            stop_bounded(actor)
