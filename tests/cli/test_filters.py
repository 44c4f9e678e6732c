"""Strict command-line filters (issue 17): a misspelled ``--type``,
``--aggregate-type`` or ``--status`` is an error with the known values and
a close match; naive ``--after``/``--before``/``--now`` are refused; ``stats
--json`` honours ``--top``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EventStore,
    create_agent_spawned_event,
    create_agent_status_changed_event,
    create_event,
    register_event_type,
)

from .support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog.simulation import SimulationReport

TIMEOUT = 60.0
"""Seconds a subprocess may take before the test is declared hung."""


class NoteTaken(msgspec.Struct, frozen=True, tag="cli-filters:note-taken"):
    """A custom type registered in this process but never stored."""

    text: str


register_event_type(NoteTaken, aggregate_type="cli-filters-note")

FOREIGN_TYPE = "cli-filters:deployed"
"""A type stored by another process and not registered in this one."""


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding an event of a type this process never registered."""
    db = str(tmp_path_factory.mktemp("foreign") / "foreign.db")
    code = textwrap.dedent(
        f"""
        import msgspec
        from swarmlog import EventStore, create_event, register_event_type
        from swarmlog import create_agent_spawned_event

        class Deployed(msgspec.Struct, frozen=True, tag={FOREIGN_TYPE!r}):
            service: str

        register_event_type(Deployed, aggregate_type="cli-filters-deployment")
        with EventStore({db!r}) as store:
            store.append(create_agent_spawned_event("agent-1", "coder", "core"))
            store.append(create_event(Deployed("api"), aggregate_id="dep-1"))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=TIMEOUT)
    return db


def _lines(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


class TestUnknownValues:
    """A value nothing knows exits 2 with the known values and a close match."""

    def test_misspelled_event_type(self, run: Any, sim: SimulationReport) -> None:
        """``--type task:faild`` suggests task:failed and lists the types."""
        result = run("events", sim.db_path, "--type", "task:faild")
        assert result.exit_code == 2
        line = one_error_line(result)
        assert "unknown --type 'task:faild'" in line
        assert "did you mean task:failed?" in line
        assert "agent:spawned" in line
        assert "cli-filters:note-taken" in line  # registered types are known
        assert result.stdout == ""

    def test_misspelled_aggregate_type(self, run: Any, sim: SimulationReport) -> None:
        """``--aggregate-type agnet`` suggests agent."""
        result = run("events", sim.db_path, "--aggregate-type", "agnet")
        assert result.exit_code == 2
        line = one_error_line(result)
        assert "did you mean agent?" in line
        assert "swarm" in line

    def test_every_value_is_checked(self, run: Any, sim: SimulationReport) -> None:
        """A good value does not excuse a bad one after it."""
        result = run("events", sim.db_path, "-t", "task:failed", "-t", "tsk:queued")
        assert result.exit_code == 2
        assert "did you mean task:queued?" in one_error_line(result)

    def test_no_close_match(self, run: Any, sim: SimulationReport) -> None:
        """Without a close match it still lists the known values."""
        result = run("events", sim.db_path, "--type", "zzzzzz")
        assert result.exit_code == 2
        line = one_error_line(result)
        assert "did you mean" not in line
        assert "known: " in line

    def test_tail_type(self, run: Any, sim: SimulationReport) -> None:
        """``tail --type`` is checked the same way, before following."""
        result = run("tail", sim.db_path, "--type", "task:complted", "--timeout", "0")
        assert result.exit_code == 2
        assert "did you mean task:completed?" in one_error_line(result)

    def test_agent_status(self, run: Any, sim: SimulationReport) -> None:
        """``agents --status actve`` suggests active."""
        result = run("agents", sim.db_path, "--status", "actve")
        assert result.exit_code == 2
        line = one_error_line(result)
        assert "did you mean active?" in line
        assert "idle" in line

    def test_task_status_and_type(self, run: Any, sim: SimulationReport) -> None:
        """``tasks --status`` and ``tasks --type`` (types the store holds)."""
        result = run("tasks", sim.db_path, "--status", "faild")
        assert result.exit_code == 2
        assert "did you mean failed?" in one_error_line(result)
        task_type = sim.read_models.tasks[0].type
        result = run("tasks", sim.db_path, "--type", task_type[:-1])
        assert result.exit_code == 2
        assert f"did you mean {task_type}?" in one_error_line(result)
        found = json.loads(
            run("tasks", sim.db_path, "--type", task_type, "--json").stdout
        )
        assert found["tasks"]
        assert {t["type"] for t in found["tasks"]} == {task_type}


class TestKnownValues:
    """Registered values and values the store holds are accepted."""

    def test_registered_but_absent(self, run: Any, sim: SimulationReport) -> None:
        """A registered type (and aggregate type) not in the store is an
        honest empty answer."""
        result = run(
            "events", sim.db_path, "--json", "--type", "cli-filters:note-taken"
        )
        assert _lines(result) == []
        result = run(
            "events", sim.db_path, "--json", "--aggregate-type", "cli-filters-note"
        )
        assert _lines(result) == []

    def test_known_status_with_no_match(self, run: Any, sim: SimulationReport) -> None:
        """A built-in status no agent has is an empty answer, not an error."""
        data = json.loads(
            run("agents", sim.db_path, "--status", "error", "--json").stdout
        )
        assert data["agents"] == []

    def test_stored_but_unregistered(self, run: Any, foreign: str) -> None:
        """Types only the store knows are accepted and listed."""
        found = _lines(run("events", foreign, "--json", "--type", FOREIGN_TYPE))
        assert [e["aggregate_id"] for e in found] == ["dep-1"]
        found = _lines(
            run(
                "events",
                foreign,
                "--json",
                "--aggregate-type",
                "cli-filters-deployment",
            )
        )
        assert [e["type"] for e in found] == [FOREIGN_TYPE]
        result = run("events", foreign, "--type", "cli-filters:deployd")
        assert result.exit_code == 2
        assert f"did you mean {FOREIGN_TYPE}?" in one_error_line(result)
        result = run("events", foreign, "--aggregate-type", "cli-filters-deploymnt")
        assert result.exit_code == 2
        assert "did you mean cli-filters-deployment?" in one_error_line(result)

    def test_stored_status(self, run: Any, tmp_path: Path) -> None:
        """A status an ``agent:status-changed`` set is a known status."""
        db = str(tmp_path / "paused.db")
        with EventStore(db) as store:
            store.append(create_agent_spawned_event("agent-1", "coder", "core"))
            store.append(create_agent_status_changed_event("agent-1", "idle", "paused"))
            store.append(create_event(NoteTaken("hi"), aggregate_id="note-1"))
        data = json.loads(run("agents", db, "--status", "paused", "--json").stdout)
        assert [a["id"] for a in data["agents"]] == ["agent-1"]
        result = run("agents", db, "--status", "pausd")
        assert result.exit_code == 2
        assert "did you mean paused?" in one_error_line(result)


class TestNaiveInstants:
    """Instants without a timezone are refused, like the API does."""

    @pytest.mark.parametrize("option", ["--after", "--before"])
    def test_events_refuses_naive(
        self, run: Any, sim: SimulationReport, option: str
    ) -> None:
        """A naive --after/--before is a usage error that says how to fix it."""
        result = run("events", sim.db_path, option, "2025-01-06T09:01:00")
        assert result.exit_code == 2
        line = one_error_line(result)
        assert option in line
        assert "no timezone" in line
        assert "Z" in line

    def test_now_refuses_naive(self, run: Any, sim: SimulationReport) -> None:
        """``--now`` too."""
        result = run("agents", sim.db_path, "--now", "2025-01-06")
        assert result.exit_code == 2
        assert "no timezone" in one_error_line(result)

    def test_aware_instants_in_any_offset(
        self, run: Any, sim: SimulationReport
    ) -> None:
        """Z and +02:00 name the same instant."""
        utc = _lines(
            run("events", sim.db_path, "--json", "--after", "2025-01-06T09:01Z")
        )
        offset = _lines(
            run("events", sim.db_path, "--json", "--after", "2025-01-06T11:01+02:00")
        )
        assert utc
        assert utc == offset

    def test_help_says_so(self, run: Any) -> None:
        """``events --help`` says a timezone is needed."""
        result = run("events", "--help")
        assert "timezone" in result.stdout
        assert "naive" in result.stdout


class TestStatsTop:
    """``stats --json`` lists the ``--top`` busiest aggregates, like the table."""

    def _stats(self, run: Any, db: str, *options: str) -> dict[str, Any]:
        result = run("stats", db, "--json", "--no-projections", *options)
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def test_default_top_ten(self, run: Any, sim: SimulationReport) -> None:
        """By default the 10 busiest, most events first, ties by id."""
        with EventStore(sim.db_path, read_only=True) as store:
            every = store.get_stats().events_by_aggregate
        assert len(every) > 10
        busiest = sorted(every.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        data = self._stats(run, sim.db_path)
        assert list(data["events_by_aggregate"].items()) == busiest
        assert data["total_events"] == sim.events

    def test_top_n(self, run: Any, sim: SimulationReport) -> None:
        """``--top 3`` gives three in JSON and in the table; 0 gives none."""
        data = self._stats(run, sim.db_path, "--top", "3")
        assert len(data["events_by_aggregate"]) == 3
        assert self._stats(run, sim.db_path, "--top", "0")["events_by_aggregate"] == {}
        table = run("stats", sim.db_path, "--top", "3", "--no-projections")
        assert "Busiest aggregates (3 of" in table.stdout

    def test_negative_top(self, run: Any, sim: SimulationReport) -> None:
        """``--top -1`` is a usage error."""
        result = run("stats", sim.db_path, "--top", "-1")
        assert result.exit_code == 2
        assert "--top" in one_error_line(result)
