"""Copy a whole store between backends: SQLite file <-> PostgreSQL schema
(and file to file, schema to schema), keeping everything, then verify.

A copy moves the stored rows as they are, never decoded: every event keeps
its id, position, version, timestamp, envelope bytes, causation and
correlation ids; aggregate snapshots, projection snapshots, durable
subscription positions and the fork lineage come along; the destination's
head is the source's, so its next append takes the next position. Event
types need not be registered in the copying process.

The source is read in one snapshot (its writers go on; what they append
after the copy started is not copied). The destination must be empty (a
new file, a new or empty schema): it is filled in one transaction that
keeps other writers out, read back and checked (row counts and a BLAKE2b
checksum per table, the head) against what was read, and committed only
if everything matches: a copy is all or nothing. Events move in pages of
``page_size`` rows, so memory stays flat whatever the store's size.

Runs on the calling thread, with connections of its own (a running store
on either side is not involved; a writing store on a destination file is
refused by its file lock, one on a destination schema waits for the copy).
"""

from __future__ import annotations

import os
from time import perf_counter
from typing import TYPE_CHECKING, Final

import msgspec

from swarmlog.actors.postgres.url import DEFAULT_SCHEMA, is_postgres_url
from swarmlog.copy_rows import (
    TABLES,
    CopyTargetNotEmptyError,
    CopyVerificationError,
    Digest,
    TableDigest,
)
from swarmlog.schema.errors import InvalidConfigError, InvalidQueryError
from swarmlog.schema.timeutil import to_micros, utc_now
from swarmlog.validation import MAX_INT64, check_count

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.copy_rows import LineageRow, RowSource, RowTarget

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "CopyReport",
    "CopyTargetNotEmptyError",
    "CopyVerificationError",
    "Digest",
    "copy_store",
    "fork_store",
    "store_digest",
]

DEFAULT_PAGE_SIZE: Final = 1000
"""Events read and written per page (also aggregate snapshots)."""


class CopyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`copy_store` copied.

    Attributes:
        source: The source (a URL without its password).
        target: The destination (a URL without its password).
        events: Events copied.
        snapshots: Aggregate snapshots copied.
        projection_snapshots: Projection snapshots copied.
        subscriptions: Durable subscription positions copied.
        lineage: Fork lineage rows copied.
        head_position: The destination's head (the source's).
        checksum: The verified checksum over every table (hex).
        seconds: Wall time of the copy, verification included.
    """

    source: str
    target: str
    events: int
    snapshots: int
    projection_snapshots: int
    subscriptions: int
    lineage: int
    head_position: int
    checksum: str
    seconds: float


def _check_path(path: object, what: str) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or path in ("", ":memory:"):
        msg = f"{what} must be a store file or a PostgreSQL URL, got {path!r}"
        raise InvalidConfigError(msg)
    return path


def _source(path: str, schema: str, upto: int | None = None) -> RowSource:
    if is_postgres_url(path):
        from swarmlog.copy_postgres import PostgresSource

        return PostgresSource(path, schema, upto)
    _sqlite_schema(schema)
    from swarmlog.copy_sqlite import SQLiteSource

    return SQLiteSource(path, upto)


def _target(path: str, schema: str) -> RowTarget:
    if is_postgres_url(path):
        from swarmlog.copy_postgres import PostgresTarget

        return PostgresTarget(path, schema)
    _sqlite_schema(schema)
    from swarmlog.copy_sqlite import SQLiteTarget

    return SQLiteTarget(path)


def _sqlite_schema(schema: str) -> None:
    if schema != DEFAULT_SCHEMA:
        msg = "pg_schema is an option of PostgreSQL stores, not SQLite files"
        raise InvalidConfigError(msg)


def _page_size(page_size: object) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        msg = f"page_size must be a positive int, got {page_size!r}"
        raise InvalidQueryError(msg)
    return page_size


def copy_store(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    source_schema: str = DEFAULT_SCHEMA,
    target_schema: str = DEFAULT_SCHEMA,
    page_size: int = DEFAULT_PAGE_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy the whole store ``source`` into the empty store ``target``.

    Runs on the calling thread. Either may be a store file or a PostgreSQL
    URL (``postgresql://user:password@host/db``); a missing file or schema
    is created. See the module docstring for what is kept.

    Args:
        source: The store to copy (never written).
        target: The destination: a new or empty store.
        source_schema: ``pg_schema`` of a PostgreSQL source.
        target_schema: ``pg_schema`` of a PostgreSQL destination.
        page_size: Events per page.
        on_progress: Called after each page with ``(events copied, events
            to copy)``.

    Returns:
        What was copied, with the verified checksum.

    Raises:
        CopyTargetNotEmptyError: ``target`` holds rows; nothing written.
        CopyVerificationError: What was written does not read back as
            what was read; rolled back.
        StoreOpenError: A side cannot be opened (no file, no server, no
            store in the source schema).
        StoreLockedError: A writing store has the destination file open.
        IncompatibleStoreError: A side is not a swarmlog store of this
            version (an older source file: open it once with a writing
            store to migrate it).
        InvalidConfigError: A bad path, or a ``pg_schema`` for a file.
        StorageError: A database failed mid-copy; nothing is left behind.
    """
    return _run(
        _check_path(source, "source"),
        _check_path(target, "target"),
        (source_schema, target_schema),
        _page_size(page_size),
        on_progress,
    )


