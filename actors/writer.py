"""WriterActor: the thread that owns the writing connection's life and
commits whatever nobody else commits.

All writes go through one :class:`~swarmlog.actors.committer.Committer`,
serialised by its turn. This actor opens that turn's life (``on_start``
publishes the stored head) and ends it (``on_stop`` fails what is queued,
checkpoints and closes), stores snapshots and projection checkpoints, and is
the committer of last resort: appends that their caller does not commit
itself (``append_async``, and every append queued while the turn was taken)
are committed here, a whole queue-depth batch per transaction.

Why a caller may commit at all: a round trip to another thread costs two
thread wake-ups, about as much as a whole ``synchronous=NORMAL`` commit on
this machine kind; a lone caller appending to an idle store therefore
commits on its own thread (see ``Committer.submit``). The actor remains the
one writer: it owns the connection, and nothing writes without the turn.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

import pykka

from swarmlog.actors.committer import run_callbacks
from swarmlog.actors.messages import (
    CheckpointSaved,
    DeleteCheckpoint,
    Flush,
    SaveCheckpoint,
    SaveSnapshot,
    Wake,
)
from swarmlog.actors.runtime import FastInboxActor, mark_engine_thread
from swarmlog.schema.errors import StoreClosedError, SwarmlogError

if TYPE_CHECKING:
    from swarmlog.actors.committer import Committer
    from swarmlog.actors.reply import Callbacks

__all__ = ["WriterActor"]

logger = logging.getLogger("swarmlog.writer")


class WriterActor(FastInboxActor):
    """Commits queued appends and stores snapshots and checkpoints.

    Runs on its own thread; takes the committer's turn for each message.

    Args:
        committer: The append queue and writing connection (owned from
            ``on_start`` to ``on_stop``).
    """

    def __init__(self, committer: Committer) -> None:
        super().__init__()
        self._committer = committer

    def on_start(self) -> None:
        """Mark the thread and publish the stored head."""
        mark_engine_thread()
        with self._committer.turn:
            self._committer.writer_ident = threading.get_ident()
            self._committer.publish_head()
        self._serve_queue()  # appends queued while the turn was ours

    def on_stop(self) -> None:
        """Fail anything still queued, checkpoint the WAL into the database
        file and close."""
        self._committer.shut()
        self._fail_told()

    def _fail_told(self) -> None:
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
        """Handle one message, then commit whatever is queued (this
        actor's thread)."""
        committer = self._committer
        with committer.turn:
            later = self._handle(message)
        run_callbacks(later)
        self._serve_queue()
        return None

    def _serve_queue(self) -> None:
        """Commit until the queue is empty after letting go of the turn:
        whoever queued while the turn was taken relies on its holder."""
        committer = self._committer
        while committer.has_work():
            with committer.turn:
                later = committer.commit_queued()
                committer.checkpoint_if_idle()
            run_callbacks(later)

    def _handle(self, message: Any) -> list[Callbacks]:
        committer = self._committer
        if isinstance(message, Wake):
            later = committer.commit_queued()
            committer.checkpoint_if_idle()
            return later
        if isinstance(message, Flush):
            later = committer.commit_queued()
            message.future.set_result(None)
            return later
        if isinstance(message, SaveCheckpoint):
            error: BaseException | None = None
            try:
                committer.save_checkpoint(message.name, message.record)
            except Exception as failure:
                error = _reported(failure)
            if message.reply_to is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    message.reply_to.tell(
                        CheckpointSaved(message.record.position, error)
                    )
        elif isinstance(message, SaveSnapshot | DeleteCheckpoint):
            try:
                if isinstance(message, SaveSnapshot):
                    committer.save_snapshot(message.record)
                else:
                    committer.delete_checkpoint(message.name)
            except Exception as failure:
                message.future.set_exception(_reported(failure))
            else:
                message.future.set_result(None)
        return []


def _reported(failure: Exception) -> BaseException:
    """A write's failure as its requester sees it (bugs are logged)."""
    if not isinstance(failure, SwarmlogError):
        logger.exception("writer failed unexpectedly", exc_info=failure)
    return failure
