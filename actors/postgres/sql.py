"""PostgreSQL DDL and statements of one store schema, built once per store.

Only the PostgreSQL storage modules use these. Every name is qualified by
the store's schema (``pg_schema``, a checked lower-case identifier, quoted
here), so several stores share one database without a ``search_path``.

The tables mirror the SQLite layout (``swarmlog.schema.sql``) so the codec
decodes rows the same way (:data:`~swarmlog.schema.codec.EVENT_COLUMNS`),
with three differences: ``cause`` is two columns (``cause_id``, an event id's
bytes; ``cause_text``, an outside causation id), since a PostgreSQL column
has one type; a one-row ``head`` table holds the committed head; and the
strings a caller chooses freely (aggregate ids, correlation and causation
ids, projection and subscription names) are stored as their UTF-8 bytes
(``bytea``), since a PostgreSQL ``text`` cannot hold a NUL character and
any string is a valid aggregate id.

Positions stay gap-free and in commit order with any number of writing
processes because a position is handed out only with the ``head`` row
locked, in the transaction that commits it: a rollback returns it.
"""

from __future__ import annotations

import hashlib
from typing import Final

from swarmlog.schema.codec import EVENT_COLUMNS, POSITION_OFFSET

__all__ = ["FORMAT_VERSION", "Statements", "channel_name"]

FORMAT_VERSION: Final = 1
"""The layout version recorded in ``<schema>.store_format``."""

PG_INSERT_COLUMNS: Final = (
    "position, id, type, aggregate_id, aggregate_type, version, timestamp, "
    "schema_version, data, cause_id, cause_text, correlation_id"
)
_ARRAY_TYPES: Final = (
    "bigint",  # position
    "bytea",  # id
    "text",  # type
    "bytea",  # aggregate_id (UTF-8)
    "text",  # aggregate_type
    "bigint",  # version
    "bigint",  # timestamp
    "integer",  # schema_version
    "bytea",  # data
    "bytea",  # cause_id
    "bytea",  # cause_text (UTF-8)
    "bytea",  # correlation_id (UTF-8)
)


def channel_name(schema: str) -> str:
    """The NOTIFY channel of the store in ``schema`` (at most 63 bytes, the
    server's limit: a long schema name is hashed)."""
    name = f"swarmlog_{schema}"
    if len(name) <= 63:
        return name
    return f"swarmlog_{hashlib.sha256(schema.encode()).hexdigest()[:40]}"


