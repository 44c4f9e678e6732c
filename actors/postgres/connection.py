"""Connections to PostgreSQL, and the one boundary where psycopg errors
become typed swarmlog errors.

Runs on whichever thread uses the connection (the writer's turn holder, a
reader). Every message that leaves this module has the URL's password
redacted (:func:`swarmlog.actors.postgres.url.redact_text`).
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ConnStatus

from swarmlog.actors.postgres.url import redact, redact_text
from swarmlog.schema.errors import (
    InvalidQueryError,
    StorageError,
    StorageFullError,
    StorageTimeoutError,
    StoreOpenError,
    SwarmlogError,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "StorageTimeoutError",
    "connect",
    "healthy",
    "is_connection_lost",
    "translate_error",
]

CONNECT_TIMEOUT: Final = 10  # seconds a connection attempt may take (libpq)
APPLICATION_NAME: Final = "swarmlog"  # pg_stat_activity shows who we are
_STRAY_READS: Final = 2  # non-blocking reads of what an idle server sent

_FULL: Final = frozenset({"53100", "53200", "54000"})  # disk, memory, limits
_TIMEOUTS: Final = {
    "55P03": "lock_timeout",
    "57014": "statement_timeout (or a cancel)",
    "25P03": "idle_in_transaction_session_timeout",
}


def connect(
    url: str, *, what: str = "connect", application: str = APPLICATION_NAME
) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommit connection to ``url``.

    Raises:
        StoreOpenError: The server cannot be reached or refused us (the
            message names the URL without its password).
    """
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=application,
        )
    except psycopg.Error as e:
        raise StoreOpenError(redact(url), f"{what}: {redact_text(str(e), url)}") from e


def healthy(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether an idle connection still looks usable, without a round trip.

    A server that restarted or ended the session has sent an error and
    closed the socket. libpq reads what is there without blocking
    (``PQconsumeInput``: a harmless message, a notice or a parameter
    change, is only buffered; the end of the stream is an error). It is
    read twice: a dying server's last message and the end of the stream
    may come in separate reads. No ``select`` first: that call lets go of
    the GIL, and the writer, which checks before every append, then waited
    behind its own callers to get it back (PGW2, interleaved, 5 rounds
    twice: +14% and +17% events/s without it).
    """
    if conn.closed or conn.broken:
        return False
    pgconn = conn.pgconn
    try:
        for _ in range(_STRAY_READS):
            pgconn.consume_input()
            if pgconn.status != ConnStatus.OK:
                return False
    except (OSError, ValueError, psycopg.Error):
        return False
    return True


def is_connection_lost(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether the last error left the connection unusable (then a write's
    outcome is unknown: the server may or may not have committed it)."""
    return conn.closed or conn.broken


def translate_error(
    error: psycopg.Error, url: str, what: str, *, reading: bool = False
) -> SwarmlogError:
    """Turn a psycopg error into the typed error a caller can act on
    (``reading``: a value the server refuses is the query's fault)."""
    text = redact_text(str(error).strip(), url)
    state = error.sqlstate or ""
    setting = _TIMEOUTS.get(state)
    if setting is not None:
        return StorageTimeoutError(setting, f"{what}: {setting} expired ({text})")
    if state in _FULL:
        return StorageFullError(f"{what}: the server is out of room ({text})")
    if reading and state.startswith("22"):  # data exception: a value the server refuses
        return InvalidQueryError(f"{what}: {text}")
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return StorageError(f"{what}: permission denied ({text})")
    return StorageError(f"{what}: {text}")
