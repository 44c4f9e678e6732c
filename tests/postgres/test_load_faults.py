"""Faults inside a multi-process load on PostgreSQL: 4 processes x 4
threads append on contended aggregates (``load_child.py``, driven by
``load_support.py``) while the test

- drops every LISTEN connection (mid-load, and again once they are idle),
  with a read-only process started mid-load;
- terminates every swarmlog session (writers mid-commit, readers, LISTEN);
- SIGKILLs one of the appending processes;
- holds the head row from a session of its own past ``lock_timeout``;
- restarts the server (``fast`` and ``immediate`` stops), mid-load and
  once more while the processes are idle.

Appends that meet a typed error are retried with the same events until
stored. After the load every promise holds (see
:func:`tests.postgres.load_support.verify`): positions exactly ``1..N``,
every acknowledged event stored once where it was acknowledged, contiguous
versions, each process's listener and projection got ``1..N``.

The restart tests stop and start a server of their own
(:func:`tests.pg_server.start_server`), never the session's. Soak variants
(``-m soak``) repeat each fault many times in one load.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import psycopg
import pytest

from swarmlog import EventStore
from tests.pg_server import ENV_URL, PgServer, start_server
from tests.postgres.load_support import (
    PROCESSES,
    STEP,
    TYPED_FAULTS,
    append_extra,
    running_load,
    swarmlog_sessions,
    terminate_listen_sessions,
    verify,
    wait_listen_sessions,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow


def _drop_listen_mid_load(url: str, schema: str, folder: Path, drops: int) -> None:
    with running_load(url, schema, folder) as load:
        load.wait_more_acks(STEP)
        assert len(terminate_listen_sessions(url)) >= PROCESSES
        load.add_follower()
        for _ in range(drops - 1):
            load.wait_more_acks(STEP)
            terminate_listen_sessions(url)  # those that listen again by now
        load.wait_more_acks(STEP)
        load.finish()
        # Idle now: another process's commits reach them only through
        # their change watchers, which listen again (a busy process's
        # watcher looks only once its head stands still) and whose LISTEN
        # sessions end here once more.
        wait_listen_sessions(url, PROCESSES + 1)
        assert len(terminate_listen_sessions(url)) >= PROCESSES + 1
        extra = append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    assert verify(url, schema, load, extra) == load.head


def test_dropped_listen_connections_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """Every LISTEN session is ended mid-load, and again once the processes
    are idle: each process's listener and projection still get exactly
    ``1..N``, including what others committed after the drop. A read-only
    process started mid-load (its projection catches up, then follows)
    gets exactly ``1..N`` too."""
    _drop_listen_mid_load(pg_server.url, pg_schema, tmp_path, drops=1)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_DROPS; every wait has its own
def test_dropped_listen_soak(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """The LISTEN test with SWARMLOG_SOAK_DROPS (default 50) drops in one load."""
    drops = int(os.environ.get("SWARMLOG_SOAK_DROPS", "50"))
    _drop_listen_mid_load(pg_server.url, pg_schema, tmp_path, drops)


def test_kill_9_of_one_process_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """One of the four appending processes is SIGKILLed mid-load (its
    writer busy, often holding the head row): the others go on, nothing it
    acknowledged is lost, it leaves no hole, and the other processes'
    listeners and projections still get exactly ``1..N``."""
    url = pg_server.url
    with running_load(url, pg_schema, tmp_path) as load:
        load.wait_more_acks(STEP)
        load.kill(load.appenders[0])
        load.wait_more_acks(STEP)  # the others go on: the head row is free
        load.finish()
        # This append queues behind anything the dead process's session
        # still had open on the head row: the head read after it is final.
        extra = append_extra(url, pg_schema, 3)
        with EventStore(url, pg_schema=pg_schema, read_only=True) as store:
            head = store.head_position
        load.expect(head)
    assert verify(url, pg_schema, load, extra) == head


def _terminate_mid_load(url: str, schema: str, folder: Path, rounds: int) -> None:
    with running_load(url, schema, folder) as load:
        load.add_follower()
        for round_no in range(rounds):
            load.wait_more_acks(STEP)
            pids = swarmlog_sessions(url)
            # a writer and a watcher each; later, writers at least (a busy
            # process's watcher reconnects once its head stands still)
            assert len(pids) >= PROCESSES * (1 if round_no else 2)
            with psycopg.connect(url, autocommit=True) as conn:
                for pid in pids:
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        load.wait_more_acks(STEP)
        load.finish()
        extra = append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    faults = load.faults()
    assert set(faults) <= TYPED_FAULTS, faults
    assert verify(url, schema, load, extra) == load.head


def test_every_session_terminated_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """Every swarmlog session on the server (writers mid-commit, readers,
    LISTEN) is ended twice mid-load: appends meet typed errors at most,
    retried with the same events; nothing acknowledged is lost or doubled,
    no hole, and each process's listener and projection get ``1..N``."""
    _terminate_mid_load(pg_server.url, pg_schema, tmp_path, rounds=2)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_TERMINATIONS
