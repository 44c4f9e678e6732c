"""The data step of the format 1 -> 2 migration: fill the why-query columns.

Format 2 adds ``cause`` and ``correlation_id`` to ``events``. Both are
copies of envelope fields, so they are filled from the stored envelopes
themselves, in pages of positions, inside the migration's one transaction
(all or nothing: a failure leaves the file at format 1). Each envelope is
decoded into a two-field struct: msgspec skips everything else, payload
included, without building it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from swarmlog.schema import sql
from swarmlog.schema.causation import cause_key
from swarmlog.schema.errors import EventDecodeError

if TYPE_CHECKING:
    import sqlite3

__all__ = ["backfill_links"]

_PAGE: Final = 20_000  # rows read, then updated, at a time (bounded memory)


class _Links(msgspec.Struct):
    causation_id: str | None = None
    correlation_id: str | None = None


_decode_links = msgspec.msgpack.Decoder(_Links).decode


def backfill_links(conn: sqlite3.Connection) -> None:
    """Set ``cause`` and ``correlation_id`` of every stored event from its
    envelope (runs on the migrating connection, in its transaction).

    Raises:
        EventDecodeError: An envelope is damaged (the migration rolls back;
            the store cannot be opened for writing until it is repaired).
    """
    after = 0
    while True:
        rows = conn.execute(sql.BACKFILL_PAGE, (after, _PAGE)).fetchall()
        if not rows:
            return
        updates = []
        for position, data in rows:
            try:
                links = _decode_links(data)
            except msgspec.MsgspecError as e:
                raise EventDecodeError(position, f"migrate: {e}") from e
            if links.causation_id is not None or links.correlation_id is not None:
                updates.append(
                    (cause_key(links.causation_id), links.correlation_id, position)
                )
        if updates:
            conn.executemany(sql.BACKFILL_LINKS, updates)
        after = rows[-1][0]
