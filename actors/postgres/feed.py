"""ChangeFeed: notices that another process committed to a PostgreSQL store.

Runs a daemon thread of its own with its own connection, which LISTENs on
the store's channel (every append NOTIFYs it at COMMIT, see ``sql``). A
notification is only a wake-up hint: the feed then reads the committed head
and calls ``on_change`` when it moved; whoever is called fetches by
position, which is the truth. A hint lost (a dropped LISTEN connection, a
server restart) delays nothing beyond ``fallback`` seconds: the feed reads
the head that often anyway, and reconnects after a lost connection.

:class:`PostgresChangeProbe` is the same look without a thread of its own,
for a writing store's change watcher (the ``ChangeProbe`` protocol of
``swarmlog.actors.follower``): it asks the writer to catch up.

:class:`ListeningFollower` puts a feed in front of a read-only store's
:class:`~swarmlog.actors.follower.Follower`: new events reach its
projections and listeners at the hint instead of the next poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import psycopg

from swarmlog.actors.follower import Follower
from swarmlog.actors.postgres.connection import connect, translate_error
from swarmlog.actors.runtime import mark_engine_thread
from swarmlog.schema.errors import SwarmlogError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pykka

    from swarmlog.actors.postgres.sql import Statements
    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import ReadStorage

__all__ = [
    "FALLBACK",
    "FEED_APPLICATION",
    "ChangeFeed",
    "ListeningFollower",
    "PostgresChangeProbe",
]

logger = logging.getLogger("swarmlog.follower")

FEED_APPLICATION: Final = "swarmlog-listen"  # its sessions in pg_stat_activity
FALLBACK: Final = 0.25
"""Seconds after which a probe looks at the head even without a hint."""
_STOP_LOOK: Final = 0.1  # seconds between looks at the stop flag while waiting
_STOP_TIMEOUT: Final = 30.0  # seconds stop() waits for the thread


class ChangeFeed:
    """Calls ``on_change()`` (on its own thread) when the store's committed
    head moved: at once on a NOTIFY, at the latest ``fallback`` seconds
    after the commit.

    Args:
        url: The store's libpq URI.
        statements: The store's statements (channel, head query).
        on_change: Called when the head moved; quick, may raise (logged).
        fallback: Seconds between head reads without any hint.
        head: The head already known (no call until it moves past it).
    """

    def __init__(
        self,
        url: str,
        statements: Statements,
        on_change: Callable[[], None],
        fallback: float,
        head: int = 0,
    ) -> None:
        self._url = url
        self._sql = statements
        self._on_change = on_change
        self._fallback = fallback
        self._known = head
        self._stop = threading.Event()
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self.connects = 0  # LISTEN connections opened (tests, diagnostics)
        self.listening = threading.Event()  # set once a connection listens
        self.backend_pid: int | None = None  # its server session (diagnostics)
        self._thread = threading.Thread(
            target=self._loop, name="swarmlog-pg-listen", daemon=True
        )

    def start(self) -> None:
        """Start listening."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait (bounded) for the thread; closes its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.warning(
                    "PostgreSQL change feed did not stop in %ss", _STOP_TIMEOUT
                )

    def _loop(self) -> None:
        mark_engine_thread()
        try:
            while not self._stop.is_set():
                try:
                    self._listen()
                except (psycopg.Error, SwarmlogError) as error:
                    if self._stop.is_set():
                        break
                    logger.warning("PostgreSQL change feed: %s; reconnecting", error)
                    self._close()
                    self._stop.wait(self._fallback)
        finally:
            self._close()

    def _listen(self) -> None:
        """One connection's life: LISTEN, then read the head at each hint
        and every ``fallback`` seconds, until stopped or it fails."""
        if self._conn is None:
            self._conn = connect(self._url, what="listen", application=FEED_APPLICATION)
            self.backend_pid = self._conn.info.backend_pid
            self.connects += 1
            self._conn.execute(self._sql.listen)
            self._check()  # hints sent while nobody listened are lost
            self.listening.set()
        conn = self._conn
        waited = 0.0
        while not self._stop.is_set():
            hinted = False
            for _ in conn.notifies(timeout=_STOP_LOOK, stop_after=1):
                hinted = True
            waited += _STOP_LOOK
            if hinted or waited >= self._fallback:
                waited = 0.0
                self._check()

    def _check(self) -> None:
        assert self._conn is not None
        row = self._conn.execute(self._sql.select_head).fetchone()
        head = 0 if row is None else int(row[0])
        if head > self._known:
            self._known = head
            try:
                self._on_change()
            except Exception:
                logger.exception("PostgreSQL change feed: on_change failed")

    def _close(self) -> None:
        self.listening.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


