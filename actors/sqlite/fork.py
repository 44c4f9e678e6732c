"""Fork a SQLite store file at a position, below the storage seam.

A fork is a new store file holding the source's events ``1..position``
byte for byte (same ids, positions, versions, timestamps, envelopes), the
aggregate snapshots whose version was reached at or before that position,
the projection snapshots taken at or before it, the durable subscription
positions at or before it (a later one is dropped: the fork lacks events
that subscriber handled), and the source's lineage
plus one row naming the source and the position.

The copy is one transaction on the new file with the source ATTACHed
read-only: SQLite holds one read snapshot of the source for the whole
transaction, so a writer appending to the source meanwhile changes nothing
in the fork, and the source is never written. Rows are copied with
``INSERT ... SELECT`` inside SQLite (no decode, no Python per row). On any
failure the new file is removed: a fork is all or nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse

from swarmlog.actors.sqlite.files import FileLock
from swarmlog.actors.sqlite.storage import check_format, translate_error
from swarmlog.schema import sql
from swarmlog.schema.errors import (
    IncompatibleStoreError,
    InvalidQueryError,
    StoreOpenError,
    SwarmlogError,
)
from swarmlog.schema.timeutil import to_micros, utc_now

__all__ = ["fork_file"]

_SUFFIXES = ("", "-wal", "-shm", "-journal")


def fork_file(source: str, target: str, at_position: int | None) -> int:
    """Copy the store ``source`` up to ``at_position`` into a new file.

    Runs on the calling thread, with connections of its own (the source
    store's writer and readers are not involved and not blocked: WAL readers
    never block the writer). ``target`` must not exist.

    Args:
        source: The source store file (absolute path).
        target: The new store file.
        at_position: The last position copied (default: the source's head
            in the snapshot the copy reads).

    Returns:
        The position forked at.

    Raises:
        StoreOpenError: ``target`` exists, or its folder does not.
        InvalidQueryError: ``at_position`` is beyond the source's head.
        IncompatibleStoreError: The source is not a current swarmlog store.
        StorageError: SQLite failed (nothing is left behind).
    """
    for suffix in _SUFFIXES:
        if os.path.lexists(target + suffix):
            reason = "already exists; a fork needs a new file"
            raise StoreOpenError(target + suffix, reason)
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise StoreOpenError(target, f"folder {parent!r} does not exist")
    lock = FileLock(target)
    lock_existed = os.path.exists(lock.path)
    lock.acquire()
    try:
        try:
            return _copy(source, target, at_position)
        except BaseException:
            _remove(target)
            if not lock_existed:
                with contextlib.suppress(OSError):
                    os.remove(lock.path)
            raise
    finally:
        lock.release()


def _copy(source: str, target: str, at_position: int | None) -> int:
    try:
        conn = sqlite3.connect(
            f"file:{urllib.parse.quote(target)}?mode=rwc",
            uri=True,
            isolation_level=None,
        )
    except sqlite3.Error as e:
        raise translate_error(e, target, "create fork") from e
    try:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
        except sqlite3.Error as e:
            raise translate_error(e, target, "create fork") from e
        check_format(conn, target, create=True)
        try:
            conn.execute(
                "ATTACH DATABASE ? AS source",
                (f"file:{urllib.parse.quote(source)}?mode=ro",),
            )
        except sqlite3.Error as e:
            raise translate_error(e, source, "open fork source") from e
        try:
            return _transfer(conn, source, at_position)
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise translate_error(e, target, "fork") from e
        except SwarmlogError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _transfer(conn: sqlite3.Connection, source: str, at_position: int | None) -> int:
    conn.execute("BEGIN IMMEDIATE")
    app_id = conn.execute("PRAGMA source.application_id").fetchone()[0]
    version = conn.execute("PRAGMA source.user_version").fetchone()[0]
    if app_id != sql.APPLICATION_ID or version != sql.FORMAT_VERSION:
        reason = (
            f"not a swarmlog store of format {sql.FORMAT_VERSION} "
            f"(application id {app_id:#x}, format {version}); open it with a "
            "writing store first"
        )
        raise IncompatibleStoreError(source, reason)
    head = int(conn.execute(sql.FORK_HEAD).fetchone()[0])
    position = head if at_position is None else at_position
    if position > head:
        msg = f"at_position {position} is beyond the head of {source!r} ({head})"
        raise InvalidQueryError(msg)
    conn.execute(sql.FORK_EVENTS, (position,))
    conn.execute(sql.FORK_SNAPSHOTS, (position,))
    conn.execute(sql.FORK_PROJECTION_SNAPSHOTS, (position,))
    conn.execute(sql.FORK_SUBSCRIPTIONS, (position,))
    conn.execute(sql.FORK_LINEAGE)
    conn.execute(sql.ADD_LINEAGE, (source, position, to_micros(utc_now())))
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE source")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return position


def _remove(path: str) -> None:
    for suffix in _SUFFIXES:
        with contextlib.suppress(OSError):
            os.remove(path + suffix)
