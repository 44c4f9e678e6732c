"""Cross-process change hints on PostgreSQL: NOTIFY wakes followers at
once; a lost hint or a dropped LISTEN connection only delays them to the
fallback poll; fetching by position stays the truth."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from swarmlog import EventStore, create_agent_started_event
from swarmlog.actors.postgres.feed import (
    ChangeFeed,
    ListeningFollower,
    PostgresChangeProbe,
)
from swarmlog.actors.postgres.sql import Statements, channel_name
from swarmlog.schema.errors import StorageError
from tests.postgres.conftest import TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Callable

LONG = 3600.0  # a poll interval that never comes within a test


def _calls() -> tuple[Callable[[], None], threading.Semaphore]:
    seen = threading.Semaphore(0)
    return seen.release, seen


def test_channel_names_fit_the_server_limit() -> None:
    """Long schema names get a short, distinct channel."""
    assert channel_name("swarmlog") == "swarmlog_swarmlog"
    long_a, long_b = channel_name("a" * 63), channel_name("a" * 62 + "b")
    assert len(long_a) <= 63
    assert long_a != long_b


def test_an_append_wakes_a_listening_feed(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """A commit's NOTIFY reaches the feed long before its fallback poll."""
    store = make_pg_store()
    on_change, seen = _calls()
    feed = ChangeFeed(pg_url, Statements(pg_schema), on_change, LONG)
    feed.start()
    try:
        assert feed.listening.wait(TIMEOUT)
        store.append(create_agent_started_event("a1"))
        assert seen.acquire(timeout=TIMEOUT)
    finally:
        feed.stop()


def test_a_lost_hint_is_caught_by_the_fallback_poll(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """A head that moved without a NOTIFY is still noticed, by the poll."""
    make_pg_store().shutdown()
    on_change, seen = _calls()
    feed = ChangeFeed(pg_url, Statements(pg_schema), on_change, 0.05)
    feed.start()
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'UPDATE "{pg_schema}".head SET position = 1')
        assert seen.acquire(timeout=TIMEOUT)
    finally:
        feed.stop()


def test_a_dropped_listen_connection_reconnects(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """The server ends the LISTEN session: the feed reconnects, notices
    what was committed meanwhile, and hears the next hints."""
    store = make_pg_store()
    on_change, seen = _calls()
    feed = ChangeFeed(pg_url, Statements(pg_schema), on_change, 0.05)
    feed.start()
    try:
        _wait_connects(feed, 1)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (feed.backend_pid,))
        store.append(create_agent_started_event("a1"))
        assert seen.acquire(timeout=TIMEOUT)
        _wait_connects(feed, 2)
        store.append(create_agent_started_event("a2"))
        assert seen.acquire(timeout=TIMEOUT)
    finally:
        feed.stop()


def test_a_read_only_store_is_woken_by_the_writers_hint(
    make_pg_store: Callable[..., EventStore], pg_url: str
) -> None:
    """A read-only store polling only hourly still sees an append at once:
    the writer's NOTIFY wakes its follower, which fetches by position."""
    writer = make_pg_store()
    reader = make_pg_store(read_only=True, poll_interval=LONG)
    appended = threading.Event()
    reader.on("event:appended", lambda event: appended.set())
    follower = reader._wiring.follower
    assert isinstance(follower, ListeningFollower)
    assert follower.feed.listening.wait(TIMEOUT)
    stored = writer.append(create_agent_started_event("a1"))
    assert appended.wait(TIMEOUT)
    assert list(reader.replay()) == [stored]


def _wait_connects(feed: ChangeFeed, count: int) -> None:
    """Block until the feed listens on its ``count``-th connection."""
    pause = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        if feed.connects >= count and feed.listening.is_set():
            return
        pause.wait(0.01)
    raise AssertionError(f"the feed never listened on connection {count}")


