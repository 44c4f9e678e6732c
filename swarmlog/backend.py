"""Which storage backend a store's path names, and the options each takes.

``EventStore("events.db")`` (or ``":memory:"``) is SQLite;
``EventStore("postgresql://user:password@host/db")`` (any libpq URI, also
``postgres://``) is PostgreSQL. Runs on the caller's thread (config
validation, ``initialize``). The PostgreSQL driver is imported only when a
PostgreSQL store opens: the SQLite path never imports psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from swarmlog.actors.postgres.url import (
    DEFAULT_SCHEMA,
    check_schema_name,
    is_postgres_url,
    redact,
)
from swarmlog.schema.errors import InvalidConfigError, StoreOpenError

if TYPE_CHECKING:
    import pykka

    from swarmlog.actors.follower import Follower
    from swarmlog.actors.postgres.feed import PostgresChangeProbe
    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import ReadStorage, WriteStorage

__all__ = [
    "DEFAULT_SCHEMA",
    "BackendOptions",
    "check_backend_options",
    "display_path",
    "is_postgres_url",
    "open_postgres_follower",
    "open_postgres_probe",
    "open_postgres_reader",
    "open_postgres_writer",
]

_DEFAULT_WAL_CHECKPOINT_BYTES: Final = 64 << 20
_DEFAULT_AUTO_PERSIST_INTERVAL: Final = 5.0
_INSTALL: Final = "PostgreSQL stores need psycopg: pip install 'swarmlog[postgres]'"


class BackendOptions(Protocol):
    """The options :func:`check_backend_options` looks at (an
    ``EventStoreConfig``)."""

    @property
    def database_path(self) -> str: ...
    @property
    def pg_schema(self) -> str: ...
    @property
    def pragmas(self) -> dict[str, Any] | None: ...
    @property
    def wal_checkpoint_bytes(self) -> int: ...
    @property
    def auto_persist_interval(self) -> float: ...


def check_backend_options(options: BackendOptions) -> None:
    """Refuse options that mean nothing on the path's backend.

    Raises:
        InvalidConfigError: On PostgreSQL: ``pragmas``, WAL checkpoint
            settings, a bad ``pg_schema``. On SQLite: a ``pg_schema`` other
            than the default.
    """
    if not is_postgres_url(str(options.database_path)):
        if options.pg_schema != DEFAULT_SCHEMA:
            msg = "pg_schema is an option of PostgreSQL stores, not SQLite files"
            raise InvalidConfigError(msg)
        return
    check_schema_name(options.pg_schema)
    sqlite_only = []
    if options.pragmas is not None:
        sqlite_only.append("pragmas")
    if options.wal_checkpoint_bytes != _DEFAULT_WAL_CHECKPOINT_BYTES:
        sqlite_only.append("wal_checkpoint_bytes")
    if options.auto_persist_interval != _DEFAULT_AUTO_PERSIST_INTERVAL:
        sqlite_only.append("auto_persist_interval")
    if sqlite_only:
        msg = (
            f"SQLite-only options given for a PostgreSQL store: "
            f"{', '.join(sqlite_only)}"
        )
        raise InvalidConfigError(msg)


def display_path(path: str) -> str:
    """``path`` as swarmlog shows it (a URL without its password)."""
    return redact(path) if is_postgres_url(path) else path


def open_postgres_writer(
    url: str, schema: str, synchronous: str, lock_timeout: float = 30.0
) -> WriteStorage:
    """The writing connection of a PostgreSQL store (creates or migrates its
    schema). Runs on the writer's thread. ``synchronous="normal"`` turns
    the session's ``synchronous_commit`` off: an append that returned
    survives the application's crash, not the server's. ``lock_timeout``:
    seconds a write waits for a row lock outside a round.

    Raises:
        StoreOpenError: psycopg is missing, or the server cannot be reached.
        IncompatibleStoreError: The schema holds a newer layout or
            something else.
    """
    try:
        from swarmlog.actors.postgres.write import PostgresWriteStorage
    except ImportError as e:
        raise StoreOpenError(redact(url), _INSTALL) from e
    return PostgresWriteStorage(
        url,
        schema,
        lock_timeout=lock_timeout,
        synchronous_commit=synchronous == "full",
    )


def open_postgres_reader(
    url: str, schema: str, pool_size: int, *, check: bool
) -> ReadStorage:
    """The reader pool of a PostgreSQL store (``check``: the schema must
    hold a store this code reads; a writing store's writer checked it).

    Raises:
        StoreOpenError: psycopg is missing, the server cannot be reached,
            or (``check``) the schema holds no store.
        IncompatibleStoreError: (``check``) a newer or an older layout.
    """
    try:
        from swarmlog.actors.postgres.read import PostgresReadStorage
    except ImportError as e:
        raise StoreOpenError(redact(url), _INSTALL) from e
    return PostgresReadStorage(url, schema, pool_size=pool_size, check=check)


def open_postgres_follower(
    url: str,
    schema: str,
    reader: ReadStorage,
    head: CommitHead,
    dispatcher: pykka.ActorRef[Any],
    interval: float,
) -> Follower:
    """A read-only PostgreSQL store's follower: woken by the writers'
    NOTIFY hints, polling every ``interval`` seconds as the fallback (not
    started yet)."""
    from swarmlog.actors.postgres.feed import ListeningFollower
    from swarmlog.actors.postgres.sql import Statements

    return ListeningFollower(
        reader, head, dispatcher, interval, url, Statements(schema)
    )


def open_postgres_probe(url: str, schema: str) -> PostgresChangeProbe:
    """A writing PostgreSQL store's look at other processes' commits (a
    ``ChangeProbe`` for the change watcher; connects on first use)."""
    from swarmlog.actors.postgres.feed import PostgresChangeProbe
    from swarmlog.actors.postgres.sql import Statements

    return PostgresChangeProbe(url, Statements(schema))
