"""SQLite DDL, pragmas and statements, as constants.

Only ``swarmlog.actors.sqlite.storage`` (and the benchmark anchors, which
must do the same physical work) use these; the actors and projections talk
to storage through the seam in ``swarmlog.actors.storage``.
"""

from __future__ import annotations

from typing import Final

from swarmlog.schema.codec import EVENT_COLUMNS, INSERT_COLUMNS

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "SCHEMA",
    "writer_pragmas",
]

APPLICATION_ID: Final = 0x53574C47  # "SWLG" in PRAGMA application_id
FORMAT_VERSION: Final = 3  # PRAGMA user_version of a current store file

# A fork's ancestry, oldest first: the last row is the store it was forked
# from. A fork copies its source's rows and adds one (see actors/sqlite/fork.py).
LINEAGE_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS lineage (
        generation INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        position INTEGER NOT NULL,
        forked_at INTEGER NOT NULL
    )
"""

# Durable subscriptions (format 3): each name's last handled position,
# written through the writer after each handled event (actors/subscription.py).
SUBSCRIPTIONS_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS subscriptions (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )
"""

# Why-queries (format 2): `cause` is the causing event's 16 id bytes when the
# causation_id is a UUID, the text otherwise (schema/causation.py);
# `correlation_id` is the envelope's, as text. Partial indexes: events
# without a cause or correlation (most, in many workloads) cost nothing.
LINK_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS events_by_cause ON events (cause) "
    "WHERE cause IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id) "
    "WHERE correlation_id IS NOT NULL",
)

# `data` holds the whole envelope (msgpack, payload included) so that one
# typed msgspec decode rebuilds an Event; the other columns are what queries
# filter and index on. The reference design also indexes `version` alone;
# every real query filters by aggregate first, which the UNIQUE (aggregate_id,
# version) index serves, so that index would only slow appends down.
SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        type TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        aggregate_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        schema_version INTEGER NOT NULL,
        data BLOB NOT NULL,
        cause BLOB,
        correlation_id TEXT,
        UNIQUE (aggregate_id, version)
    )
    """,
    "CREATE INDEX IF NOT EXISTS events_by_aggregate_type ON events (aggregate_type)",
    "CREATE INDEX IF NOT EXISTS events_by_type ON events (type)",
    "CREATE INDEX IF NOT EXISTS events_by_timestamp ON events (timestamp)",
    *LINK_INDEXES,
    """
    CREATE TABLE IF NOT EXISTS snapshots (
        aggregate_id TEXT PRIMARY KEY,
        aggregate_type TEXT NOT NULL,
        version INTEGER NOT NULL,
        state BLOB NOT NULL,
        timestamp INTEGER NOT NULL
    )
    """,
    # Projection snapshots. The table keeps its old name: renaming it would
    # need a file-format migration for no user gain.
    """
    CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        state_version INTEGER NOT NULL,
        state BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    )
    """,
    LINEAGE_TABLE,
    SUBSCRIPTIONS_TABLE,
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {FORMAT_VERSION}",
)

CACHE_SIZE_KIB: Final = 65536  # 64 MiB page cache: 1.6-1.9x batch throughput


def writer_pragmas(synchronous: str) -> tuple[str, ...]:
    """Pragmas of the one writing connection.

    Automatic checkpoints are off: a checkpointer thread runs PASSIVE
    checkpoints from its own connection, off the commit path.
    """
    return (
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {synchronous.upper()}",
        "PRAGMA wal_autocheckpoint = 0",
        f"PRAGMA cache_size = -{CACHE_SIZE_KIB}",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA busy_timeout = 5000",
    )


READER_PRAGMAS: Final = (
    "PRAGMA query_only = 1",
    "PRAGMA cache_size = -16384",
    "PRAGMA busy_timeout = 5000",
)

_ROW_COLUMNS: Final = len(INSERT_COLUMNS.split(","))
_ROW_MARKS: Final = f"({', '.join('?' * _ROW_COLUMNS)})"
INSERT_EVENT: Final = f"INSERT INTO events ({INSERT_COLUMNS}) VALUES {_ROW_MARKS}"
MAX_ROWS_PER_INSERT: Final = 2900  # 11 columns each: under SQLite's 32766 variables


def insert_events(rows: int) -> str:
    """One INSERT statement for ``rows`` events (a multi-row VALUES list).

    A whole group-committed batch goes to SQLite as one statement: one
    ``sqlite3_step``, so the writer releases and retakes the GIL once per
    transaction instead of once per row.
    """
    values = ", ".join([_ROW_MARKS] * rows)
    return f"INSERT INTO events ({INSERT_COLUMNS}) VALUES {values}"


SELECT_EVENTS: Final = f"SELECT {EVENT_COLUMNS} FROM events"
SELECT_HEAD: Final = "SELECT coalesce(max(position), 0) FROM events"
SELECT_AGGREGATE: Final = (
    "SELECT aggregate_type, version FROM events "
    "WHERE aggregate_id = ? ORDER BY version DESC LIMIT 1"
)
SELECT_STREAM: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events "
    "WHERE aggregate_id = ? AND version >= ? ORDER BY version"
)
# Bounded stream reads (LIMIT -1 is no limit); both walk the UNIQUE
# (aggregate_id, version) index, backwards from the newest for tail reads.
SELECT_STREAM_LIMITED: Final = SELECT_STREAM + " LIMIT ?"
SELECT_STREAM_BACKWARDS: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events "
    "WHERE aggregate_id = ? AND version >= ? ORDER BY version DESC LIMIT ?"
)
SELECT_VERSION: Final = (
    "SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = ?"
)
SELECT_PAGE: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
)
SELECT_PAGE_UPTO: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? AND position <= ? "
    "ORDER BY position LIMIT ?"
)
UPSERT_SNAPSHOT: Final = """
    INSERT INTO snapshots (aggregate_id, aggregate_type, version, state, timestamp)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (aggregate_id) DO UPDATE SET
        aggregate_type = excluded.aggregate_type,
        version = excluded.version,
        state = excluded.state,
        timestamp = excluded.timestamp
    WHERE excluded.version >= snapshots.version