class ListeningFollower(Follower):
    """A read-only PostgreSQL store's follower, woken by the store's NOTIFY
    hints (:class:`ChangeFeed`); its own poll every ``interval`` seconds
    stays the fallback.

    Args:
        reader: The store's reader pool.
        head: The head this store publishes.
        dispatcher: Where new pages go.
        interval: Seconds between polls without a hint.
        url: The store's libpq URI.
        statements: The store's statements.
    """

    def __init__(
        self,
        reader: ReadStorage,
        head: CommitHead,
        dispatcher: pykka.ActorRef[Any],
        interval: float,
        url: str,
        statements: Statements,
    ) -> None:
        super().__init__(reader, head, dispatcher, interval)
        self.feed = ChangeFeed(url, statements, self._hinted, interval, head.position)

    def _hinted(self) -> None:
        self.poll()

    def start(self) -> None:
        """Start polling and listening."""
        super().start()
        self.feed.start()

    def stop(self) -> None:
        """Stop listening, then polling (each bounded)."""
        self.feed.stop()
        super().stop()


class PostgresChangeProbe:
    """A cheap look at a PostgreSQL store that other processes write (one
    thread: the change watcher's; its own LISTEN connection).

    :meth:`changed` never blocks: it is true when a NOTIFY hint arrived,
    when ``fallback`` seconds passed without one (a hint may be lost), and
    after the connection was replaced or listens again (hints sent
    meanwhile are lost); :meth:`head` then reads the committed head. A lost
    connection is reopened at most every ``fallback`` seconds.

    :meth:`rest` (the writer is busy: its own rounds land after other
    processes' commits and publish them) stops listening until
    :meth:`wake`; meanwhile :meth:`changed` is always true, so each look
    the watcher makes reads the head. A listening session is woken by the
    server at every commit of every process; with several busy writers
    those wake-ups cost about a quarter of their throughput (PGW3).

    Args:
        url: The store's libpq URI.
        statements: The store's statements (channel, head query).
        fallback: Seconds between looks at the head without a hint.
    """

    def __init__(
        self, url: str, statements: Statements, fallback: float = FALLBACK
    ) -> None:
        self._url = url
        self._sql = statements
        self._fallback = fallback
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._due = 0.0  # when to look at the head without a hint
        self._retry_at = 0.0  # when to try connecting again
        self.resting = False  # not listening while the writer is busy
        self._missed = False  # hints may have been lost: say changed once
        self.backend_pid: int | None = None  # its server session (diagnostics)

    def changed(self) -> bool:
        """Whether the head may have moved since the last call."""
        now = time.monotonic()
        conn = self._conn
        if conn is None:
            if now < self._retry_at:
                return False
            self._retry_at = now + self._fallback
            try:
                self._open()
            except SwarmlogError as error:
                logger.warning("PostgreSQL change probe: %s", error)
                return False
            return True
        if self.resting or self._missed:  # no hints: read the head
            self._missed = False
            self._due = now + self._fallback
            return True
        try:
            hinted = any(True for _ in conn.notifies(timeout=0))
        except psycopg.Error:
            self._close()
            return True
        if hinted or now >= self._due:
            self._due = now + self._fallback
            return True
        return False

    def head(self) -> int:
        """The committed head now.

        Raises:
            StorageError: The server cannot be reached.
        """
        conn = self._conn or self._open()
        try:
            row = conn.execute(self._sql.select_head).fetchone()
        except psycopg.Error as e:
            self._close()
            raise translate_error(e, self._url, "read the head") from e
        return 0 if row is None else int(row[0])

    def rest(self) -> None:
        """Stop listening until :meth:`wake` (never raises; a failure
        closes the connection, which the next look reopens)."""
        conn = self._conn
        if conn is None or self.resting:
            return
        self.resting = True
        try:
            conn.execute("UNLISTEN *")
        except psycopg.Error:
            self._close()

    def wake(self) -> None:
        """Listen again (never raises; see :meth:`rest`); the next
        :meth:`changed` is true: hints sent meanwhile are lost."""
        if not self.resting:
            return
        self.resting = False
        self._missed = True
        conn = self._conn
        if conn is None:  # the next look opens a listening one
            return
        try:
            conn.execute(self._sql.listen)
        except psycopg.Error:
            self._close()

    def _open(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = connect(self._url, what="listen", application=FEED_APPLICATION)
        try:
            if not self.resting:  # resting, it listens once woken
                conn.execute(self._sql.listen)
        except psycopg.Error as e:
            conn.close()
            raise translate_error(e, self._url, "listen") from e
        self._conn = conn
        self.backend_pid = conn.info.backend_pid
        self._due = time.monotonic() + self._fallback
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Close the connection."""
        self._close()
