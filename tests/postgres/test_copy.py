"""``copy_store`` between SQLite files and PostgreSQL schemas: everything
kept (ids, positions, versions, timestamps, links, snapshots, projection
snapshots, subscription positions), verified, all or nothing."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EventStore,
    create_agent_spawned_event,
    create_task_created_event,
)
from swarmlog.copy_postgres import PostgresTarget
from swarmlog.copying import (
    CopyTargetNotEmptyError,
    CopyVerificationError,
    copy_store,
    store_digest,
)
from swarmlog.simulation import run_simulation


def _task(task_id: str, **envelope: Any) -> Any:
    return create_task_created_event(task_id, "t", "title", "text", "high", **envelope)


if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.pg_server import PgServer


@pytest.fixture
def other_schema(pg_server: PgServer) -> Iterator[str]:
    """A second fresh schema (dropped after the test)."""
    name = pg_server.fresh_schema()
    yield name
    pg_server.drop_schema(name)


def _linked_events(store: EventStore, prefix: str = "") -> None:
    """Events with a unicode aggregate id, causation (an event id and an
    outside id) and a correlation id, plus two subscription positions."""
    first = store.append(create_agent_spawned_event(f"{prefix}agent-é✓", "coder", "c"))
    store.append(
        _task(f"{prefix}task-1", causation_id=str(first.id), correlation_id="job-9")
    )
    store.append(
        _task(f"{prefix}task-2", causation_id="outside-77", correlation_id="job-9")
    )
    store.reset_subscription("mailer", store.head_position - 1)
    store.reset_subscription("audit", 1)


def _rich_file(path: Path) -> str:
    """A simulated store (snapshots, projection snapshots) plus linked events."""
    run_simulation(path, agents=3, tasks=6, seed=7)
    with EventStore(path) as store:
        _linked_events(store)
    return str(path)


def _events(path: str, **options: Any) -> list[Any]:
    with EventStore(path, read_only=True, **options) as store:
        return store.query()


def test_sqlite_to_postgres_and_back(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    """A file copied to PostgreSQL and back holds the same rows (equal
    digests), the same events field by field, and appends go on from the
    copied head with the copied versions."""
    source = _rich_file(tmp_path / "a.db")
    before = store_digest(source)
    progress: list[tuple[int, int]] = []
    report = copy_store(
        source,
        pg_url,
        target_schema=pg_schema,
        page_size=16,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    total = before.counts["events"]
    assert report.events == total == report.head_position
    assert report.snapshots == before.counts["snapshots"] > 0
    assert report.projection_snapshots == before.counts["projection_snapshots"] > 0
    assert report.subscriptions == 2
    assert report.checksum == before.checksum
    assert progress[-1] == (total, total)
    assert len(progress) == -(-total // 16)  # one call per page
    assert store_digest(pg_url, pg_schema=pg_schema) == before
    assert _events(pg_url, pg_schema=pg_schema) == _events(source)

    with EventStore(pg_url, pg_schema=pg_schema) as store:
        version = store.get_version("task-1")
        stored = store.append(_task("task-new"))
        assert stored.position == total + 1
        nxt = store.append(create_agent_spawned_event("agent-é✓", "coder", "c"))
        assert nxt.version == 2
        assert store.get_version("task-1") == version

    back = str(tmp_path / "back.db")
    again = copy_store(pg_url, back, source_schema=pg_schema)
    assert again.events == total + 2
    assert store_digest(back) == store_digest(pg_url, pg_schema=pg_schema)
    assert _events(back) == _events(pg_url, pg_schema=pg_schema)


def test_postgres_store_to_sqlite_file(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    """Events appended on PostgreSQL copy into a new file unchanged."""
    with EventStore(pg_url, pg_schema=pg_schema) as store:
        _linked_events(store, prefix="pg-")
        store.append_many(
            [create_agent_spawned_event(f"bulk-{i}", "coder", "c") for i in range(50)]
        )
    target = str(tmp_path / "from-pg.db")
    report = copy_store(pg_url, target, source_schema=pg_schema, page_size=7)
    assert report.events == 53
    assert report.subscriptions == 2
    assert _events(target) == _events(pg_url, pg_schema=pg_schema)
    with EventStore(target) as store:
        assert store.append(_task("x")).position == 54


def test_postgres_to_postgres_schema(
    pg_url: str, pg_schema: str, other_schema: str
) -> None:
    """One schema copies into another of the same database."""
    with EventStore(pg_url, pg_schema=pg_schema) as store:
        _linked_events(store)
    copy_store(pg_url, pg_url, source_schema=pg_schema, target_schema=other_schema)
    assert store_digest(pg_url, pg_schema=other_schema) == store_digest(
        pg_url, pg_schema=pg_schema
    )


def test_refuses_non_empty_postgres_target(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    """A schema holding events is refused with a typed error, untouched."""
    with EventStore(pg_url, pg_schema=pg_schema) as store:
        store.append(create_agent_spawned_event("there", "coder", "c"))
    before = store_digest(pg_url, pg_schema=pg_schema)
    source = _rich_file(tmp_path / "a.db")
    with pytest.raises(CopyTargetNotEmptyError) as caught:
        copy_store(source, pg_url, target_schema=pg_schema)
    assert caught.value.events == 1
    assert pg_schema in caught.value.target
    assert store_digest(pg_url, pg_schema=pg_schema) == before


def test_empty_schema_of_an_opened_store_is_accepted(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    """A store that was created but never written is an empty destination."""
    EventStore(pg_url, pg_schema=pg_schema).initialize().shutdown()
    report = copy_store(_rich_file(tmp_path / "a.db"), pg_url, target_schema=pg_schema)
    assert report.events > 0


def test_checksum_mismatch_rolls_back(
    tmp_path: Path, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that does not read back as it was read (one flipped byte) fails
    the verification; the destination stays empty, and a later copy works."""
    source = _rich_file(tmp_path / "a.db")
    write = PostgresTarget.write_events

    def corrupt(self: PostgresTarget, rows: Any) -> None:
        rows = list(rows)
        row = list(rows[0])
        row[8] = row[8][:-1] + bytes([row[8][-1] ^ 1])
        rows[0] = tuple(row)
        write(self, rows)

    monkeypatch.setattr(PostgresTarget, "write_events", corrupt)
    with pytest.raises(CopyVerificationError) as caught:
        copy_store(source, pg_url, target_schema=pg_schema)
    assert caught.value.differences == ("events: checksum differs",)
    monkeypatch.undo()
    assert store_digest(pg_url, pg_schema=pg_schema).counts["events"] == 0
    assert copy_store(source, pg_url, target_schema=pg_schema).events > 0


