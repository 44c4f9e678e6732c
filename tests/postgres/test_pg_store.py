"""EventStore on PostgreSQL: what differs from SQLite (the shared contract
suite in tests/store runs on both)."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import TYPE_CHECKING

import psycopg
import pytest

from swarmlog import (
    EventStore,
    StoreOpenError,
    SwarmlogError,
    create_agent_started_event,
)
from tests.postgres.conftest import TIMEOUT, lock_waiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.pg_server import PgServer

SECRET = "s3cret-pw"


def _with_password(url: str) -> str:
    """The same server URL with a password (trust auth ignores it)."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user or 'postgres'}:{SECRET}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_the_password_is_never_shown(
    make_pg_store: Callable[..., EventStore],
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """path, repr, logs and the storage objects never show the password."""
    url = _with_password(pg_url)
    with caplog.at_level(logging.INFO, logger="swarmlog"):
        store = make_pg_store(url=url, verbose=True)
        store.append(create_agent_started_event("a1"))
        shown = [
            store.path,
            repr(store),
            repr(store.config),
            str(store.config),
            repr(store._wiring.reader),
            repr(store.get_stats()),
            caplog.text,
        ]
        store.shutdown()
    assert store.path.startswith("postgresql://")
    for text in shown:
        assert SECRET not in text


def test_a_failed_connection_names_the_server_without_the_password(
    pg_schema: str, tmp_path: object
) -> None:
    """A server that cannot be reached: StoreOpenError, password redacted."""
    url = f"postgresql://app:{SECRET}@/nodb?host={tmp_path}&port=1"
    store = EventStore(url, pg_schema=pg_schema)
    with pytest.raises(StoreOpenError) as info:
        store.initialize()
    store.shutdown()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert "app:***@" in str(info.value)


def test_a_read_only_store_follows_a_writing_one(
    make_pg_store: Callable[..., EventStore],
) -> None:
    """A read-only store on the same schema sees another store's appends
    (its follower polls the server) and refuses to write."""
    writer = make_pg_store()
    writer.append(create_agent_started_event("a1"))
    reader = make_pg_store(read_only=True, poll_interval=0.01)
    seen = threading.Event()
    reader.on("event:appended", lambda event: seen.set())
    assert reader.get_events("a1") == writer.get_events("a1")
    writer.append(create_agent_started_event("a2"))
    assert seen.wait(TIMEOUT)
    assert [e.position for e in reader.replay()] == [1, 2]
    with pytest.raises(SwarmlogError):
        reader.append(create_agent_started_event("a3"))


def test_persist_is_a_no_op(make_pg_store: Callable[..., EventStore]) -> None:
    """persist() has nothing to fold back: the server keeps its own WAL."""
    store = make_pg_store()
    store.append(create_agent_started_event("a1"))
    store.persist()
    assert store.get_stats().total_events == 1


def test_a_session_ended_mid_append_is_a_typed_error_and_a_new_store_resumes(
    make_pg_store: Callable[..., EventStore], pg_url: str, pg_schema: str
) -> None:
    """The server ends the writer's session while an append waits for the
    head: its caller gets a typed error (never a hang, never a raw driver
    error), nothing half-stored; appends resume gap-free."""
    store = make_pg_store()
    store.append(create_agent_started_event("a1"))
    holder = psycopg.connect(pg_url, autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute(f'SELECT position FROM "{pg_schema}".head FOR UPDATE')
        pending = store.append_async(create_agent_started_event("a2"))
        pid = lock_waiter(holder)
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(SwarmlogError):
            pending.get(TIMEOUT)
    finally:
        holder.close()
    store.shutdown()
    with make_pg_store(initialize=False) as again:
        again.append(create_agent_started_event("a3"))
        assert [e.position for e in again.replay()] == [1, 2]


def test_a_server_restart_gives_typed_errors_then_appends_resume(
    make_pg_store: Callable[..., EventStore], pg_server: PgServer
) -> None:
    """While the server is down appends and reads fail with typed errors
    (no hang); once it is back the same store appends and reads again,
    nothing acknowledged lost and no hole in the positions."""
    if not pg_server.owned:
        pytest.skip("restarts only a server this session started")
    store = make_pg_store()
    acknowledged = [store.append(create_agent_started_event("a1")) for _ in range(3)]
    pg_server.stop("fast")
    try:
        with pytest.raises(SwarmlogError):
            store.append(create_agent_started_event("a1"))
        with pytest.raises(SwarmlogError):
            store.get_events("a1")
    finally:
        pg_server.start()
    stored = store.append(create_agent_started_event("a1"))
    assert stored.position == 4
    assert store.get_events("a1")[:3] == acknowledged
    assert [e.position for e in store.replay()] == [1, 2, 3, 4]
