"""The ``swarmlog`` command line: every command's output, ``--json``
validity, exit statuses and one-line errors, read-only opens, and ``tail``
following another process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    Event,
    EventStore,
    EventStoreStats,
    Snapshot,
    create_agent_spawned_event,
    create_task_created_event,
)
from swarmlog.cli import (
    INSTALL_HINT,
    main,
    render_simulation,
    simulation_progress,
)
from swarmlog.simulation import SimulationReport, run_simulation

from .support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path


TIMEOUT = 30.0
"""Seconds a subprocess may take before the test is declared hung."""

COMMANDS = (
    "simulate",
    "stats",
    "events",
    "tail",
    "replay",
    "agents",
    "tasks",
    "memory",
    "swarm",
    "snapshot",
    "import",
)
READ_COMMANDS = (
    ["stats"],
    ["events"],
    ["tail", "--timeout", "0"],
    ["replay"],
    ["agents"],
    ["tasks"],
    ["memory"],
    ["swarm"],
    ["snapshot", "{db}", "agent-01"],
)


def _args(command: list[str], db: str) -> list[str]:
    if "{db}" in command:
        return [a.replace("{db}", db) for a in command]
    return [command[0], db, *command[1:]]


def _as_json(value: Any) -> Any:
    return json.loads(msgspec.json.encode(value))


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# -- help ---------------------------------------------------------------------


class TestHelp:
    """Every command documents itself with examples."""

    def test_top_level_help_lists_every_command(self, run: Any) -> None:
        """``swarmlog --help`` names all eleven commands."""
        result = run("--help")
        assert result.exit_code == 0
        for command in COMMANDS:
            assert command in result.stdout

    @pytest.mark.parametrize("command", COMMANDS)
    def test_command_help_has_examples(self, run: Any, command: str) -> None:
        """Each ``--help`` shows runnable examples."""
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.stdout
        assert f"$ swarmlog {command}" in result.stdout

    def test_without_arguments_shows_help(self, run: Any) -> None:
        """Plain ``swarmlog`` prints usage instead of failing obscurely."""
        result = run()
        assert "Usage" in result.output
        assert "simulate" in result.output


# -- simulate -----------------------------------------------------------------


class TestSimulate:
    """``swarmlog simulate``."""

    def test_prints_tables_and_the_proof(self, run: Any, tmp_path: Path) -> None:
        """It prints the read models and the rebuilt == live check."""
        db = str(tmp_path / "s.db")
        result = run("simulate", "--db", db, "--agents", "3", "--tasks", "6")
        assert result.exit_code == 0, result.output
        for text in (
            "Agents",
            "Tasks by status",
            "Memory by namespace",
            "Swarm timeline",
        ):
            assert text in result.stdout
        assert "identical to the live read models" in result.stdout
        assert "events/s" in result.stdout
        assert os.path.exists(db)

    def test_refuses_an_existing_db(self, run: Any, sim: SimulationReport) -> None:
        """An existing --db is refused (one line, exit 1) and left alone."""
        before = _digest(sim.db_path)
        result = run("simulate", "--db", sim.db_path, "--agents", "3", "--tasks", "6")
        assert result.exit_code == 1
        assert "already exists" in one_error_line(result)
        assert "--overwrite" in result.stderr
        assert _digest(sim.db_path) == before

    def test_json_with_overwrite(
        self, run: Any, tmp_path: Path, sim: SimulationReport
    ) -> None:
        """--overwrite replaces the store; --json prints the report, whose
        fingerprint matches an earlier run with the same seed."""
        db = str(tmp_path / "twice.db")
        args = ("simulate", "--db", db, "--agents", "3", "--tasks", "6", "--json")
        assert run(*args).exit_code == 0
        result = run(*args, "--overwrite")
        assert result.exit_code == 0, result.output
        report = msgspec.json.decode(result.stdout, type=SimulationReport)
        assert report.fingerprint == sim.fingerprint
        assert report.rebuilt_matches
        assert report.events == sim.events

    def test_render_pieces_show_a_run(self, tmp_path: Path) -> None:
        """``simulation_progress`` and ``render_simulation`` (what
        ``simulate`` and the example use) print every read model and the
        engine proof around a plain ``run_simulation``."""
        from rich.console import Console

        out = io.StringIO()
        console = Console(file=out, width=100, force_terminal=False)
        with simulation_progress(console, 6) as show:
            report = run_simulation(
                tmp_path / "shown.db", agents=3, tasks=6, on_progress=show
            )
        render_simulation(console, report)
        text = out.getvalue()
        for heading in (
            "Agents",
            "Tasks by status",
            "success rate",
            "Memory by namespace",
            "Hot entries",
            "cold entries",
            "Swarm timeline",
            "events/s",
            "identical to the live read models",
        ):
            assert heading in text

    @pytest.mark.parametrize("option", ["--agents", "--tasks"])
    def test_rejects_empty_swarm(self, run: Any, tmp_path: Path, option: str) -> None:
        """--agents 0 or --tasks 0 is a usage error (exit 2)."""
        result = run("simulate", "--db", str(tmp_path / "e.db"), option, "0")
        assert result.exit_code == 2
        assert option in one_error_line(result)


# -- stats --------------------------------------------------------------------


class TestStats:
    """``swarmlog stats``."""

    def test_table(self, run: Any, sim: SimulationReport) -> None:
        """Counts, types, busiest aggregates and projections with lag."""
        result = run("stats", sim.db_path)
        assert result.exit_code == 0, result.output
        assert f"{sim.events:,} events" in result.stdout
        for text in ("Events by type", "Busiest aggregates", "Projections", "lag"):
            assert text in result.stdout
        for name in ("agents", "tasks", "memory", "swarm"):
            assert name in result.stdout

    def test_json_has_the_stats_field_names(
        self, run: Any, sim: SimulationReport
    ) -> None:
        """--json is one EventStoreStats object, every projection live."""
        result = run("stats", sim.db_path, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert set(data) == set(EventStoreStats.__struct_fields__)
        stats = msgspec.json.decode(result.stdout, type=EventStoreStats)
        assert stats.total_events == sim.events
        assert stats.events_by_type == sim.events_by_type
        assert set(stats.projections) == {"agents", "tasks", "memory", "swarm"}
        for status in stats.projections.values():
            assert status.status == "live"
            assert status.lag == 0


# -- events -------------------------------------------------------------------


class TestEvents:
    """``swarmlog events``."""

    def test_table(self, run: Any, sim: SimulationReport) -> None:
        """A table of positions, types and payload digests."""
        result = run("events", sim.db_path, "--limit", "5")
        assert result.exit_code == 0, result.output
        assert "swarm:initialized" in result.stdout
        assert "5 events" in result.stdout

    def test_json_lines_are_events(self, run: Any, sim: SimulationReport) -> None:
        """--json prints one Event object per line, ISO 8601 timestamps."""
        result = run("events", sim.db_path, "--json")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == sim.events
        positions = []
        for line in lines:
            data = json.loads(line)
            assert set(data) == set(Event.__struct_fields__)
            assert datetime.fromisoformat(data["timestamp"]).tzinfo is not None
            event = msgspec.json.decode(line, type=Event)
            positions.append(event.position)
        assert positions == list(range(1, sim.events + 1))

    def test_filters(self, run: Any, sim: SimulationReport) -> None:
        """--type, --aggregate, --aggregate-type, --from-position and
        --limit narrow the list."""

        def events(*options: str) -> list[dict[str, Any]]:
            result = run("events", sim.db_path, "--json", *options)
            assert result.exit_code == 0, result.output
            return [json.loads(line) for line in result.stdout.splitlines()]

        failed = events("--type", "task:failed", "--type", "agent:failed")
        assert len(failed) == (
            sim.events_by_type["task:failed"] + sim.events_by_type["agent:failed"]
        )
        assert {e["type"] for e in failed} == {"task:failed", "agent:failed"}
        swarm = events("--aggregate", "swarm")
        assert swarm
        assert {e["aggregate_id"] for e in swarm} == {"swarm"}
        memory = events("--aggregate-type", "memory", "--limit", "4")
        assert len(memory) == 4
        assert {e["aggregate_type"] for e in memory} == {"memory"}
        tail = events("--from-position", str(sim.events - 2))
        assert [e["position"] for e in tail] == [
            sim.events - 2,
            sim.events - 1,
            sim.events,
        ]

    def test_time_window(self, run: Any, sim: SimulationReport) -> None:
        """--after/--before take ISO 8601 instants (strict bounds)."""
        first = json.loads(run("events", sim.db_path, "--json", "--limit", "1").stdout)
        start = first["timestamp"]
        result = run("events", sim.db_path, "--json", "--after", start)
        later = [json.loads(line) for line in result.stdout.splitlines()]
        assert later
        assert all(e["timestamp"] > start for e in later)
        result = run("events", sim.db_path, "--json", "--before", start)
        assert result.stdout == ""

    def test_undecodable_argument(self, run: Any, sim: SimulationReport) -> None:
        """Bytes that are not text (a lone surrogate) are a one-line error."""
        result = run("events", sim.db_path, "--aggregate", "agent-\udc80")
        assert result.exit_code in (1, 2)  # 1 once the store types this error
        one_error_line(result)

    @pytest.mark.parametrize(
        ("option", "value"),
        [("--after", "yesterday"), ("--before", "2025-13-01"), ("--limit", "-1")],
    )
    def test_bad_option_values(
        self, run: Any, sim: SimulationReport, option: str, value: str
    ) -> None:
        """A malformed value is a one-line usage error (exit 2)."""
        result = run("events", sim.db_path, option, value)
        assert result.exit_code == 2
        assert option in one_error_line(result)


# -- tail ---------------------------------------------------------------------


class TestTail:
    """``swarmlog tail``."""

    def test_backlog_then_timeout(self, run: Any, sim: SimulationReport) -> None:
        """--lines shows the last events; --timeout 0 stops at once."""
        result = run("tail", sim.db_path, "--lines", "3", "--timeout", "0")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 3
        assert lines[-1].startswith(f"#{sim.events} ")
        assert "swarm:terminated" in lines[-1]
        assert "following" in result.stderr

    def test_json_count(self, run: Any, sim: SimulationReport) -> None:
        """--json prints Event objects; --count stops after that many."""
        result = run(
            "tail", sim.db_path, "--from-position", "1", "--count", "4", "--json"
        )
        assert result.exit_code == 0, result.output
        events = [
            msgspec.json.decode(line, type=Event) for line in result.stdout.splitlines()
        ]
        assert [e.position for e in events] == [1, 2, 3, 4]

    def test_follows_another_process(self, tmp_path: Path) -> None:
        """A tail in another process sees events this process appends
        (while this process holds the writer's lock)."""
        db = tmp_path / "live.db"
        with EventStore(db) as store:
            store.append(create_agent_spawned_event("agent-1", "coder", "core"))
            command = [
                sys.executable,
                "-m",
                "swarmlog.cli",
                "tail",
                str(db),
                "--lines",
                "0",
                "--count",
                "3",
                "--timeout",
                str(TIMEOUT),
                "--interval",
                "0.05",
                "--json",
            ]
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
            watchdog = threading.Timer(TIMEOUT, proc.kill)
            watchdog.start()
            try:
                ready = proc.stderr.readline() if proc.stderr else ""
                assert "following" in ready, ready
                for i in range(3):
                    store.append(
                        create_task_created_event(
                            f"task-{i}", "testing", f"Task {i}", "", "high"
                        )
                    )
                out, err = proc.communicate(timeout=TIMEOUT)
            finally:
                watchdog.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 0, err
        events = [msgspec.json.decode(line, type=Event) for line in out.splitlines()]
        assert [e.aggregate_id for e in events] == ["task-0", "task-1", "task-2"]
        assert [e.position for e in events] == [2, 3, 4]


# -- replay -------------------------------------------------------------------


class TestReplay:
    """``swarmlog replay``."""

    def test_full_replay(self, run: Any, sim: SimulationReport) -> None:
        """It replays every event into the four projections and prints them."""
        result = run("replay", sim.db_path)
        assert result.exit_code == 0, result.output
        assert f"as of position {sim.events}" in result.stdout
        assert "Swarm timeline" in result.stdout

    def test_json_equals_the_live_run(self, run: Any, sim: SimulationReport) -> None:
        """Replayed read models equal the simulation's live ones."""
        result = run("replay", sim.db_path, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["position"] == data["head"] == sim.events
        live = _as_json(sim.read_models)
        for key in ("agents", "tasks", "tasks_by_status", "namespace_usage", "swarm"):
            assert data["read_models"][key] == live[key]

    def test_at_position(self, run: Any, sim: SimulationReport) -> None:
        """--at shows the state as of a position (time travel)."""
        early = json.loads(run("replay", sim.db_path, "--at", "1", "--json").stdout)
        assert early["position"] == 1
        assert early["read_models"]["swarm"]["topology"] == "hierarchical-mesh"
        assert early["read_models"]["swarm"]["phase"] is None
        assert early["read_models"]["agents"] == []
        result = run("replay", sim.db_path, "--at", "1")
        assert result.exit_code == 0
        assert "as of position 1 " in result.stdout

    def test_at_beyond_the_head(self, run: Any, sim: SimulationReport) -> None:
        """A position past the head is a one-line usage error."""
        result = run("replay", sim.db_path, "--at", str(sim.events + 1))
        assert result.exit_code == 2
        assert "beyond the head" in one_error_line(result)


# -- read models --------------------------------------------------------------


class TestReadModels:
    """``agents``, ``tasks``, ``memory`` and ``swarm``."""

    def test_agents(self, run: Any, sim: SimulationReport) -> None:
        """A table of agents; --json with states and health."""
        result = run("agents", sim.db_path)
        assert result.exit_code == 0, result.output
        assert "coordinator" in result.stdout
        assert "agent-01" in result.stdout
        data = json.loads(run("agents", sim.db_path, "--json").stdout)
        assert [a["id"] for a in data["agents"]] == [
            a.id for a in sim.read_models.agents
        ]
        assert len(data["health"]) == len(data["agents"])
        assert data["active_agent_count"] == 0

    def test_agents_filter(self, run: Any, sim: SimulationReport) -> None:
        """--status keeps matching agents only."""
        data = json.loads(
            run("agents", sim.db_path, "--status", "error", "--json").stdout
        )
        assert data["agents"] == []

    def test_tasks(self, run: Any, sim: SimulationReport) -> None:
        """A task table and rates; --json with the same figures."""
        result = run("tasks", sim.db_path)
        assert result.exit_code == 0, result.output
        assert "task-001" in result.stdout
        assert "success rate" in result.stdout
        data = json.loads(run("tasks", sim.db_path, "--json").stdout)
        assert len(data["tasks"]) == 6
        assert data["success_rate"] == sim.read_models.success_rate
        assert data["average_task_duration"] == sim.read_models.average_task_duration
        failed = json.loads(
            run("tasks", sim.db_path, "--status", "failed", "--json").stdout
        )
        assert {t["status"] for t in failed["tasks"]} <= {"failed"}
        assert len(failed["tasks"]) == sim.tasks_failed

    def test_memory(self, run: Any, sim: SimulationReport) -> None:
        """Usage by namespace with hot and cold entries; --json matches."""
        result = run("memory", sim.db_path, "--namespace", "knowledge")
        assert result.exit_code == 0, result.output
        for text in (
            "Memory by namespace",
            "knowledge",
            "cold entries",
            "Entries in knowledge",
        ):
            assert text in result.stdout
        data = json.loads(run("memory", sim.db_path, "--json").stdout)
        assert data["namespaces"] == _as_json(sim.read_models.namespace_usage)
        assert data["total_size"] == sim.read_models.total_memory_size

    def test_swarm(self, run: Any, sim: SimulationReport) -> None:
        """The swarm's timeline; --json is the SwarmState."""
        result = run("swarm", sim.db_path)
        assert result.exit_code == 0, result.output
        assert "Swarm timeline" in result.stdout
        assert "completion" in result.stdout
        data = json.loads(run("swarm", sim.db_path, "--json").stdout)
        assert data == _as_json(sim.read_models.swarm)

    def test_unknown_swarm(self, run: Any, sim: SimulationReport) -> None:
        """An unknown --swarm-id is a one-line error."""
        result = run("swarm", sim.db_path, "--swarm-id", "nope")
        assert result.exit_code == 1
        assert "no swarm 'nope'" in one_error_line(result)


# -- snapshot -----------------------------------------------------------------


class TestSnapshot:
    """``swarmlog snapshot``."""

    def test_shows_the_latest_snapshot(self, run: Any, sim: SimulationReport) -> None:
        """The snapshot's version and state; --json is a Snapshot."""
        result = run("snapshot", sim.db_path, "agent-01")
        assert result.exit_code == 0, result.output
        assert "agent-01" in result.stdout
        assert "version" in result.stdout
        found = msgspec.json.decode(
            run("snapshot", sim.db_path, "swarm", "--json").stdout, type=Snapshot
        )
        assert found.aggregate_id == "swarm"
        assert found.state["terminated"] is True

    def test_missing_snapshot(self, run: Any, sim: SimulationReport) -> None:
        """An aggregate without a snapshot is a one-line error."""
        result = run("snapshot", sim.db_path, "task-001")
        assert result.exit_code == 1
        assert "no snapshot of aggregate 'task-001'" in one_error_line(result)


# -- bad files ----------------------------------------------------------------


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "missing.db")


def _text_file(tmp_path: Path) -> str:
    path = tmp_path / "notes.txt"
    path.write_text("not a database at all\n" * 10)
    return str(path)


def _other_app(tmp_path: Path) -> str:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)  # (its context manager commits, never closes)
    try:
        conn.execute("CREATE TABLE things (x)")
        conn.commit()
    finally:
        conn.close()
    return str(path)


