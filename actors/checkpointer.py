"""Checkpointer: folds the WAL into the database file off the commit path.

The writer's connection runs with ``wal_autocheckpoint = 0``, so commits
never stall on a checkpoint. This thread runs PASSIVE checkpoints from its
own connection every ``interval`` seconds, when the WAL grows past
``size_threshold`` (the writer nudges it every few commits), and on
``persist()``. Its thread is a daemon thread: it never holds the process.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from swarmlog.actors.runtime import mark_engine_thread
from swarmlog.schema.errors import SwarmlogError

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.sqlite.files import SQLiteCheckpointRunner

__all__ = ["Checkpointer"]

logger = logging.getLogger("swarmlog.checkpointer")

_NUDGE_EVERY = 64  # commits between WAL size checks
_STOP_TIMEOUT = 30.0  # seconds stop() waits for a checkpoint in progress


class Checkpointer:
    """Runs WAL checkpoints on a thread of its own.

    Args:
        runner: The checkpointing connection.
        interval: Seconds between checkpoints (0: only at the size threshold,
            on ``persist()`` and at shutdown).
        size_threshold: WAL bytes that trigger a checkpoint.
        on_persisted: Called after each checkpoint with the database size.
        on_error: Called with a failed checkpoint's error.
    """

    def __init__(
        self,
        runner: SQLiteCheckpointRunner,
        interval: float,
        size_threshold: int,
        on_persisted: Callable[[int], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._runner = runner
        self._interval = interval
        self._threshold = size_threshold
        self._on_persisted = on_persisted
        self._on_error = on_error
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._commits = 0
        self._thread = threading.Thread(
            target=self._loop, name="swarmlog-checkpointer", daemon=True
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def commit_seen(self) -> None:
        """Called by the writer after each commit (writer thread, cheap)."""
        self._commits += 1
        if self._commits % _NUDGE_EVERY == 0:
            self._wake.set()

    def persist(self) -> int:
        """Checkpoint now (caller's thread). Returns the WAL size before."""
        with self._lock:
            size = self._runner.wal_size()
            self._runner.run()
        self._on_persisted(size)
        return size

    def _loop(self) -> None:
        mark_engine_thread()
        timeout = self._interval if self._interval > 0 else None
        while True:
            nudged = self._wake.wait(timeout)
            self._wake.clear()
            if self._stopping:
                return
            if nudged and self._runner.wal_size() < self._threshold:
                continue
            try:
                self.persist()
            except SwarmlogError as error:
                logger.warning("checkpoint failed: %s", error)
                self._on_error(error)
            except Exception:  # a bug: log it, keep checkpointing
                logger.exception("checkpoint failed unexpectedly")

    def stop(self) -> None:
        """Stop the thread and close its connection (bounded: a thread still
        inside a checkpoint after the timeout keeps its connection open)."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.warning("checkpointer did not stop in %ss", _STOP_TIMEOUT)
                return
        self._runner.close()
