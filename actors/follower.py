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
While this process's head moves on its own (its writer is running rounds,
and every round catches up first) the watcher skips its look: under load
it would only compete with the writer for the GIL and the cores. Once the
head stands still for one interval it looks again, so a foreign commit
waits at most about two intervals. A head moved by the watcher's own
request (an idle process following the others) is no such sign.

After :data:`REST_AFTER` skipped looks in a row the probe is told to
:meth:`~ChangeProbe.rest` (on PostgreSQL its session stops listening, so
other processes' commits no longer wake it on the server, and each look
the watcher makes reads the head instead; see ``PostgresChangeProbe``);
after as many looks in a row that it made (the writer idle for that long)
it is told to :meth:`~ChangeProbe.wake`.
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

__all__ = ["REST_AFTER", "ChangeProbe", "ChangeWatcher", "Follower"]

logger = logging.getLogger("swarmlog.follower")

_PAGE = 1000
_STOP_TIMEOUT = 30.0  # seconds stop() waits for a poll in progress
WATCH_INTERVAL: Final = 0.002  # seconds between looks at a shared store's file
REST_AFTER: Final = 25  # looks in a row (~50 ms) before the probe rests or wakes


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

    def rest(self) -> None:
        """The writer is busy and meets other processes' commits in its
        own rounds: stop what costs between looks (until :meth:`wake`,
        :meth:`changed` may be true at every look). Never raises."""
        ...

    def wake(self) -> None:
        """The writer went idle: undo :meth:`rest` (the next
        :meth:`changed` is true). Never raises."""
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
        catch_up: Asks the writer to catch up (quick; any thread); returns
            whether it asked (a busy writer catches up in its own rounds).
        interval: Seconds between looks.
    """

    def __init__(
        self,
        probe: ChangeProbe,
        head: CommitHead,
        catch_up: Callable[[], bool],
        interval: float = WATCH_INTERVAL,
    ) -> None:
        self._probe = probe
        self._head = head
        self._catch_up = catch_up
        self._interval = interval
        self._asked = False  # the last look asked for a catch-up
        self._skipped = 0  # looks skipped in a row
        self._made = 0  # looks made in a row
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="swarmlog-watcher", daemon=True
        )

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def look(self, seen: int) -> int:
        """One look (the watcher's thread): skipped while the head moved
        since ``seen`` (the writer is active and catches up each round),
        unless the last look asked for that catch-up itself; otherwise ask
        for a catch-up if another process committed past the head. The
        :data:`REST_AFTER`-th skip in a row rests the probe, the
        :data:`REST_AFTER`-th look made in a row wakes it.

        Returns:
            The head to compare with at the next look.

        Raises:
            SwarmlogError: The file cannot be read.
        """
        position = self._head.position
        probe = self._probe
        if position != seen and not self._asked:
            self._made = 0
            self._skipped += 1
            if self._skipped == REST_AFTER:
                probe.rest()
            return position
        self._skipped = 0
        self._made += 1
        if self._made == REST_AFTER:
            probe.wake()
        self._asked = False  # a head moved by our own request proves nothing
        if probe.changed() and probe.head() > position:
            self._asked = self._catch_up()
        return position

    def _loop(self) -> None:
        mark_engine_thread()
        seen = self._head.position - 1  # the first look is never skipped
        try:
            while not self._stop.wait(self._interval):
                try:
                    seen = self.look(seen)
                except SwarmlogError as error:
                    logger.warning("watching the store: %s", error)
                except Exception:  # a bug: log it, keep watching
                    if self._stop.is_set():
                        return
                    logger.exception("watching the store failed")
        finally:
            self._probe.close()

    def stop(self) -> None:
        """Stop watching and wait (bounded) for the thread; close the probe."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.warning("store watcher did not stop in %ss", _STOP_TIMEOUT)
        else:
            self._probe.close()
