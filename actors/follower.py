"""Follower: feeds a store's projections with what other processes commit.

:class:`Follower` serves a read-only store; :class:`ChangeWatcher` a store
that writes beside other processes (``multi_process``).

A read-only store has no writer to publish commits, so this thread polls the
file for events past the head it knows (one short read each time), publishes
the new head and hands the page to the dispatcher exactly as the writer
would after a commit. Projections on a read-only store therefore stay live
while another process writes. Its thread is a daemon thread: it never
holds the process.

A writing store must not publish on its own: only the writer's turn holder
does, so pages stay in position order. Its :class:`ChangeWatcher` thread
looks at the file every few milliseconds (``PRAGMA data_version`` on its own
connection: microseconds, no read of the events) and, when another process
committed past the head this one published, asks the writer to catch up.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Final, Protocol

from swarmlog.actors.messages import DeliverPage
from swarmlog.actors.runtime import mark_engine_thread
from swarmlog.schema.errors import SwarmlogError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import ReadStorage

__all__ = ["ChangeProbe", "ChangeWatcher", "Follower"]

logger = logging.getLogger("swarmlog.follower")

_PAGE = 1000
_STOP_TIMEOUT = 30.0  # seconds stop() waits for a poll in progress
WATCH_INTERVAL: Final = 0.002  # seconds between looks at a shared store's file


class Follower:
    """Polls ``reader`` every ``interval`` seconds on a thread of its own.

    Args:
        reader: The read-only store's reader connections.
        head: The head this store publishes (advanced as pages arrive).
        dispatcher: Where new pages go.
        interval: Seconds between polls when nothing new was found.
    """

    def __init__(
        self,
        reader: ReadStorage,
        head: CommitHead,
        dispatcher: pykka.ActorRef[Any],
        interval: float,
    ) -> None:
        self._reader = reader
        self._head = head
        self._dispatcher = dispatcher
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()  # head_position may poll from any thread
        self._thread = threading.Thread(
            target=self._loop, name="swarmlog-follower", daemon=True
        )

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def poll(self) -> int:
        """Publish what was appended since the last poll; return how many."""
        with self._lock:
            return self._poll_locked()

    def _poll_locked(self) -> int:
        found = 0
        while True:
            page = self._reader.read_page(self._head.position, _PAGE)
            if not page:
                return found
            self._head.position = page[-1].position
            self._dispatcher.tell(DeliverPage(tuple(page)))
            found += len(page)
            if len(page) < _PAGE:
                return found

    def _loop(self) -> None:
        mark_engine_thread()
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except SwarmlogError as error:
                logger.warning("read-only follower: %s", error)
            except Exception:  # the dispatcher stopped under us: shutdown
                if not self._stop.is_set():
                    logger.exception("read-only follower failed")
                return

    def stop(self) -> None:
        """Stop polling and wait (bounded) for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.warning("read-only follower did not stop in %ss", _STOP_TIMEOUT)


class ChangeProbe(Protocol):
    """A cheap look at a shared store (its own connection; one thread)."""

    def changed(self) -> bool:
        """Whether anyone committed since the last call."""
        ...

    def head(self) -> int:
        """The committed head in the store now."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class ChangeWatcher:
    """Asks the writer to catch up when other processes committed.

    Runs on a daemon thread of its own; owns ``probe`` (closed at
    :meth:`stop`).

    Args:
        probe: Its look at the store.
        head: The head this process published.
        catch_up: Asks the writer to catch up (quick; any thread).
        interval: Seconds between looks.
    """

    def __init__(
        self,
        probe: ChangeProbe,
        head: CommitHead,
        catch_up: Callable[[], None],
        interval: float = WATCH_INTERVAL,
    ) -> None:
        self._probe = probe
        self._head = head
        self._catch_up = catch_up
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="swarmlog-watcher", daemon=True
        )

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def _loop(self) -> None:
        mark_engine_thread()
        probe = self._probe
        try:
            while not self._stop.wait(self._interval):
                try:
                    if probe.changed() and probe.head() > self._head.position:
                        self._catch_up()
                except SwarmlogError as error:
                    logger.warning("watching the store: %s", error)
                except Exception:  # a bug: log it, keep watching
                    if self._stop.is_set():
                        return
                    logger.exception("watching the store failed")
        finally:
            probe.close()

    def stop(self) -> None:
        """Stop watching and wait (bounded) for the thread; close the probe."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.warning("store watcher did not stop in %ss", _STOP_TIMEOUT)
        else:
            self._probe.close()