"""
SELECT_SNAPSHOT: Final = (
    "SELECT aggregate_id, aggregate_type, version, state, timestamp "
    "FROM snapshots WHERE aggregate_id = ?"
)
UPSERT_PROJECTION_SNAPSHOT: Final = """
    INSERT INTO projection_checkpoints
        (name, position, state_version, state, updated_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        position = excluded.position,
        state_version = excluded.state_version,
        state = excluded.state,
        updated_at = excluded.updated_at
"""
# Where other processes save too: a projection snapshot never replaces a
# newer one (a later position); a new state_version always replaces.
UPSERT_PROJECTION_SNAPSHOT_NEWER: Final = (
    UPSERT_PROJECTION_SNAPSHOT
    + """    WHERE excluded.position >= projection_checkpoints.position
        OR excluded.state_version != projection_checkpoints.state_version
"""
)
SELECT_PROJECTION_SNAPSHOT: Final = (
    "SELECT position, state_version, state FROM projection_checkpoints WHERE name = ?"
)
DELETE_PROJECTION_SNAPSHOT: Final = "DELETE FROM projection_checkpoints WHERE name = ?"
SELECT_LINEAGE: Final = (
    "SELECT source, position, forked_at FROM lineage ORDER BY generation"
)

MIGRATE_1_TO_2_COLUMNS: Final = (
    LINEAGE_TABLE,
    "ALTER TABLE events ADD COLUMN cause BLOB",
    "ALTER TABLE events ADD COLUMN correlation_id TEXT",
)
"""Format 1 -> 2, before the backfill: the lineage table of forks and the
two columns of the why-queries (appended, as in a new file's table)."""

MIGRATE_2_TO_3: Final = (SUBSCRIPTIONS_TABLE,)
"""Format 2 -> 3: the table of durable subscription positions."""

UPSERT_SUBSCRIPTION: Final = """
    INSERT INTO subscriptions (name, position, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        position = excluded.position, updated_at = excluded.updated_at
"""
DELETE_SUBSCRIPTION: Final = "DELETE FROM subscriptions WHERE name = ?"
SELECT_SUBSCRIPTION: Final = "SELECT position FROM subscriptions WHERE name = ?"
SELECT_SUBSCRIPTIONS: Final = "SELECT name, position FROM subscriptions ORDER BY name"

BACKFILL_PAGE: Final = (
    "SELECT position, data FROM events WHERE position > ? ORDER BY position LIMIT ?"
)
BACKFILL_LINKS: Final = (
    "UPDATE events SET cause = ?, correlation_id = ? WHERE position = ?"
)

# Why-queries. A cause is followed only to an event committed before the one
# it caused (e.position < chain.position), and a consequence only to an event
# committed after its cause: positions strictly fall up a chain and rise down
# a tree, so a walk ends even if stored causation ids form a cycle (ids are
# the caller's: two events may name each other, or one itself); such a
# "cause" committed later is not a cause. Each event has one cause, so the
# consequences form a tree: no event is reached twice.
SELECT_EVENT_BY_ID: Final = f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?"
SELECT_CAUSAL_CHAIN: Final = f"""
    WITH RECURSIVE chain(position, cause) AS (
        SELECT position, cause FROM events WHERE id = ?
        UNION ALL
        SELECT e.position, e.cause FROM events AS e, chain AS c
        WHERE e.id = c.cause AND e.position < c.position
    )
    SELECT {EVENT_COLUMNS} FROM events
    WHERE position IN (SELECT position FROM chain) ORDER BY position
"""
SELECT_CONSEQUENCES: Final = f"""
    WITH RECURSIVE tree(position, id) AS (
        SELECT position, id FROM events WHERE cause = ?1 AND position > coalesce(
            (SELECT position FROM events WHERE id = ?1), 0
        )
        UNION ALL
        SELECT e.position, e.id FROM events AS e, tree AS t
        WHERE e.cause = t.id AND e.position > t.position
    )
    SELECT {EVENT_COLUMNS} FROM events
    WHERE position IN (SELECT position FROM tree) ORDER BY position
"""
SELECT_CORRELATED: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events WHERE correlation_id = ? ORDER BY position"
)

# Fork (actors/sqlite/fork.py): the target is a new store file with the source
# attached read-only as `source`; one transaction, so every read sees one
# snapshot of the source. A snapshot is kept when its version was reached at
# or before the fork's position; a projection snapshot when its position is.
FORK_HEAD: Final = "SELECT coalesce(max(position), 0) FROM source.events"
FORK_EVENTS: Final = (
    f"INSERT INTO main.events ({INSERT_COLUMNS}) "
    f"SELECT {INSERT_COLUMNS} FROM source.events WHERE position <= ? "
    "ORDER BY position"
)
FORK_SNAPSHOTS: Final = """
    INSERT INTO main.snapshots
        (aggregate_id, aggregate_type, version, state, timestamp)
    SELECT s.aggregate_id, s.aggregate_type, s.version, s.state, s.timestamp
    FROM source.snapshots AS s
    WHERE s.version = 0 OR EXISTS (
        SELECT 1 FROM source.events AS e
        WHERE e.aggregate_id = s.aggregate_id AND e.version = s.version
            AND e.position <= ?
    )
"""
FORK_PROJECTION_SNAPSHOTS: Final = """
    INSERT INTO main.projection_checkpoints
        (name, position, state_version, state, updated_at)
    SELECT name, position, state_version, state, updated_at
    FROM source.projection_checkpoints WHERE position <= ?
"""
# A subscription position is kept when it is at or before the fork's
# position (the fork holds every event it handled); a later one is dropped.
FORK_SUBSCRIPTIONS: Final = """
    INSERT INTO main.subscriptions (name, position, updated_at)
    SELECT name, position, updated_at FROM source.subscriptions WHERE position <= ?
"""
FORK_LINEAGE: Final = """
    INSERT INTO main.lineage (generation, source, position, forked_at)
    SELECT generation, source, position, forked_at FROM source.lineage
"""
ADD_LINEAGE: Final = """
    INSERT INTO main.lineage (generation, source, position, forked_at)
    VALUES ((SELECT coalesce(max(generation), 0) + 1 FROM main.lineage), ?, ?, ?)
"""
