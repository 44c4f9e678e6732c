"""``swarmlog copy`` (file <-> PostgreSQL, file -> file) and the
``--pg-schema`` every command takes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, create_agent_spawned_event
from swarmlog.copy_sqlite import SQLiteTarget
from swarmlog.copying import CopyVerificationError, copy_store, store_digest
from tests.cli.support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog.simulation import SimulationReport
    from tests.pg_server import PgServer


def test_file_to_file(run: Any, sim: SimulationReport, tmp_path: Path) -> None:
    """A file copies into a new file: same digest, a one-line summary."""
    target = tmp_path / "copy.db"
    result = run("copy", str(sim.db_path), str(target))
    assert result.exit_code == 0, result.output
    assert "verified" in result.stdout
    assert store_digest(target) == store_digest(sim.db_path)


def test_json_summary(run: Any, sim: SimulationReport, tmp_path: Path) -> None:
    """--json prints the report: counts, head and checksum."""
    result = run("copy", str(sim.db_path), str(tmp_path / "c.db"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    digest = store_digest(sim.db_path)
    assert report["events"] == digest.counts["events"]
    assert report["head_position"] == digest.head_position
    assert report["checksum"] == digest.checksum


def test_refuses_a_non_empty_file(
    run: Any, sim: SimulationReport, tmp_path: Path
) -> None:
    """A destination file holding events: one error line, exit 1, file kept."""
    target = tmp_path / "full.db"
    with EventStore(target) as store:
        store.append(create_agent_spawned_event("a", "coder", "c"))
    before = store_digest(target)
    result = run("copy", str(sim.db_path), str(target))
    assert result.exit_code == 1
    assert "is not empty (1 events" in one_error_line(result)
    assert store_digest(target) == before


def test_schema_for_a_file_is_refused(
    run: Any, sim: SimulationReport, tmp_path: Path
) -> None:
    """--dest-schema names a PostgreSQL schema: a file destination refuses it."""
    result = run("copy", str(sim.db_path), str(tmp_path / "c.db"), "--dest-schema", "x")
    assert result.exit_code == 1
    assert "pg_schema" in one_error_line(result)
    assert not (tmp_path / "c.db").exists()


def test_sqlite_checksum_mismatch_removes_the_new_file(
    sim: SimulationReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row that reads back changed fails verification; the file the copy
    created is removed."""
    write = SQLiteTarget.write_snapshots

    def corrupt(self: SQLiteTarget, rows: Any) -> None:
        write(self, [(*rows[0][:2], rows[0][2] + 1, *rows[0][3:]), *rows[1:]])

    monkeypatch.setattr(SQLiteTarget, "write_snapshots", corrupt)
    target = tmp_path / "bad.db"
    with pytest.raises(CopyVerificationError) as caught:
        copy_store(sim.db_path, target)
    assert caught.value.differences == ("snapshots: checksum differs",)
    assert not target.exists()


def test_source_in_use_by_a_writing_store(tmp_path: Path) -> None:
    """A running store's file copies (one snapshot: what it appends during
    the copy is not copied); a running store's file is refused as DEST."""
    from swarmlog import StoreLockedError

    source = tmp_path / "live.db"
    with EventStore(source) as store:
        for i in range(3):
            store.append(create_agent_spawned_event(f"a{i}", "coder", "c"))
        report = copy_store(source, tmp_path / "copy.db")
        assert report.events == 3
        with pytest.raises(StoreLockedError):
            copy_store(tmp_path / "copy.db", source)
    assert store_digest(tmp_path / "copy.db") == store_digest(source)


