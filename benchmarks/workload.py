"""The benchmark workload: rows, payloads and connections shared by all runs.

25 event types with ~200-byte msgpack payloads, spread round-robin over
1000 streams (aggregates), with time-ordered (UUIDv7 layout) 16-byte ids.
Event ``i`` (0-based) of a run goes to stream ``i % n_streams`` at version
``i // n_streams + 1`` and global position ``i + 1``, so any prefix of the
sequence is a valid store and a later fill continues where an earlier one
stopped.

The SQL (table, indexes, pragmas, statements) is the library's own, from
:mod:`swarmlog.schema.sql`, and so are the rows: :func:`build_rows` has the
library encode each event (untimed) into the exact row it would store, so a
raw anchor writes the same bytes as the library and a store filled here is a
valid swarmlog store. Everything timed in the anchors is bare ``sqlite3`` and
msgspec.
"""

from __future__ import annotations

import sqlite3
import uuid  # noqa: TC003 - msgspec resolves field annotations at runtime
from datetime import datetime  # noqa: TC003 - ditto
from typing import TYPE_CHECKING, Any, Final, Union, cast

import msgspec

from swarmlog.schema.codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    EVENT_COLUMNS,
    prepare_event,
)
from swarmlog.schema.factories import create_event
from swarmlog.schema.registry import register_event_type
from swarmlog.schema.sql import (
    INSERT_EVENT,
    READER_PRAGMAS,
    SCHEMA,
    SELECT_HEAD,
    writer_pragmas,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "AGGREGATE_TYPE",
    "DATA_COLUMN",
    "EVENT_TYPES",
    "N_STREAMS",
    "N_TYPES",
    "PAYLOAD_TYPES",
    "SCHEMA_VERSION",
    "SOURCE",
    "BenchEnvelope",
    "BenchPayload",
    "Row",
    "build_rows",
    "checkpoint",
    "envelope_decoder",
    "fill_store",
    "head",
    "make_payload",
    "make_payloads",
    "open_reader",
    "open_writer",
    "payload_decoder",
    "register_workload_types",
    "stream_id",
    "write_batches",
]

N_TYPES: Final = 25
N_STREAMS: Final = 1000
AGGREGATE_TYPE: Final = "bench"
SOURCE: Final = "bench"
SCHEMA_VERSION: Final = 1

Row = tuple[Any, ...]
"""One ``events`` row, in ``swarmlog.schema.codec.INSERT_COLUMNS`` order."""

DATA_COLUMN: Final = EVENT_COLUMNS.split(", ").index("data")
"""Where the encoded envelope sits in a row read with the library's SELECTs."""