class TestChangeProbe:
    """The writing store's look at other processes' commits."""

    def test_a_hint_makes_it_changed_and_head_reads_the_head(
        self, make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
    ) -> None:
        """After a commit elsewhere, changed() is true and head() is it."""
        store = make_pg_store()
        probe = PostgresChangeProbe(pg_url, Statements(pg_schema), fallback=LONG)
        try:
            assert probe.changed()  # first connection: may have missed some
            assert not probe.changed()
            store.append(create_agent_started_event("a1"))
            assert _eventually(probe.changed)
            assert probe.head() == 1
            assert not probe.changed()
        finally:
            probe.close()

    def test_without_a_hint_the_fallback_still_looks(
        self, make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
    ) -> None:
        """A head moved without NOTIFY is seen within the fallback."""
        make_pg_store().shutdown()
        probe = PostgresChangeProbe(pg_url, Statements(pg_schema), fallback=0.05)
        try:
            assert probe.changed()
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(f'UPDATE "{pg_schema}".head SET position = 3')
            assert _eventually(probe.changed)
            assert probe.head() == 3
        finally:
            probe.close()

    def test_a_resting_probe_reads_the_head_at_each_look_until_woken(
        self, make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
    ) -> None:
        """rest() ends the session's LISTEN and changed() is then true at
        every look; wake() listens again (changed() true once: hints were
        lost meanwhile), and hints wake it as before."""
        store = make_pg_store()
        probe = PostgresChangeProbe(pg_url, Statements(pg_schema), fallback=LONG)

        try:
            assert probe.changed()
            assert not probe.changed()
            assert _channels(probe) == 1
            probe.rest()
            assert (probe.resting, _channels(probe)) == (True, 0)
            assert probe.changed()
            assert probe.changed()
            store.append(create_agent_started_event("a1"))
            assert probe.head() == 1
            probe.wake()
            assert (probe.resting, _channels(probe)) == (False, 1)
            assert probe.changed()
            assert not probe.changed()
            store.append(create_agent_started_event("a2"))
            assert _eventually(probe.changed)
        finally:
            probe.close()

    def test_a_connection_lost_while_resting_is_reopened_without_listening(
        self, make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
    ) -> None:
        """The server ends a resting probe's session: the head read fails
        (typed), the next look reopens it, not listening; wake() then
        listens on it."""
        make_pg_store().shutdown()
        probe = PostgresChangeProbe(pg_url, Statements(pg_schema), fallback=0.01)

        try:
            assert probe.changed()
            probe.rest()
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (probe.backend_pid,))
            assert probe.changed()  # resting: no look at the connection
            with pytest.raises(StorageError):  # the watcher logs it
                probe.head()
            assert _eventually(probe.changed)  # reopened (at most every 10 ms)
            assert probe.head() == 0
            assert (probe.resting, _channels(probe)) == (True, 0)
            probe.wake()
            assert _channels(probe) == 1
        finally:
            probe.close()

    def test_a_dropped_connection_is_reopened(
        self, make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
    ) -> None:
        """The server ends the probe's session: the next looks reconnect
        and report a possible change."""
        store = make_pg_store()
        probe = PostgresChangeProbe(pg_url, Statements(pg_schema), fallback=0.05)
        try:
            assert probe.changed()
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (probe.backend_pid,))
            store.append(create_agent_started_event("a1"))
            assert _eventually(probe.changed)
            assert _eventually(lambda: probe.changed() and probe.head() == 1)
        finally:
            probe.close()


def _channels(probe: PostgresChangeProbe) -> int:
    """How many channels the probe's session listens on."""
    conn: Any = probe._conn
    row = conn.execute("SELECT count(*) FROM pg_listening_channels()")
    return int(row.fetchone()[0])


def _eventually(check: Callable[[], bool]) -> bool:
    """Whether ``check()`` turns true within TIMEOUT (looked at often)."""
    pause = threading.Event()
    for _ in range(int(TIMEOUT / 0.005)):
        if check():
            return True
        pause.wait(0.005)
    return False