def test_rows_missing_from_the_pages_are_caught(
    sim: SimulationReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages must bring every event the source counts: one fewer read
    than counted fails the copy, and the new file is removed."""
    from swarmlog.copy_sqlite import SQLiteSource

    count = SQLiteSource.event_count
    monkeypatch.setattr(SQLiteSource, "event_count", lambda self: count(self) + 1)
    target = tmp_path / "short.db"
    with pytest.raises(CopyVerificationError) as caught:
        copy_store(sim.db_path, target)
    assert caught.value.differences == (
        f"events: read {sim.events} of {sim.events + 1}",
    )
    assert not target.exists()


class TestPostgres:
    """The command with a PostgreSQL side."""

    def test_both_directions(
        self,
        run: Any,
        sim: SimulationReport,
        tmp_path: Path,
        pg_server: PgServer,
        pg_schema: str,
    ) -> None:
        """File -> URL (--pg-schema) -> file: same digests; progress goes to
        stderr, the summary names the schema."""
        url = pg_server.url
        result = run("copy", str(sim.db_path), url, "--pg-schema", pg_schema)
        assert result.exit_code == 0, result.output
        assert pg_schema in result.stdout
        assert store_digest(url, pg_schema=pg_schema) == store_digest(sim.db_path)
        back = tmp_path / "back.db"
        result = run("copy", url, str(back), "--source-schema", pg_schema, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["events"] == sim.events
        assert store_digest(back) == store_digest(sim.db_path)

    def test_every_reader_command_takes_the_url(
        self, run: Any, sim: SimulationReport, pg_server: PgServer, pg_schema: str
    ) -> None:
        """stats, events, agents, tasks and diff read the copied store on
        PostgreSQL as they read the file."""
        url = pg_server.url
        copy_store(sim.db_path, url, target_schema=pg_schema)
        schema = ("--pg-schema", pg_schema)
        for command in (
            ["stats", "--json"],
            ["events", "--json"],
            ["agents", "--json"],
            ["tasks", "--json"],
        ):
            from_file = run(command[0], str(sim.db_path), *command[1:])
            from_url = run(command[0], url, *command[1:], *schema)
            assert from_url.exit_code == 0, from_url.output
            if command[0] != "stats":  # stats names the path and file size
                assert from_url.stdout == from_file.stdout, command
        result = run("diff", str(sim.db_path), url, *schema)
        assert result.exit_code == 0, result.output

    def test_missing_schema_is_one_error_line(
        self, run: Any, pg_server: PgServer, pg_schema: str
    ) -> None:
        """A schema without a store: exit 1, one line naming it."""
        result = run("events", pg_server.url, "--pg-schema", pg_schema)
        assert result.exit_code == 1
        assert pg_schema in one_error_line(result)

    def test_simulate_into_a_schema(
        self, run: Any, pg_server: PgServer, pg_schema: str
    ) -> None:
        """simulate --db URL runs into a file, then copies it into the
        schema; the report names the URL."""
        url = pg_server.url
        result = run(
            "simulate", "--db", url, "--pg-schema", pg_schema,
            "--agents", "2", "--tasks", "3", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["db_path"].startswith("postgresql://")
        digest = store_digest(url, pg_schema=pg_schema)
        assert digest.counts["events"] == report["events"] > 0

    def test_fork_to_and_from_a_schema(
        self,
        run: Any,
        sim: SimulationReport,
        tmp_path: Path,
        pg_server: PgServer,
        pg_schema: str,
    ) -> None:
        """fork FILE URL --pg-schema S --at N, then fork URL FILE: N events
        each time."""
        url = pg_server.url
        result = run("fork", str(sim.db_path), url, "--pg-schema", pg_schema)
        assert result.exit_code == 0, result.output
        result = run(
            "fork", str(sim.db_path), url, "--pg-schema", pg_schema, "--at", "10",
        )  # fmt: skip
        assert result.exit_code == 1  # the first fork filled the schema
        assert "not empty" in one_error_line(result)
        back = tmp_path / "back.db"
        result = run("fork", url, str(back), "--pg-schema", pg_schema, "--at", "10")
        assert result.exit_code == 0, result.output
        assert store_digest(back).head_position == 10
        assert store_digest(url, pg_schema=pg_schema).counts["events"] == sim.events

    def test_import_into_a_schema(
        self,
        run: Any,
        sim: SimulationReport,
        tmp_path: Path,
        pg_server: PgServer,
        pg_schema: str,
    ) -> None:
        """import URL FILE --pg-schema S stores the exported events there:
        the same events listed back."""
        url = pg_server.url
        exported = run("events", str(sim.db_path), "--json").stdout
        lines = tmp_path / "events.jsonl"
        lines.write_text(exported, "utf-8")
        result = run("import", url, str(lines), "--pg-schema", pg_schema, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["added"] == sim.events
        listed = run("events", url, "--pg-schema", pg_schema, "--json").stdout
        assert listed == exported