def test_every_session_terminated_soak(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """The termination test with SWARMLOG_SOAK_TERMINATIONS (default 50)
    rounds in one load."""
    rounds = int(os.environ.get("SWARMLOG_SOAK_TERMINATIONS", "50"))
    _terminate_mid_load(pg_server.url, pg_schema, tmp_path, rounds)


def test_a_head_held_elsewhere_times_out_mid_load(
    pg_server: PgServer, pg_schema: str, tmp_path: Path
) -> None:
    """A session outside swarmlog holds the head row mid-load, longer than
    ``lock_timeout``: every process's appends fail with a typed timeout,
    never hang; retried once it lets go, nothing is lost or doubled."""
    url = pg_server.url
    with running_load(url, pg_schema, tmp_path, lock_timeout=0.3) as load:
        load.wait_more_acks(STEP)
        marks = {c.index: sum(c.faults.values()) for c in load.children}
        with psycopg.connect(url) as holder:  # a transaction: the lock stays
            holder.execute(f'SELECT position FROM "{pg_schema}".head FOR UPDATE')
            for child in load.appenders:
                child.wait_until(
                    "a lock timeout",
                    lambda c: sum(c.faults.values()) > marks[c.index],
                )
            holder.rollback()
        load.wait_more_acks(STEP)  # appends resumed in every process
        load.finish()
        extra = append_extra(url, pg_schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    faults = load.faults()
    assert set(faults) <= TYPED_FAULTS, faults
    assert faults["LockTimeoutError"] + faults["StorageTimeoutError"] > 0, faults
    assert verify(url, pg_schema, load, extra) == load.head


@pytest.fixture
def private_server(pg_server: PgServer) -> Iterator[PgServer]:
    """A throwaway server of this test's own, which it may restart (the
    session's server is never restarted under the other tests)."""
    if not pg_server.owned:
        pytest.skip(
            "restarting a server needs one the tests start themselves "
            f"(unset {ENV_URL} to let them)"
        )
    server = start_server()
    try:
        yield server
    finally:
        server.remove()


def _restart_mid_load(server: PgServer, folder: Path, mode: str, times: int) -> None:
    schema = "restarted"
    url = server.url
    with running_load(url, schema, folder) as load:
        load.add_follower()  # a read-only process, too, lives through it
        for _ in range(times):
            load.wait_more_acks(STEP)
            marks = {c.index: sum(c.faults.values()) for c in load.children}
            server.stop(mode)
            try:
                # every process is appending: each meets the outage
                for child in load.appenders:
                    child.wait_until(
                        "a typed error during the outage",
                        lambda c, marks=marks: sum(c.faults.values()) > marks[c.index],
                    )
            finally:
                server.start()
            load.wait_more_acks(STEP)  # appends resumed in every process
        load.finish()
        # Once more while they are idle: what is committed after it reaches
        # every process through its reconnected watcher or follower.
        server.stop(mode)
        server.start()
        extra = append_extra(url, schema, 3)
        load.expect(len(extra) + sum(len(c.acks) for c in load.children))
    faults = load.faults()
    assert set(faults) <= TYPED_FAULTS, faults
    assert verify(url, schema, load, extra) == load.head


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart_mid_load(
    private_server: PgServer, tmp_path: Path, mode: str
) -> None:
    """The server stops (``fast``: sessions ended, open transactions rolled
    back; ``immediate``: a crash, recovered at start) while 16 threads in 4
    processes append: they get typed errors during the outage, retry the
    same events until stored, and nothing acknowledged is lost or doubled."""
    _restart_mid_load(private_server, tmp_path, mode, times=1)


@pytest.mark.soak
@pytest.mark.timeout(0)  # scales with SWARMLOG_SOAK_RESTARTS; every wait has its own
def test_server_restart_soak(private_server: PgServer, tmp_path: Path) -> None:
    """The restart test with SWARMLOG_SOAK_RESTARTS (default 20) restarts
    in one load, alternating fast and immediate stops."""
    restarts = int(os.environ.get("SWARMLOG_SOAK_RESTARTS", "20"))
    for round_no in range(restarts // 2):
        folder = tmp_path / f"r{round_no}"
        folder.mkdir()
        mode = ("fast", "immediate")[round_no % 2]
        _restart_mid_load(private_server, folder, mode, times=2)
        private_server.drop_schema("restarted")