def fork_store(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    at_position: int | None = None,
    source_schema: str = DEFAULT_SCHEMA,
    target_schema: str = DEFAULT_SCHEMA,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> CopyReport:
    """Copy ``source`` up to ``at_position`` (default: its head) into the
    empty store ``target``, as :meth:`~swarmlog.EventStore.fork` does,
    between any two backends: events ``1..at_position``, the aggregate
    snapshots whose version was reached by then, the projection snapshots
    and subscription positions at or before it, and the lineage plus one
    row naming the source (without a URL's password) and the position.

    Runs on the calling thread; verified like :func:`copy_store`.

    Raises:
        InvalidQueryError: ``at_position`` is not an int from 0 to the
            source's head.
        CopyTargetNotEmptyError: ``target`` holds rows; nothing written.
        (and what :func:`copy_store` raises)
    """
    position = check_count(at_position, "at_position")
    return _run(
        _check_path(source, "source"),
        _check_path(target, "target"),
        (source_schema, target_schema),
        _page_size(page_size),
        None,
        upto=MAX_INT64 if position is None else position,
    )


def _run(
    source: str,
    target: str,
    schemas: tuple[str, str],
    page: int,
    on_progress: Callable[[int, int], None] | None,
    upto: int | None = None,
) -> CopyReport:
    """Copy (``upto``: a fork at that position) and verify."""
    started = perf_counter()
    reader = _source(source, schemas[0], upto)
    try:
        fork = None
        if upto is not None:
            fork = _fork_row(reader, upto)
        writer = _target(target, schemas[1])
        try:
            writer.check_empty()
            read = _move(reader, writer, page, on_progress, fork)
            written = _digest(writer, page)
            differences = read.differences(written)
            if differences:
                raise CopyVerificationError(writer.display, tuple(differences))
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        source_name, target_name = reader.display, writer.display
    finally:
        reader.close()
    return CopyReport(
        source=source_name,
        target=target_name,
        events=read.counts["events"],
        snapshots=read.counts["snapshots"],
        projection_snapshots=read.counts["projection_snapshots"],
        subscriptions=read.counts["subscriptions"],
        lineage=read.counts["lineage"],
        head_position=read.head_position,
        checksum=read.checksum,
        seconds=perf_counter() - started,
    )


def _fork_row(reader: RowSource, upto: int) -> LineageRow:
    """The lineage row a fork at ``upto`` adds (checked against the head)."""
    head = reader.head()  # min(head, upto)
    if upto != MAX_INT64 and head < upto:
        msg = f"at_position {upto} is beyond the head of {reader.display!r} ({head})"
        raise InvalidQueryError(msg)
    generations = [row[0] for row in reader.lineage()]
    return (max(generations, default=0) + 1, reader.display, head, to_micros(utc_now()))


def store_digest(
    path: str | os.PathLike[str],
    *,
    pg_schema: str = DEFAULT_SCHEMA,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Digest:
    """Row counts and checksums of a store (one snapshot), as
    :func:`copy_store` computes them: two stores with equal digests hold the
    same rows. Runs on the calling thread; never writes.

    Raises:
        StoreOpenError: The store cannot be opened.
        IncompatibleStoreError: Not a swarmlog store of this version.
    """
    reader = _source(_check_path(path, "path"), pg_schema)
    try:
        return _digest(reader, _page_size(page_size))
    finally:
        reader.close()


def _move(
    reader: RowSource,
    writer: RowTarget,
    page: int,
    on_progress: Callable[[int, int], None] | None,
    fork: LineageRow | None = None,
) -> Digest:
    """Copy every table, page by page (a fork adds its lineage row); the
    digest of what was read."""
    head = reader.head()
    total = reader.event_count()
    digests = {table: TableDigest() for table in TABLES}
    after, done = 0, 0
    while rows := reader.events(after, page):
        digests["events"].add(rows)
        writer.write_events(rows)
        after = rows[-1][0]
        done += len(rows)
        if on_progress is not None:
            on_progress(done, total)
    if done != total:  # the pages missed rows the snapshot counts
        raise CopyVerificationError(
            writer.display, (f"events: read {done} of {total}",)
        )
    key: str | None = None
    while snapshots := reader.snapshots(key, page):
        digests["snapshots"].add(snapshots)
        writer.write_snapshots(snapshots)
        key = snapshots[-1][0]
    projections = reader.projection_snapshots()
    digests["projection_snapshots"].add(projections)
    writer.write_projection_snapshots(projections)
    subscriptions = reader.subscriptions()
    digests["subscriptions"].add(subscriptions)
    writer.write_subscriptions(subscriptions)
    lineage = [*reader.lineage(), *([fork] if fork else [])]
    digests["lineage"].add(lineage)
    writer.write_lineage(lineage)
    writer.set_head(head)
    if on_progress is not None and done == 0:
        on_progress(0, total)
    return _finish(digests, head)


def _digest(reader: RowSource, page: int) -> Digest:
    """Read every table back, page by page, into a digest."""
    digests = {table: TableDigest() for table in TABLES}
    after = 0
    while rows := reader.events(after, page):
        digests["events"].add(rows)
        after = rows[-1][0]
    key: str | None = None
    while snapshots := reader.snapshots(key, page):
        digests["snapshots"].add(snapshots)
        key = snapshots[-1][0]
    digests["projection_snapshots"].add(reader.projection_snapshots())
    digests["subscriptions"].add(reader.subscriptions())
    digests["lineage"].add(reader.lineage())
    return _finish(digests, reader.head())


def _finish(digests: dict[str, TableDigest], head: int) -> Digest:
    return Digest(
        counts={table: d.count for table, d in digests.items()},
        checksums={table: d.hexdigest() for table, d in digests.items()},
        head_position=head,
    )