class BenchPayload(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Fields shared by the 25 benchmark payload types (~200 bytes encoded)."""

    agent_id: str
    task_id: str
    status: str
    detail: str
    attempt: int
    score: float
    labels: tuple[str, ...] = ()


EVENT_TYPES: Final = tuple(f"bench:event-{k:02d}" for k in range(N_TYPES))
"""The event type strings; each is also its payload's msgspec tag."""

PAYLOAD_TYPES: Final[tuple[type[BenchPayload], ...]] = tuple(
    cast(
        "type[BenchPayload]",
        msgspec.defstruct(
            f"BenchEvent{k:02d}",
            [],
            bases=(BenchPayload,),
            tag=type_name,
            frozen=True,
            kw_only=True,
            gc=False,
            module=__name__,
        ),
    )
    for k, type_name in enumerate(EVENT_TYPES)
)
"""One tagged Struct per event type, in :data:`EVENT_TYPES` order."""

_STATUSES: Final = ("queued", "running", "blocked", "completed", "failed")
_DETAIL: Final = "agent reported progress on its subtask; see artefacts"


def payload_decoder() -> msgspec.msgpack.Decoder[BenchPayload]:
    """A typed decoder of the tagged union of all 25 payload types."""
    union: Any = Union[PAYLOAD_TYPES]  # noqa: UP007 - a runtime tuple of types
    return msgspec.msgpack.Decoder(union)


_PayloadUnion: Any = Union[PAYLOAD_TYPES]  # noqa: UP007 - ditto


class BenchEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A bare struct for the stored envelope (the ``data`` column): the
    library's envelope fields, the payload typed as the 25-type union."""

    position: int = 0
    version: int = 0
    id: uuid.UUID
    type: str
    aggregate_id: str
    aggregate_type: str
    payload: _PayloadUnion
    timestamp: datetime
    source: str = "swarm"
    metadata: dict[str, Any] = {}
    causation_id: str | None = None
    correlation_id: str | None = None
    schema_version: int = 1


def envelope_decoder() -> msgspec.msgpack.Decoder[BenchEnvelope]:
    """A typed decoder of one stored ``data`` column (envelope + payload)."""
    return msgspec.msgpack.Decoder(BenchEnvelope)


def register_workload_types() -> None:
    """Register the 25 payload classes as swarmlog event types (idempotent)."""
    for cls in PAYLOAD_TYPES:
        register_event_type(cls, aggregate_type=AGGREGATE_TYPE)


def stream_id(index: int) -> str:
    """The aggregate id of stream ``index``."""
    return f"stream-{index:04d}"


def _type_index(i: int, n_streams: int) -> int:
    # Varies along a stream as well as across streams.
    return (i + i // n_streams) % N_TYPES


def make_payload(i: int, n_streams: int = N_STREAMS) -> BenchPayload:
    """The payload of event ``i`` of the sequence."""
    cls = PAYLOAD_TYPES[_type_index(i, n_streams)]
    return cls(
        agent_id=f"agent-{i % 64:02d}-0190c3d2-7b1e-7c4a",
        task_id=f"task-{i:010d}",
        status=_STATUSES[i % len(_STATUSES)],
        detail=_DETAIL,
        attempt=i % 7,
        score=(i % 1000) / 7.0,
        labels=("swarm", f"wave-{i % 13}"),
    )


def make_payloads(n: int, start: int = 0) -> list[BenchPayload]:
    """Payloads of events ``start .. start + n - 1``."""
    return [make_payload(i) for i in range(start, start + n)]


def build_rows(n: int, *, start: int = 0, n_streams: int = N_STREAMS) -> list[Row]:
    """Ready-to-insert rows of events ``start .. start + n - 1``.

    Each row is what the library itself would store for the event (its
    ``prepare_event`` and row builder, with the event's version and
    position); ids are time-ordered (UUIDv7). Encoding happens here, before
    any timing.
    """
    register_workload_types()
    limit = DEFAULT_MAX_PAYLOAD_BYTES
    rows: list[Row] = []
    for i in range(start, start + n):
        event = create_event(
            make_payload(i, n_streams), stream_id(i % n_streams), source=SOURCE
        )
        prepared = prepare_event(event, limit)
        rows.append(prepared.row(i // n_streams + 1, i + 1))
    return rows


def open_writer(
    path: str, synchronous: str, *, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A writing connection: library pragmas, then the library schema."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread
    )
    for pragma in writer_pragmas(synchronous):
        conn.execute(pragma)
    for statement in SCHEMA:
        conn.execute(statement)
    return conn


def open_reader(path: str) -> sqlite3.Connection:
    """A reading connection with the library's reader pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in READER_PRAGMAS:
        conn.execute(pragma)
    return conn


def write_batches(conn: sqlite3.Connection, rows: Sequence[Row], batch: int) -> None:
    """Insert ``rows``, ``batch`` rows per explicit transaction."""
    for lo in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(INSERT_EVENT, rows[lo : lo + batch])
        conn.execute("COMMIT")


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database file and truncate it (untimed upkeep)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def head(conn: sqlite3.Connection) -> int:
    """The highest position in the store (0 when empty)."""
    row = conn.execute(SELECT_HEAD).fetchone()
    return int(row[0])


def fill_store(
    path: str,
    n: int,
    *,
    n_streams: int = N_STREAMS,
    synchronous: str = "normal",
    batch: int = 1000,
) -> int:
    """Append events to the store at ``path`` until it holds ``n`` (untimed).

    The store is created if missing; an existing one must have been filled
    with the same ``n_streams``. Ends with a TRUNCATE checkpoint.

    Returns:
        The number of events in the store.
    """
    conn = open_writer(path, synchronous)
    try:
        have = head(conn)
        step = 50_000  # bounds the memory of pre-built rows
        while have < n:
            count = min(step, n - have)
            write_batches(
                conn, build_rows(count, start=have, n_streams=n_streams), batch
            )
            have += count
        checkpoint(conn)
        return have
    finally:
        conn.close()