def _newer_schema(tmp_path: Path) -> str:
    path = tmp_path / "newer.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 0x53574C47")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    return str(path)


BAD_FILES = {
    "missing": (_missing, "no such file"),
    "not-sqlite": (_text_file, "not an SQLite file"),
    "other-application": (_other_app, "another application"),
    "newer-schema": (_newer_schema, "newer than this swarmlog"),
}


class TestBadFiles:
    """User mistakes end in one line on stderr and exit 1, never a
    traceback."""

    @pytest.mark.parametrize("bad", BAD_FILES)
    @pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
    def test_one_line_error(
        self, run: Any, tmp_path: Path, command: list[str], bad: str
    ) -> None:
        """Each read command refuses each bad file cleanly."""
        make, message = BAD_FILES[bad]
        db = make(tmp_path)
        before = _digest(db) if os.path.exists(db) else None
        result = run(*_args(command, db))
        assert result.exit_code == 1
        assert message in one_error_line(result)
        assert result.stdout == ""
        assert (_digest(db) if os.path.exists(db) else None) == before


class TestReadOnly:
    """Read commands never write, migrate or lock the store."""

    @pytest.fixture
    def copy(self, tmp_path: Path, sim: SimulationReport) -> str:
        """A private copy of the simulated store."""
        db = str(tmp_path / "copy.db")
        with open(sim.db_path, "rb") as src, open(db, "wb") as dst:
            dst.write(src.read())
        return db

    @pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
    def test_file_unchanged(self, run: Any, copy: str, command: list[str]) -> None:
        """The database file is byte for byte as it was, no lock file is
        taken and nothing is written to the WAL (SQLite may create empty
        -wal/-shm files beside a WAL database a reader opens)."""
        before = _digest(copy)
        result = run(*_args(command, copy))
        assert result.exit_code == 0, result.output
        assert _digest(copy) == before
        assert not os.path.exists(copy + ".lock")
        wal = copy + "-wal"
        assert not os.path.exists(wal) or os.path.getsize(wal) == 0

    @pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
    def test_works_beside_a_writer(
        self, run: Any, copy: str, sim: SimulationReport, command: list[str]
    ) -> None:
        """A live writer holding the store's lock does not stop them."""
        with EventStore(copy) as store:
            result = run(*_args(command, copy))
            assert store.head_position == sim.events
        assert result.exit_code == 0, result.output

    @pytest.mark.parametrize("command", [["stats"], ["agents"], ["replay"]])
    def test_beside_a_writer_that_keeps_appending(
        self, run: Any, copy: str, command: list[str]
    ) -> None:
        """Another store appending all the while does not make a read
        command wait for events it will never see."""
        stop = threading.Event()
        with EventStore(copy) as store:

            def append_until_stopped() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    store.append(
                        create_agent_spawned_event(f"extra-{n}", "coder", "core")
                    )

            writer = threading.Thread(target=append_until_stopped)
            writer.start()
            try:
                result = run(*_args(command, copy), "--json")
            finally:
                stop.set()
                writer.join(TIMEOUT)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)


