"""WriterActor: the thread that owns the writing connection and commits.

All writes go through one :class:`~swarmlog.actors.committer.Committer`,
serialised by its turn. This actor owns the connection's life: ``on_start``
opens it (an error there reaches ``EventStore.initialize()`` through the
``started`` future) and ``on_stop`` fails what is queued, checkpoints the WAL
and closes it. It commits every append (a whole queue-depth batch per
transaction) and stores aggregate and projection snapshots. On a shared
store it also publishes what other processes committed when told
:class:`~swarmlog.actors.catch_up.CatchUp`.

Nothing raised here may escape to pykka: an exception escaping
``on_receive`` would stop the actor, and a ``BaseException`` would make
pykka stop every actor in the process. So each message is handled under a
guard; what the committer cannot contain stops the writer (appends then
raise ``WriterStoppedError``) but never the thread.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import pykka

from swarmlog.actors.catch_up import CatchUp
from swarmlog.actors.messages import (
    DeleteProjectionSnapshot,
    Flush,
    ProjectionSnapshotSaved,
    RunWrite,
    SaveProjectionSnapshot,
    SaveSnapshot,
    Wake,
)
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread
from swarmlog.actors.settling import run_callbacks
from swarmlog.schema.errors import StoreClosedError, SwarmlogError

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from swarmlog.actors.committer import Committer
    from swarmlog.actors.reply import Callbacks
    from swarmlog.actors.storage import WriteStorage

__all__ = ["WriterActor"]

logger = logging.getLogger("swarmlog.writer")


class WriterActor(FastInboxActor):
    """Commits queued appends and stores aggregate and projection snapshots.

    Runs on its own thread; takes the committer's turn for each message.

    Args:
        committer: The append queue and writing connection (opened in
            ``on_start``, closed in ``on_stop``).
        started: Settled once ``on_start`` opened the connection (or with
            the error that stopped it).
    """

    def __init__(self, committer: Committer, started: Future[None]) -> None:
        super().__init__()
        self._committer = committer
        self._started = started

    def on_start(self) -> None:
        """Mark the thread, open the connection, publish the stored head."""
        mark_engine_thread()
        try:
            with self._committer.turn:
                self._committer.open()
        except BaseException as error:  # the store's initialize() raises it
            self._started.set_exception(error)
            self.stop()
            return
        self._started.set_result(None)
        self._serve_queue()  # appends queued while the connection opened

    def on_stop(self) -> None:
        """Fail anything still queued or awaited, checkpoint the WAL into the
        database file and close."""
        try:
            self._committer.close()
        finally:
            committer = self._committer
            committer.tracked.fail(
                committer.stopped
                or StoreClosedError("the store shut down before this write")
            )

    def on_receive(self, message: Any) -> Any:
        """Handle one message, then commit whatever is queued (this
        actor's thread). Never raises."""
        committer = self._committer
        try:
            with committer.turn:
                later = self._handle(message)
            run_callbacks(later)
            self._serve_queue()
        except BaseException as error:  # contain it: see the module docstring
            logger.exception("writer failed unexpectedly")
            with contextlib.suppress(BaseException):
                with committer.turn:
                    later = committer.stop(error)
                run_callbacks(later)
        return None

    def _serve_queue(self) -> None:
        """Commit until the queue is empty after letting go of the turn:
        whoever queued while the turn was taken relies on its holder."""
        committer = self._committer
        committer.run_handed_off()
        while committer.has_work():
            with committer.turn:
                later = committer.commit_queued()
                committer.checkpoint_if_idle()
            run_callbacks(later)
            committer.run_handed_off()

    def _handle(self, message: Any) -> list[Callbacks | None]:
        committer = self._committer
        if isinstance(message, Wake):
            committer.wakes_taken += 1  # before looking at the queue
            later = committer.commit_queued()
            committer.checkpoint_if_idle()
            return later
        if isinstance(message, CatchUp):  # a shared store: others committed
            committer.catch_up()
            return committer.commit_queued()
        if isinstance(message, Flush):
            later = committer.commit_queued()
            _settle(message.future, None)
            return later
        if isinstance(message, SaveProjectionSnapshot):
            error: BaseException | None = None
            try:
                name, record = message.name, message.record
                committer.write(
                    lambda storage: storage.save_projection_snapshot(name, record)
                )
            except BaseException as failure:
                error = _reported(failure)
            if message.reply_to is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    message.reply_to.tell(
                        ProjectionSnapshotSaved(message.record.position, error)
                    )
        elif isinstance(message, SaveSnapshot | DeleteProjectionSnapshot | RunWrite):
            try:
                committer.write(_write_of(message))
            except BaseException as failure:
                _settle(message.future, _reported(failure))
            else:
                _settle(message.future, None)
        return []


def _write_of(
    message: SaveSnapshot | DeleteProjectionSnapshot | RunWrite,
) -> Callable[[WriteStorage], None]:
    if isinstance(message, RunWrite):
        return message.function
    if isinstance(message, SaveSnapshot):
        record = message.record
        return lambda storage: storage.save_snapshot(record)
    name = message.name
    return lambda storage: storage.delete_projection_snapshot(name)


def _settle(future: Future[None], error: BaseException | None) -> None:
    """Settle a reply future unless it already is (failed at a stop)."""
    if future.done():
        return
    with contextlib.suppress(Exception):  # settled meanwhile
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _reported(failure: BaseException) -> BaseException:
    """A write's failure as its requester sees it (bugs are logged)."""
    if not isinstance(failure, SwarmlogError):
        logger.exception("writer failed unexpectedly", exc_info=failure)
    return failure
