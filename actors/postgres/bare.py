"""The append statement sent with libpq's own calls, and its parameters.

A group commit outside a lock round is one prepared statement and one round
trip (see ``sql``). psycopg's cursor machinery around it (a cursor, a query
object, the dumpers, its prepared-statement cache) cost about 50 us of the
writer's CPU per commit; with sixteen callers on two cores the writer's CPU
is the commit rate (an interleaved A/B of 16 threads, 5 rounds each: 6.9k
-> 8.0k and 7.1k -> 7.9k events/s). :class:`BareAppend` prepares the two
append statements (many rows, one row) once per connection, under names of
its own, and sends each append with ``send_query_prepared``, every
parameter already in the binary format (see ``arrays``). A failure comes
back as the psycopg error psycopg itself raises for it
(``error_from_result``; a lost connection as ``OperationalError``), so the
writing connection handles both paths alike. A statement found deallocated
(psycopg sends ``DEALLOCATE ALL`` after a ROLLBACK on the connection, a
pooler may ``DISCARD``) is prepared again and sent once more: nothing ran.

Runs with the writer's turn held, like the writing connection.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from psycopg import generators
from psycopg.errors import InvalidSqlStatementName, error_from_result
from psycopg.pq import ExecStatus, Format

from swarmlog.actors.postgres.arrays import (
    bytea_array,
    int4_array,
    int8_array,
    text_array,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

    from swarmlog.actors.storage import EventRow

__all__ = ["BareAppend", "append_one_params", "append_params"]

_AGGREGATE: Final = 3  # column indexes in a row (INSERT_COLUMNS order)
_CAUSE: Final = 9
_CORRELATION: Final = 10
_MANY: Final = b"swarmlog_append_many"  # the prepared statements' names
_ONE: Final = b"swarmlog_append_one"
_PLACEHOLDER: Final = re.compile(r"%b")
_BINARY: Final = int(Format.BINARY)


def append_one_params(row: EventRow) -> tuple[Any, ...]:
    """The one-row append statement's parameters (see :func:`append_params`)."""
    cause = row[_CAUSE]
    correlation = row[_CORRELATION]
    return (
        1,
        1,
        *row[1:_AGGREGATE],
        row[_AGGREGATE].encode(),
        *row[_AGGREGATE + 1 : _CAUSE],
        cause if isinstance(cause, bytes) else None,
        cause.encode() if isinstance(cause, str) else None,
        None if correlation is None else correlation.encode(),
    )


def append_params(rows: Sequence[EventRow]) -> tuple[Any, ...]:
    """The append statement's parameters: the head's move (twice), then one
    array per column but the position (``cause`` split into ``cause_id``
    and ``cause_text``), encoded here (see ``arrays``)."""
    (_, ids, types, aggregates, aggregate_types, versions, stamps, layouts, data,
     causes, correlations) = zip(*rows, strict=True)  # fmt: skip
    return (
        len(rows),
        len(rows),
        bytea_array(ids),
        text_array(types),
        bytea_array([a.encode() for a in aggregates]),
        text_array(aggregate_types),
        int8_array(versions),
        int8_array(stamps),
        int4_array(layouts),
        bytea_array(data),
        bytea_array([c if isinstance(c, bytes) else None for c in causes]),
        bytea_array([c.encode() if isinstance(c, str) else None for c in causes]),
        bytea_array([None if c is None else c.encode() for c in correlations]),
    )


def _int8(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def _binary_many(rows: Sequence[EventRow]) -> list[bytes | None]:
    """:func:`append_params` in the binary format."""
    count, moved, *arrays = append_params(rows)
    return [_int8(count), _int8(moved), *(array.data for array in arrays)]


def _binary_one(row: EventRow) -> list[bytes | None]:
    """:func:`append_one_params` in the binary format (the statement's
    types: bigint twice, then ``sql``'s column types)."""
    (
        count, moved, id_, type_, aggregate, aggregate_type, version, stamp,
        layout, data, cause_id, cause_text, correlation,
    ) = append_one_params(row)  # fmt: skip
    return [
        _int8(count),
        _int8(moved),
        id_,
        type_.encode(),
        aggregate,
        aggregate_type.encode(),
        _int8(version),
        _int8(stamp),
        layout.to_bytes(4, "big", signed=True),
        data,
        cause_id,
        cause_text,
        correlation,
    ]


def _numbered(statement: str) -> bytes:
    """``statement`` with its ``%b`` placeholders as ``$1``, ``$2``, ..."""
    counter = iter(range(1, 1 << 16))
    numbered = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", statement)
    if "%" in numbered:
        msg = "the append statement holds a placeholder other than %b"
        raise ValueError(msg)
    return numbered.encode()


class BareAppend:
    """The append statements on one connection at a time, prepared once
    per connection.

    Args:
        many: The many-row statement (``sql.Statements.append``).
        one: The one-row statement (``sql.Statements.append_one``).
    """

    __slots__ = ("_conn", "_queries")

    def __init__(self, many: str, one: str) -> None:
        self._queries = ((_MANY, _numbered(many)), (_ONE, _numbered(one)))
        self._conn: psycopg.Connection[Any] | None = None  # prepared on

    def append(
        self, conn: psycopg.Connection[Any], rows: Sequence[EventRow]
    ) -> int | None:
        """Run the append statement for ``rows`` on ``conn`` (autocommit:
        its own transaction) and return the head it stored them after
        (None: the store has no head row).

        Raises:
            psycopg.Error: As psycopg's own ``execute`` would raise it (a
                uniqueness clash: ``IntegrityError``; a lost connection:
                ``OperationalError``).
        """
        pgconn = conn.pgconn
        if len(rows) == 1:
            name, params = _ONE, _binary_one(rows[0])
        else:
            name, params = _MANY, _binary_many(rows)
        formats = [_BINARY] * len(params)
        for attempt in range(2):
            with conn.lock:
                if self._conn is not conn:
                    self._prepare(conn)
                pgconn.send_query_prepared(
                    name, params, param_formats=formats, result_format=_BINARY
                )
                result = conn.wait(generators.execute(pgconn))[-1]
            if result.status == ExecStatus.TUPLES_OK:
                break
            error = error_from_result(result, encoding=conn.info.encoding)
            if attempt or not isinstance(error, InvalidSqlStatementName):
                raise error
            # Deallocated under us (nothing ran): psycopg sends DEALLOCATE
            # ALL after a ROLLBACK on this connection; a pooler may DISCARD.
            self._conn = None
        value = result.get_value(0, 0) if result.ntuples else None
        return None if value is None else int.from_bytes(value, "big", signed=True)

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Prepare both statements on ``conn`` (connection lock held)."""
        pgconn = conn.pgconn
        for name, query in self._queries:
            pgconn.send_prepare(name, query)
            (result,) = conn.wait(generators.execute(pgconn))[-1:]
            if result.status != ExecStatus.COMMAND_OK:
                raise error_from_result(result, encoding=conn.info.encoding)
        self._conn = conn