# -- entry point --------------------------------------------------------------


class TestEntryPoint:
    """The console script and the missing-extra hint."""

    def test_module_entry_point(self, tmp_path: Path) -> None:
        """``python -m swarmlog.cli --help`` runs the same application."""
        proc = subprocess.run(
            [sys.executable, "-m", "swarmlog.cli", "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "simulate" in proc.stdout

    def test_main_returns_exit_status(self, tmp_path: Path) -> None:
        """``main`` returns the status instead of exiting the interpreter."""
        assert main(["stats", str(tmp_path / "missing.db")]) == 1

    @pytest.mark.parametrize("module", ["typer", "rich"])
    def test_hint_without_the_cli_extra(
        self,
        module: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without rich or typer, one line says how to install them."""
        monkeypatch.setitem(sys.modules, module, None)
        assert main(["--help"]) == 1
        err = capsys.readouterr().err
        assert err == INSTALL_HINT + "\n"
        assert "pip install 'swarmlog[cli]'" in err

    def test_import_swarmlog_needs_no_cli_extra(self, tmp_path: Path) -> None:
        """``import swarmlog`` (and ``swarmlog.cli`` itself) never import
        rich or typer."""
        code = (
            "import sys, swarmlog, swarmlog.cli, swarmlog.simulation; "
            "print(sorted(m for m in ('rich', 'typer') if m in sys.modules))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[]"