def test_source_schema_without_a_store(pg_url: str, tmp_path: Path) -> None:
    """A source schema holding no store is a StoreOpenError; nothing is
    created at the destination."""
    from swarmlog import StoreOpenError

    target = tmp_path / "t.db"
    with pytest.raises(StoreOpenError):
        copy_store(pg_url, target, source_schema=f"none_{uuid.uuid4().hex[:8]}")
    assert not target.exists()


class TestFork:
    """``EventStore.fork`` with a PostgreSQL side (rows copied by
    ``fork_store``): the same rows a file-to-file fork keeps."""

    def test_file_into_postgres_matches_a_file_fork(
        self, tmp_path: Path, pg_url: str, pg_schema: str
    ) -> None:
        """Forked into a schema at a position: events up to it, the
        snapshots reached by then, the same rows as a file fork (lineage
        aside: its time differs), a lineage row, appends go on after it."""
        source = _rich_file(tmp_path / "a.db")
        at = store_digest(source).head_position // 2
        with EventStore(source) as store:
            with store.fork(tmp_path / "f.db", at_position=at):
                pass
            with store.fork(pg_url, at_position=at, pg_schema=pg_schema) as forked:
                assert forked.head_position == at
                lineage = forked.get_stats().lineage
                assert (lineage[-1].source, lineage[-1].position) == (source, at)
                assert forked.append(_task("after")).position == at + 1
        in_file = store_digest(tmp_path / "f.db")
        in_pg = store_digest(pg_url, pg_schema=pg_schema)
        for table in ("snapshots", "projection_snapshots", "subscriptions"):
            assert in_pg.counts[table] == in_file.counts[table], table
            assert in_pg.checksums[table] == in_file.checksums[table], table
        assert _events(pg_url, pg_schema=pg_schema)[:at] == _events(source)[:at]

    def test_postgres_into_file(
        self, tmp_path: Path, pg_url: str, pg_schema: str
    ) -> None:
        """A PostgreSQL store forks into a new file at a position; the
        lineage names the URL (no password)."""
        with EventStore(pg_url, pg_schema=pg_schema) as store:
            _linked_events(store)
            target = tmp_path / "fork.db"
            with store.fork(target, at_position=2) as forked:
                assert forked.head_position == 2
                assert forked.path == str(target)
                assert forked.get_stats().lineage[-1].source.startswith("postgresql")
            events = store.query()
        assert _events(str(target)) == events[:2]

    def test_beyond_the_head_is_refused(
        self, tmp_path: Path, pg_url: str, pg_schema: str
    ) -> None:
        """at_position past the head: InvalidQueryError, no file left."""
        from swarmlog import InvalidQueryError

        with EventStore(pg_url, pg_schema=pg_schema) as store:
            _linked_events(store)
            with pytest.raises(InvalidQueryError):
                store.fork(tmp_path / "x.db", at_position=99)
        assert not (tmp_path / "x.db").exists()
