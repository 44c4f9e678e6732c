"""Creating, checking and migrating a store's schema on PostgreSQL.

Runs on the thread that opens the store (the writer's ``on_start``, or
``initialize()`` for a read-only store). A writing store creates what is
missing and migrates an older layout in one transaction (all or nothing),
under an advisory lock, so processes opening the same store at once never
race; every store refuses a newer layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import psycopg

from swarmlog.actors.postgres.connection import translate_error
from swarmlog.actors.postgres.sql import FORMAT_VERSION
from swarmlog.schema.errors import IncompatibleStoreError, StoreOpenError
from swarmlog.schema.timeutil import to_micros, utc_now

if TYPE_CHECKING:
    from swarmlog.actors.postgres.sql import Statements

__all__ = ["MIGRATIONS", "check_layout"]

Connection = psycopg.Connection[tuple[object, ...]]
MigrationStep = str | Callable[[Connection, "Statements"], None]

MIGRATIONS: dict[int, tuple[MigrationStep, ...]] = {}
"""Forward migrations: from layout N to N+1 (SQL, or Python code run on the
migrating connection inside the migration's one transaction). None yet:
layout 1 is the first."""

_TABLES: Final = (
    "head",
    "events",
    "snapshots",
    "projection_checkpoints",
    "subscriptions",
    "lineage",
)
_FOUND_TABLES: Final = (
    "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)"
)


def check_layout(
    conn: Connection, statements: Statements, url: str, path: str, *, create: bool
) -> None:
    """Check the schema holds a swarmlog store this code can use; with
    ``create``, create it when missing and migrate an older layout.

    Args:
        conn: An autocommit connection (left outside any transaction).
        statements: The store's statements.
        url: The URL (for redacting error messages).
        path: The store's displayed name (the URL without its password).
        create: A writing store: create and migrate.

    Raises:
        StoreOpenError: No store in the schema (read-only), or the server
            refused (e.g. no permission to create the schema).
        IncompatibleStoreError: A newer layout, an older one on a read-only
            store, or tables of something else in the schema.
    """
    schema = statements.schema
    try:
        with conn.transaction():
            if create:
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (statements.lock_key,),
                )
            version = _stored_format(conn, statements)
            if version is None:
                if not create:
                    reason = (
                        f"no swarmlog store in schema {schema!r} (read-only "
                        "stores never create one)"
                    )
                    raise StoreOpenError(path, reason)
                _create(conn, statements, path)
                return
            if version > FORMAT_VERSION:
                reason = (
                    f"store layout {version} in schema {schema!r} is newer than "
                    f"this swarmlog's {FORMAT_VERSION}; upgrade swarmlog"
                )
                raise IncompatibleStoreError(path, reason)
            if version < FORMAT_VERSION:
                if not create:
                    reason = (
                        f"store layout {version} in schema {schema!r} is older than "
                        f"this swarmlog's {FORMAT_VERSION}; open it once with a "
                        "writing store to migrate it"
                    )
                    raise IncompatibleStoreError(path, reason)
                _migrate(conn, statements, path, version)
    except psycopg.Error as e:
        raise translate_error(e, url, f"open schema {schema!r}") from e


def _stored_format(conn: Connection, statements: Statements) -> int | None:
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (statements.format_table,)
    ).fetchone()
    if exists is None or not exists[0]:
        return None
    row = conn.execute(statements.select_format).fetchone()
    return None if row is None else int(str(row[0]))


def _create(conn: Connection, statements: Statements, path: str) -> None:
    found = conn.execute(_FOUND_TABLES, (statements.schema, list(_TABLES))).fetchone()
    if found is not None and int(str(found[0])) > 0:
        reason = (
            f"schema {statements.schema!r} holds tables of something that is not "
            "a swarmlog store; choose another pg_schema"
        )
        raise IncompatibleStoreError(path, reason)
    # One simple query (no parameters): one round trip for the whole DDL.
    conn.execute("; ".join((statements.create_schema, *statements.create)))
    conn.execute(statements.insert_format, (FORMAT_VERSION, to_micros(utc_now())))


def _migrate(conn: Connection, statements: Statements, path: str, version: int) -> None:
    while version < FORMAT_VERSION:
        steps = MIGRATIONS.get(version)
        if steps is None:
            reason = f"no migration from store layout {version}"
            raise IncompatibleStoreError(path, reason)
        for step in steps:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn, statements)
        version += 1
        conn.execute(statements.update_format, (version,))
