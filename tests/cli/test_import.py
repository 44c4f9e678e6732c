"""``swarmlog import`` (issue 17): exported JSON lines back into a store,
with ids, types, timestamps and metadata kept, idempotent by id, unknown
types refused unless ``--plain``; export -> import -> export is identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore

from .support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog.simulation import SimulationReport

TIMEOUT = 60.0
"""Seconds a subprocess may take before the test is declared hung."""


@pytest.fixture(scope="module")
def exported(sim: SimulationReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``swarmlog events --json`` of the simulated store, as a file."""
    from typer.testing import CliRunner

    from swarmlog.cli import build_app

    result = CliRunner().invoke(build_app(), ["events", sim.db_path, "--json"])
    assert result.exit_code == 0, result.output
    path = tmp_path_factory.mktemp("export") / "events.jsonl"
    path.write_text(result.stdout)
    return path


def _export(run: Any, db: str) -> str:
    result = run("events", db, "--json")
    assert result.exit_code == 0, result.output
    text: str = result.stdout
    return text


def _summary(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


class TestRoundTrip:
    """Export -> import -> export gives identical lines."""

    def test_identical_lines(self, run: Any, exported: Path, tmp_path: Path) -> None:
        """Every field survives: ids, types, timestamps, source, metadata,
        causation and correlation ids, and (into an empty store) positions
        and versions."""
        db = str(tmp_path / "copy.db")
        assert not os.path.exists(db)
        result = run("import", db, str(exported))
        assert result.exit_code == 0, result.output
        lines = exported.read_text().splitlines()
        assert f"imported {len(lines):,} events" in result.stdout
        assert f"{len(lines):,} added" in result.stdout
        assert _export(run, db) == exported.read_text()
        sample = [json.loads(line) for line in lines]
        assert any(e["causation_id"] for e in sample)
        assert any(e["correlation_id"] for e in sample)
        assert all(e["metadata"] for e in sample if e["type"] != "effect:recorded")

    def test_from_stdin(self, run: Any, exported: Path, tmp_path: Path) -> None:
        """``-`` reads the lines from stdin."""
        db = str(tmp_path / "piped.db")
        result = run("import", db, "-", "--json", input=exported.read_bytes())
        summary = _summary(result)
        assert summary["read"] == summary["added"] == summary["head_position"]
        assert _export(run, db) == exported.read_text()

    def test_rerun_is_idempotent(
        self, run: Any, exported: Path, tmp_path: Path
    ) -> None:
        """A second import of the same lines adds nothing."""
        db = str(tmp_path / "twice.db")
        first = _summary(run("import", db, str(exported), "--json"))
        second = _summary(run("import", db, str(exported), "--json"))
        assert second["added"] == 0
        assert second["already_stored"] == first["read"]
        assert second["head_position"] == first["head_position"]
        assert _export(run, db) == exported.read_text()

    def test_resumes_an_interrupted_import(
        self, run: Any, exported: Path, tmp_path: Path
    ) -> None:
        """After part of the file went in, the whole file adds the rest
        (batches mixing stored and new ids go one event at a time)."""
        lines = exported.read_text().splitlines(keepends=True)
        part = tmp_path / "part.jsonl"
        part.write_text("".join(lines[:37]))
        db = str(tmp_path / "resumed.db")
        assert _summary(run("import", db, str(part), "--json"))["added"] == 37
        summary = _summary(run("import", db, str(exported), "--json"))
        assert summary["added"] == len(lines) - 37
        assert summary["already_stored"] == 37
        assert _export(run, db) == exported.read_text()


class TestRefusals:
    """Bad input stores nothing and ends in one error line."""

    def test_same_id_other_content(
        self, run: Any, exported: Path, tmp_path: Path
    ) -> None:
        """An id stored with different content is an error naming the line."""
        db = str(tmp_path / "conflict.db")
        run("import", db, str(exported))
        lines = exported.read_text().splitlines()
        changed = json.loads(lines[4])
        changed["source"] = "someone-else"
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps(changed) + "\n")
        result = run("import", db, str(bad))
        assert result.exit_code == 1
        line = one_error_line(result)
        assert "line 1" in line
        assert "different content" in line
        assert _export(run, db) == exported.read_text()

    def test_malformed_line(self, run: Any, exported: Path, tmp_path: Path) -> None:
        """A line that is not an exported event stores nothing at all."""
        lines = exported.read_text().splitlines()
        bad = tmp_path / "broken.jsonl"
        bad.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
        db = tmp_path / "broken.db"
        result = run("import", str(db), str(bad))
        assert result.exit_code == 1
        assert "line 2: not an exported event" in one_error_line(result)
        assert not db.exists()

    def test_unknown_type_without_plain(
        self, run: Any, exported: Path, tmp_path: Path
    ) -> None:
        """An unregistered type is refused (pointing at --plain)."""
        event = json.loads(exported.read_text().splitlines()[0])
        event["type"] = "cli-import:never-registered"
        event["payload"]["type"] = "cli-import:never-registered"
        bad = tmp_path / "unknown.jsonl"
        bad.write_text(json.dumps(event) + "\n")
        db = tmp_path / "unknown.db"
        result = run("import", str(db), str(bad))
        assert result.exit_code == 1
        line = one_error_line(result)
        assert "unknown event type 'cli-import:never-registered'" in line
        assert "--plain" in line
        assert not db.exists()

    def test_missing_file(self, run: Any, tmp_path: Path) -> None:
        """A missing FILE is a usage error."""
        result = run("import", str(tmp_path / "x.db"), str(tmp_path / "none.jsonl"))
        assert result.exit_code == 2
        assert "no such file" in one_error_line(result)

    def test_not_a_store(self, run: Any, exported: Path, tmp_path: Path) -> None:
        """A DB that is not a swarmlog store is refused and left alone."""
        db = tmp_path / "notes.db"
        db.write_text("my precious notes\n" * 10)
        result = run("import", str(db), str(exported))
        assert result.exit_code == 1
        one_error_line(result)
        assert db.read_text() == "my precious notes\n" * 10


