"""The PostgreSQL writing connection: shared-store rounds, gap-free
positions with several writers, timeouts, lost connections."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from swarmlog import create_agent_started_event
from swarmlog.actors.postgres.connection import StorageTimeoutError
from swarmlog.actors.storage import CommitUnknownError, RequestConflict
from swarmlog.schema.codec import prepare_event
from swarmlog.schema.errors import LockTimeoutError, StorageError
from tests.postgres.conftest import TIMEOUT, lock_waiter, rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.postgres.write import PostgresWriteStorage


def _positions(url: str, schema: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            f'SELECT position FROM "{schema}".events ORDER BY position'
        ).fetchall()
    return [int(r[0]) for r in found]


def _head_holder(url: str, schema: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("BEGIN")
    conn.execute(f'SELECT position FROM "{schema}".head FOR UPDATE')
    return conn


def test_the_storage_is_shared_and_reconnects(
    make_writer: Callable[..., PostgresWriteStorage],
) -> None:
    """A PostgreSQL store is always shared; its writer reconnects after an
    unknown outcome (the committer reads these flags)."""
    writer = make_writer()
    assert writer.shared is True
    assert writer.reconnects_after_unknown is True


def test_the_writing_session_plans_its_statements_once(
    make_writer: Callable[..., PostgresWriteStorage],
) -> None:
    """The writer's session keeps one generic plan per prepared statement
    (planning the append statement at every Bind cost ~75 us of a commit),
    also after a reconnect."""
    writer = make_writer()
    for _ in range(2):
        row = writer._conn.execute("SHOW plan_cache_mode").fetchone()
        assert row == ("force_generic_plan",)
        writer.reconnect()


def _prepared_names(writer: PostgresWriteStorage) -> set[str]:
    found = writer._conn.execute("SELECT name FROM pg_prepared_statements")
    return {str(row[0]) for row in found.fetchall()}


def test_the_append_statements_are_prepared_once_per_connection(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """Appends outside a round go through swarmlog's own prepared
    statements (one-row and many-row), prepared again on a new connection."""
    writer = make_writer()
    names = {"swarmlog_append_one", "swarmlog_append_many"}
    assert writer.write_events(rows(1, 1), 1) == 0
    assert writer.write_events(rows(2, 3), 3) == 1
    assert names <= _prepared_names(writer)
    writer.reconnect()
    assert not names & _prepared_names(writer)
    assert writer.write_events(rows(5, 2), 2) == 4
    assert writer.write_events(rows(7, 1), 1) == 6
    assert names <= _prepared_names(writer)
    assert _positions(pg_url, pg_schema) == list(range(1, 8))


def test_a_deallocated_append_statement_is_prepared_again(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """DEALLOCATE ALL on the writing session (what psycopg sends after a
    ROLLBACK there, or a pooler's DISCARD) costs nothing stored: the next
    append prepares its statement again."""
    writer = make_writer()
    writer.write_events(rows(1, 1), 1)
    writer.write_events(rows(2, 2), 2)
    writer._conn.execute("DEALLOCATE ALL")
    assert writer.write_events(rows(4, 1), 1) == 3
    writer._conn.execute("DEALLOCATE ALL")
    assert writer.write_events(rows(5, 2), 2) == 4
    assert _positions(pg_url, pg_schema) == list(range(1, 7))


def test_rounds_serialize_writers_gap_free(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """Four writers on four connections, each planning on the head its
    round returns: every round commits, positions are 1..N in order."""
    writers = [make_writer() for _ in range(4)]
    failures: list[BaseException] = []

    def work(index: int, writer: PostgresWriteStorage) -> None:
        try:
            for round_ in range(25):
                head = writer.begin_round(TIMEOUT)
                writer.write_events(
                    rows(head + 1, 1 + round_ % 3, prefix=f"w{index}r{round_}p"), 1
                )
        except BaseException as error:
            failures.append(error)

    threads = [
        threading.Thread(target=work, args=(i, w)) for i, w in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 3)
    assert failures == []
    positions = _positions(pg_url, pg_schema)
    assert positions == list(range(1, len(positions) + 1))
    assert len(positions) == 4 * sum(1 + r % 3 for r in range(25))
    assert writers[0].head() == len(positions)


def test_a_conflict_in_a_round_rolls_back_and_releases_the_head(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """A stored id in a round: RequestConflict, nothing stored, and the
    next writer gets the head at once."""
    one, two = make_writer(), make_writer()
    first = rows(1, 1)
    one.write_events(first, 1)
    head = one.begin_round(TIMEOUT)
    with pytest.raises(RequestConflict):
        one.write_events([(head + 1, *first[0][1:])], 1)  # a stored id
    assert two.begin_round(0.5) == 1
    two.abort_round()
    assert _positions(pg_url, pg_schema) == [1]


def test_abort_round_releases_the_head(
    make_writer: Callable[..., PostgresWriteStorage],
) -> None:
    """A round with nothing planned ends without writing."""
    one, two = make_writer(), make_writer()
    assert one.begin_round(TIMEOUT) == 0
    one.abort_round()
    assert two.begin_round(0.5) == 0
    two.abort_round()


def test_a_write_without_a_round_lands_after_the_head_it_finds(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """Rows planned on a stale head are stored right after the committed
    head (the column and the envelope agree), and the write says where."""
    one, two = make_writer(), make_writer()
    assert one.write_events(rows(1, 2), 1) == 0
    assert two.write_events(rows(1, 1, prefix="b"), 1) == 2  # planned at 1
    assert two.write_events(rows(7, 3, prefix="c"), 3) == 3  # planned at 7..9
    assert _positions(pg_url, pg_schema) == [1, 2, 3, 4, 5, 6]
    stored = one.read_after(0, 100)
    assert [e.position for e in stored] == [1, 2, 3, 4, 5, 6]
    assert [e.aggregate_id for e in stored] == ["a1", "a2", "b1", "c7", "c8", "c9"]


def test_a_clash_stores_nothing_and_hands_the_positions_back(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """A stored event id, or an aggregate version another writer took,
    refuses the whole write: nothing stored, the head where it was."""
    one, two = make_writer(), make_writer()
    first = rows(1, 1)
    one.write_events(first, 1)
    with pytest.raises(RequestConflict):
        two.write_events(first, 1)  # the same event again
    taken = prepare_event(create_agent_started_event("a1"), 1 << 20).row(1, 3)
    with pytest.raises(RequestConflict):  # another id, the same aggregate version
        two.write_events([rows(2, 1, prefix="ok")[0], taken], 2)
    assert _positions(pg_url, pg_schema) == [1]
    assert one.head() == 1
    assert two.write_events(rows(2, 1, prefix="d"), 1) == 1


def test_a_lock_timeout_is_a_typed_timeout(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """A head held elsewhere past the timeout: a round gets LockTimeoutError
    (as on SQLite), a write outside a round StorageTimeoutError (both
    TimeoutErrors), nothing held afterwards; the password never shows."""
    writer = make_writer(lock_timeout=0.05)
    holder = _head_holder(pg_url, pg_schema)
    try:
        with pytest.raises(LockTimeoutError) as info:
            writer.begin_round(0.05)
        assert isinstance(info.value, TimeoutError)
        assert info.value.timeout == 0.05
        with pytest.raises(StorageTimeoutError) as later:
            writer.write_events(rows(1, 1), 1)  # without a round: lock_timeout
        assert later.value.setting == "lock_timeout"
    finally:
        holder.close()
    assert writer.begin_round(TIMEOUT) == 0
    writer.abort_round()


def test_a_lost_connection_mid_write_is_unknown_then_the_writer_reconnects(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """The server ends the writer's session while its append waits for the
    head: CommitUnknownError; the next append reconnects and commits."""
    writer = make_writer()
    holder = _head_holder(pg_url, pg_schema)
    outcome: list[BaseException | None] = []

    def append() -> None:
        try:
            writer.write_events(rows(1, 1), 1)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=append)
    thread.start()
    try:
        pid = lock_waiter(holder)
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(TIMEOUT)
    finally:
        holder.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], CommitUnknownError)
    assert _positions(pg_url, pg_schema) == []
    writer.write_events(rows(1, 1), 1)
    assert _positions(pg_url, pg_schema) == [1]


def test_an_unreachable_server_is_a_storage_error_on_reconnect(
    make_writer: Callable[..., PostgresWriteStorage], pg_schema: str, tmp_path: object
) -> None:
    """reconnect() to a server that is gone raises StorageError, typed."""
    writer = make_writer()
    writer._url = f"postgresql://nobody:s3cret@/x?host={tmp_path}&port=1"
    with pytest.raises(StorageError) as info:
        writer.reconnect()
    assert "s3cret" not in str(info.value)


def test_a_lost_connection_inside_a_round_is_unknown_then_the_writer_reconnects(
    make_writer: Callable[..., PostgresWriteStorage], pg_url: str, pg_schema: str
) -> None:
    """The session ends while the round's INSERT waits (another transaction
    holds the same event id, uncommitted): CommitUnknownError, the round is
    gone, and the next round reconnects and commits."""
    writer = make_writer()
    row = rows(1, 1)[0]
    outside = psycopg.connect(pg_url, autocommit=True)
    outcome: list[BaseException | None] = []
    try:
        outside.execute("BEGIN")
        outside.execute(
            f'INSERT INTO "{pg_schema}".events (position, id, type, aggregate_id, '
            "aggregate_type, version, timestamp, schema_version, data) "
            "VALUES (1000, %s, 't', 'x', 'x', 1, 0, 1, '')",
            (row[1],),
        )
        assert writer.begin_round(TIMEOUT) == 0

        def write() -> None:
            try:
                writer.write_events([row], 1)
                outcome.append(None)
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        killer = psycopg.connect(pg_url, autocommit=True)
        try:
            pid = lock_waiter(killer)
            killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        finally:
            killer.close()
        thread.join(TIMEOUT)
    finally:
        outside.close()  # rolls the outside row back
    assert len(outcome) == 1
    assert isinstance(outcome[0], CommitUnknownError)
    writer.abort_round()  # a no-op: the round died with its connection
    assert writer.begin_round(TIMEOUT) == 0
    writer.write_events([row], 1)
    assert _positions(pg_url, pg_schema) == [1]


def _odd_rows(first: int) -> list[tuple[Any, ...]]:
    """Rows whose aggregate ids a text round trip could mangle."""
    ids = ["plain", "nul\x00inside", "é ünïcode ✓", "quote'\"\\back"]
    return [
        prepare_event(create_agent_started_event(aggregate), 1 << 20).row(1, first + i)
        for i, aggregate in enumerate(ids)
    ]


def test_a_round_reads_what_others_committed_in_its_first_round_trip(
    make_writer: Callable[..., PostgresWriteStorage],
) -> None:
    """``begin_round(after=...)`` returns the head and keeps the events
    past ``after``: ``read_after`` and ``versions_after`` from there give
    exactly what another writer committed, odd aggregate ids intact."""
    one, two = make_writer(), make_writer()
    written = _odd_rows(1)
    two.write_events(written, len(written))
    assert one.begin_round(TIMEOUT, after=0) == 4
    events = one.read_after(0, 1000)
    assert [(e.position, e.aggregate_id) for e in events] == [
        (row[0], row[3]) for row in written
    ]
    one.abort_round()
    assert one.begin_round(TIMEOUT, after=1) == 4
    assert one.versions_after(1, 4) == {row[3]: ("agent", 1) for row in written[1:]}
    one.abort_round()
    # Without a round (the idle catch-up) the same answers come from a query.
    assert one.versions_after(0, 2) == {row[3]: ("agent", 1) for row in written[:2]}
    assert [e.position for e in one.read_after(2, 1000)] == [3, 4]


def test_one_row_and_many_row_writes_keep_every_column(
    make_writer: Callable[..., PostgresWriteStorage],
) -> None:
    """The one-row statement and the many-row one store every column as
    given, positions shifted past another writer's commit."""
    one, two = make_writer(), make_writer()
    one.write_events(rows(1, 1), 1)
    odd = _odd_rows(1)  # planned at 1..4, stored at 2..5
    assert two.write_events(odd[:1], 1) == 1
    assert two.write_events(odd[1:], 3) == 2
    stored = one.read_after(1, 1000)
    assert [(e.position, e.aggregate_id, e.version, e.id.bytes) for e in stored] == [
        (row[0] + 1, row[3], row[5], row[1]) for row in odd
    ]
