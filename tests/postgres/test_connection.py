"""A connection's health check: a dead idle session is noticed before
anything is sent on it, a live one is left alone."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from swarmlog.actors.postgres.connection import connect, healthy
from tests.postgres.conftest import TIMEOUT


@pytest.fixture
def conn(pg_url: str) -> Any:
    connection = connect(pg_url)
    try:
        yield connection
    finally:
        connection.close()


def test_a_live_idle_connection_is_healthy_and_stays_usable(
    conn: psycopg.Connection[Any],
) -> None:
    for _ in range(3):
        assert healthy(conn)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    assert healthy(conn)


def test_a_connection_whose_session_was_ended_is_not_healthy(
    conn: psycopg.Connection[Any], pg_url: str
) -> None:
    """The server ends the session (its last message, then the end of the
    stream): healthy() says so without sending anything."""
    with psycopg.connect(pg_url, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    pause = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        if not healthy(conn):
            break
        pause.wait(0.01)
    assert not healthy(conn)


def test_a_closed_connection_is_not_healthy(conn: psycopg.Connection[Any]) -> None:
    conn.close()
    assert not healthy(conn)