PLAIN_WRITER = """
import msgspec
from datetime import datetime, UTC
from swarmlog import EventStore, create_event, register_event_type
from swarmlog import create_agent_spawned_event

class Deployed(msgspec.Struct, frozen=True, tag="cli-import:deployed"):
    service: str
    at: datetime
    replicas: int = 1
    notes: dict[str, list[float]] = {{}}

register_event_type(Deployed, aggregate_type="deployment")
with EventStore({db!r}) as store:
    store.append(create_agent_spawned_event("agent-1", "coder", "core"))
    at = datetime(2025, 1, 6, 9, 30, 0, 123456, tzinfo=UTC)
    store.append(create_event(
        Deployed("api", at, 3, {{"p95": [1.5, 2.0]}}),
        aggregate_id="dep-1",
        metadata={{"round": 2}},
        causation_id="c-1",
        correlation_id="k-1",
        source="deployer",
        timestamp=at,
    ))
    store.append(create_event(Deployed("web", at), aggregate_id="dep-2", timestamp=at))
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process (its registry holds the built-ins only)."""
    return subprocess.run(
        [sys.executable, "-m", "swarmlog.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


class TestPlain:
    """``--plain`` keeps unregistered types as plain data, losslessly."""

    def test_round_trip_of_an_unregistered_type(self, tmp_path: Path) -> None:
        """A process that never registered the type exports it, imports it
        with --plain and exports identical lines; the type's own class then
        reads the imported events."""
        source = str(tmp_path / "custom.db")
        code = textwrap.dedent(PLAIN_WRITER.format(db=source))
        subprocess.run([sys.executable, "-c", code], check=True, timeout=TIMEOUT)
        exported = _cli("events", source, "--json")
        assert exported.returncode == 0, exported.stderr
        path = tmp_path / "custom.jsonl"
        path.write_text(exported.stdout)
        target = str(tmp_path / "plain.db")
        refused = _cli("import", target, str(path))
        assert refused.returncode == 1
        assert "--plain" in refused.stderr
        kept = _cli("import", target, str(path), "--plain", "--json")
        assert kept.returncode == 0, kept.stderr
        summary = json.loads(kept.stdout)
        assert summary["plain_types"] == ["cli-import:deployed"]
        assert summary["added"] == 3
        again = _cli("events", target, "--json")
        assert again.stdout == exported.stdout
        reader = textwrap.dedent(
            PLAIN_WRITER.split("with EventStore", maxsplit=1)[0]
            + f"""
with EventStore({target!r}, read_only=True) as store:
    (first, second) = store.get_events_by_type("cli-import:deployed")
    assert first.payload == Deployed(
        "api", datetime(2025, 1, 6, 9, 30, 0, 123456, tzinfo=UTC), 3,
        {{"p95": [1.5, 2.0]}},
    ), first.payload
    assert second.payload.service == "web" and second.payload.notes == {{}}
"""
        )
        check = subprocess.run(
            [sys.executable, "-c", reader.replace("{{", "{").replace("}}", "}")],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert check.returncode == 0, check.stderr


def test_help(run: Any) -> None:
    """``import --help`` documents FILE, stdin and --plain with examples."""
    result = run("import", "--help")
    assert result.exit_code == 0
    for text in ("FILE", "stdin", "--plain", "$ swarmlog import"):
        assert text in result.stdout


def test_keeps_every_event(run: Any, exported: Path, tmp_path: Path) -> None:
    """The imported store holds the same events, field for field."""
    db = str(tmp_path / "fields.db")
    run("import", db, str(exported))
    with EventStore(db, read_only=True) as store:
        imported = list(store.replay())
    original = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [str(e.id) for e in imported] == [e["id"] for e in original]
    assert [e.type for e in imported] == [e["type"] for e in original]
    assert [e.metadata for e in imported] == [e["metadata"] for e in original]


def test_batches_report_progress() -> None:
    """Events go in batches of BATCH; the progress callback hears the count
    after each, up to the total (what the progress bar shows)."""
    from swarmlog import create_agent_spawned_event
    from swarmlog.cli.importer import BATCH, import_events

    events = [
        (n, create_agent_spawned_event(f"agent-{n}", "coder", "core"))
        for n in range(1, 2 * BATCH + 201)
    ]
    seen: list[int] = []
    with EventStore(":memory:") as store:
        summary = import_events(store, events, on_progress=seen.append)
        again = import_events(store, events)
    assert seen == [BATCH, 2 * BATCH, 2 * BATCH + 200]
    assert summary.added == summary.read == summary.head_position == len(events)
    assert again.added == 0
    assert again.already_stored == len(events)