class Statements:
    """Every statement of the store in schema ``schema`` (already checked
    by :func:`~swarmlog.actors.postgres.url.check_schema_name`)."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        self.schema = schema
        self.lock_key = f"swarmlog:{schema}"  # advisory lock of layout changes
        self.create_schema = f"CREATE SCHEMA IF NOT EXISTS {s}"
        self.format_table = f"{s}.store_format"
        # One row each (the boolean key can only be true).
        self.create: tuple[str, ...] = (
            f"""CREATE TABLE IF NOT EXISTS {s}.store_format (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                format integer NOT NULL,
                created_at bigint NOT NULL
            )""",
            f"""CREATE TABLE IF NOT EXISTS {s}.head (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                position bigint NOT NULL CHECK (position >= 0)
            )""",
            f"INSERT INTO {s}.head (position) VALUES (0) ON CONFLICT DO NOTHING",
            f"""CREATE TABLE IF NOT EXISTS {s}.events (
                position bigint PRIMARY KEY CHECK (position > 0),
                id bytea NOT NULL UNIQUE,
                type text NOT NULL,
                aggregate_id bytea NOT NULL,
                aggregate_type text NOT NULL,
                version bigint NOT NULL,
                timestamp bigint NOT NULL,
                schema_version integer NOT NULL,
                data bytea NOT NULL,
                cause_id bytea,
                cause_text bytea,
                correlation_id bytea,
                UNIQUE (aggregate_id, version)
            )""",
            f"CREATE INDEX IF NOT EXISTS events_by_aggregate_type "
            f"ON {s}.events (aggregate_type)",
            f"CREATE INDEX IF NOT EXISTS events_by_type ON {s}.events (type)",
            f"CREATE INDEX IF NOT EXISTS events_by_timestamp ON {s}.events (timestamp)",
            f"CREATE INDEX IF NOT EXISTS events_by_cause_id ON {s}.events (cause_id) "
            "WHERE cause_id IS NOT NULL",
            f"CREATE INDEX IF NOT EXISTS events_by_cause_text "
            f"ON {s}.events (cause_text) WHERE cause_text IS NOT NULL",
            f"CREATE INDEX IF NOT EXISTS events_by_correlation "
            f"ON {s}.events (correlation_id) WHERE correlation_id IS NOT NULL",
            f"""CREATE TABLE IF NOT EXISTS {s}.snapshots (
                aggregate_id bytea PRIMARY KEY,
                aggregate_type text NOT NULL,
                version bigint NOT NULL,
                state bytea NOT NULL,
                timestamp bigint NOT NULL
            )""",
            f"""CREATE TABLE IF NOT EXISTS {s}.projection_checkpoints (
                name bytea PRIMARY KEY,
                position bigint NOT NULL,
                state_version bigint NOT NULL,
                state bytea NOT NULL,
                updated_at bigint NOT NULL
            )""",
            f"""CREATE TABLE IF NOT EXISTS {s}.subscriptions (
                name bytea PRIMARY KEY,
                position bigint NOT NULL,
                updated_at bigint NOT NULL
            )""",
            f"""CREATE TABLE IF NOT EXISTS {s}.lineage (
                generation bigint PRIMARY KEY,
                source text NOT NULL,
                position bigint NOT NULL,
                forked_at bigint NOT NULL
            )""",
        )
        self.select_format = f"SELECT format FROM {s}.store_format"
        self.insert_format = (
            f"INSERT INTO {s}.store_format (format, created_at) VALUES (%s, %s)"
        )
        self.update_format = f"UPDATE {s}.store_format SET format = %s"

        # -- appends -----------------------------------------------------
        # One statement, one round trip: move the head by the batch's size
        # and insert the rows right after where it was, writing each row's
        # position into its column and its envelope (``POSITION_OFFSET``);
        # it returns where the head was. The UPDATE holds the head row's
        # lock until COMMIT: positions are handed out one transaction at a
        # time, in commit order, and a rollback hands them back. The
        # writer's planned positions therefore only hold when nobody else
        # committed since (always, inside a round, where the writer holds
        # the head already); otherwise the rows land after the others'
        # commits with the same versions, which a uniqueness clash refuses
        # whenever another process touched the same aggregate.
        #
        # The same statement NOTIFYs the store's channel: a wake-up hint for
        # other processes' followers (delivered at COMMIT, never for a
        # rollback; lost hints only delay them to their next poll, as they
        # fetch by position).
        self.channel = channel_name(schema)
        self.append, self.append_one = _append_statements(s, self.channel)
        self.listen = f'LISTEN "{self.channel}"'
        self.lock_head = f"SELECT position FROM {s}.head FOR UPDATE"
        # A round's second statement (simple protocol, its own snapshot after
        # the head's lock was granted): what others committed past the
        # writer's head, with what the version cache needs. ``{after}`` and
        # ``{limit}`` are integers formatted in by the caller.
        self.select_ahead = (
            f"SELECT {EVENT_COLUMNS}, aggregate_id, aggregate_type, version "
            f"FROM {s}.events WHERE position > {{after}} "
            "ORDER BY position LIMIT {limit}"
        )
        self.select_versions_between = f"""
            SELECT DISTINCT ON (aggregate_id) aggregate_id, aggregate_type, version
            FROM {s}.events WHERE position > %s AND position <= %s
            ORDER BY aggregate_id, version DESC
        """
        self.select_head = f"SELECT position FROM {s}.head"
        self.select_aggregate = (
            f"SELECT aggregate_type, version FROM {s}.events "
            "WHERE aggregate_id = %s ORDER BY version DESC LIMIT 1"
        )
        self.select_events = f"SELECT {EVENT_COLUMNS} FROM {s}.events"
        self.select_by_ids = f"{self.select_events} WHERE id = ANY(%b::bytea[])"

        # -- reads -------------------------------------------------------
        self.select_stream = (
            f"{self.select_events} WHERE aggregate_id = %s AND version >= %s "
            "ORDER BY version LIMIT %s"
        )
        self.select_stream_backwards = (
            f"{self.select_events} WHERE aggregate_id = %s AND version >= %s "
            "ORDER BY version DESC LIMIT %s"
        )
        self.select_version = (
            f"SELECT coalesce(max(version), 0) FROM {s}.events WHERE aggregate_id = %s"
        )
        self.select_page = (
            f"{self.select_events} WHERE position > %s ORDER BY position LIMIT %s"
        )
        self.select_page_upto = (
            f"{self.select_events} WHERE position > %s AND position <= %s "
            "ORDER BY position LIMIT %s"
        )
        self.select_event_by_id = f"{self.select_events} WHERE id = %b"
        # Why-queries: as on SQLite (schema/sql.py), a cause is followed
        # only to an event committed before the one it caused, so a walk
        # ends even if stored causation ids form a cycle.
        self.select_causal_chain = f"""
            WITH RECURSIVE chain(position, cause_id) AS (
                SELECT position, cause_id FROM {s}.events WHERE id = %b
                UNION ALL
                SELECT e.position, e.cause_id FROM {s}.events AS e, chain AS c
                WHERE e.id = c.cause_id AND e.position < c.position
            )
            {self.select_events}
            WHERE position IN (SELECT position FROM chain) ORDER BY position
        """
        consequences = """
            WITH RECURSIVE tree(position, id) AS (
                SELECT position, id FROM {s}.events WHERE {root}
                UNION ALL
                SELECT e.position, e.id FROM {s}.events AS e, tree AS t
                WHERE e.cause_id = t.id AND e.position > t.position
            )
            {select} WHERE position IN (SELECT position FROM tree) ORDER BY position
        """
        self.select_consequences_of_id = consequences.format(
            s=s,
            root=(
                "cause_id = %(c)b AND position > coalesce("
                f"(SELECT position FROM {s}.events WHERE id = %(c)b), 0)"
            ),
            select=self.select_events,
        )
        self.select_consequences_of_text = consequences.format(
            s=s, root="cause_text = %(c)b", select=self.select_events
        )
        self.select_correlated = (
            f"{self.select_events} WHERE correlation_id = %s ORDER BY position"
        )

        # -- snapshots, projection snapshots, subscriptions ------------------
        self.upsert_snapshot = f"""
            INSERT INTO {s}.snapshots AS old
                (aggregate_id, aggregate_type, version, state, timestamp)
            VALUES (%s, %s, %s, %b, %s)
            ON CONFLICT (aggregate_id) DO UPDATE SET
                aggregate_type = excluded.aggregate_type,
                version = excluded.version,
                state = excluded.state,
                timestamp = excluded.timestamp
            WHERE excluded.version >= old.version
        """
        self.select_snapshot = (
            "SELECT aggregate_id, aggregate_type, version, state, timestamp "
            f"FROM {s}.snapshots WHERE aggregate_id = %s"
        )
        # Several processes may run the same projection: a snapshot never
        # replaces one further along, unless it is of another state version
        # (the projection's code changed and it rebuilt).
        self.upsert_projection_snapshot = f"""
            INSERT INTO {s}.projection_checkpoints AS old
                (name, position, state_version, state, updated_at)
            VALUES (%s, %s, %s, %b, %s)
            ON CONFLICT (name) DO UPDATE SET
                position = excluded.position,
                state_version = excluded.state_version,
                state = excluded.state,
                updated_at = excluded.updated_at
            WHERE excluded.position >= old.position
                OR excluded.state_version <> old.state_version
        """
        self.select_projection_snapshot = (
            "SELECT position, state_version, state "
            f"FROM {s}.projection_checkpoints WHERE name = %s"
        )
        self.delete_projection_snapshot = (
            f"DELETE FROM {s}.projection_checkpoints WHERE name = %s"
        )
        self.upsert_subscription = f"""
            INSERT INTO {s}.subscriptions (name, position, updated_at)
            VALUES (%s, %s, %s)
            ON CONFLICT (name) DO UPDATE SET
                position = excluded.position, updated_at = excluded.updated_at
        """
        self.delete_subscription = f"DELETE FROM {s}.subscriptions WHERE name = %s"
        self.select_subscription = (
            f"SELECT position FROM {s}.subscriptions WHERE name = %s"
        )
        self.select_subscriptions = (
            f"SELECT name, position FROM {s}.subscriptions ORDER BY name"
        )

        # -- stats -----------------------------------------------------------
        self.stats_totals = (
            "SELECT count(*), coalesce(max(position), 0), min(timestamp), "
            f"max(timestamp) FROM {s}.events"
        )
        self.stats_by_type = f"SELECT type, count(*) FROM {s}.events GROUP BY type"
        self.stats_by_aggregate = (
            f"SELECT aggregate_id, count(*) FROM {s}.events GROUP BY aggregate_id"
        )
        self.stats_snapshots = f"SELECT count(*) FROM {s}.snapshots"
        self.select_lineage = (
            f"SELECT source, position, forked_at FROM {s}.lineage ORDER BY generation"
        )
        self.stats_size = """
            SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
            FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r'
        """


def _append_statements(s: str, channel: str) -> tuple[str, str]:
    """The append statements (any number of rows, one row) of the store in
    schema ``s`` (quoted), NOTIFYing ``channel``."""
    fields = PG_INSERT_COLUMNS.removeprefix("position, ")
    at = POSITION_OFFSET + 1  # overlay counts from 1

    def placed(number: str) -> str:  # the SELECT list of row ``number``
        position = f"moved.base + {number}"
        columns = [f"r.{name}" for name in fields.split(", ")]
        columns[columns.index("r.data")] = (
            f"overlay(r.data placing int8send({position}) from {at} for 8)"
        )
        return ", ".join([position, *columns])

    def append(rows: str, number: str) -> str:
        return f"""
            WITH moved AS (
                UPDATE {s}.head SET position = position + %b::bigint
                RETURNING position - %b::bigint AS base
            ), stored AS (
                INSERT INTO {s}.events ({PG_INSERT_COLUMNS})
                SELECT {placed(number)} FROM moved, {rows}
            )
            SELECT moved.base FROM moved, (SELECT pg_notify('{channel}', ''))
                AS hint
            """

    arrays = ", ".join(f"%b::{t}[]" for t in _ARRAY_TYPES[1:])
    many = append(f"unnest({arrays}) WITH ORDINALITY AS r({fields}, n)", "r.n")
    # One row: a VALUES list (unnest of eleven arrays costs about 80 us more
    # per statement on a 1-event round).
    one_row = ", ".join(f"%b::{t}" for t in _ARRAY_TYPES[1:])
    return many, append(f"(VALUES ({one_row})) AS r({fields})", "1")
