"""``swarmlog fork`` and ``swarmlog diff``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from swarmlog import EventStore
from tests.cli.support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog.simulation import SimulationReport


class TestFork:
    """swarmlog fork DB NEW --at N."""

    def test_fork_copies_up_to_the_position(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """The new store holds events 1..N of the source, and its stats name
        the source."""
        new = tmp_path / "fork.db"
        result = run("fork", sim.db_path, str(new), "--at", "40")
        assert result.exit_code == 0, result.output
        assert "at position 40" in result.output
        with (
            EventStore(sim.db_path, read_only=True) as source,
            EventStore(new, read_only=True) as forked,
        ):
            assert list(forked.replay()) == list(source.replay())[:40]
        stats = run("stats", str(new), "--no-projections")
        assert stats.exit_code == 0, stats.output
        assert f"forked from {sim.db_path} at position 40" in stats.output
        data = json.loads(run("stats", str(new), "--json").stdout)
        assert data["lineage"][0]["position"] == 40

    def test_fork_json_and_default_head(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """Without --at the fork takes the head; --json says where."""
        new = tmp_path / "fork.db"
        result = run("fork", sim.db_path, str(new), "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data == {"source": sim.db_path, "path": str(new), "position": sim.events}

    def test_fork_refuses_an_existing_file(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """One error line, exit 1, the existing file untouched."""
        new = tmp_path / "taken.db"
        new.write_bytes(b"keep me")
        result = run("fork", sim.db_path, str(new))
        assert result.exit_code == 1
        assert "already exists" in one_error_line(result)
        assert new.read_bytes() == b"keep me"

    def test_fork_beyond_the_head(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """A position past the head is an error; nothing is created."""
        new = tmp_path / "fork.db"
        result = run("fork", sim.db_path, str(new), "--at", str(sim.events + 1))
        assert result.exit_code == 1
        assert "beyond the head" in one_error_line(result)
        assert not new.exists()


class TestDiff:
    """swarmlog diff A B: exit 0 equal, 1 different, 2 error."""

    def test_a_store_equals_its_fork(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """Exit 0 and 'equal' for every read model."""
        new = tmp_path / "fork.db"
        assert run("fork", sim.db_path, str(new)).exit_code == 0
        result = run("diff", sim.db_path, str(new))
        assert result.exit_code == 0, result.output
        assert "read models: equal" in result.output

    def test_two_positions_differ(self, run: Any, sim: SimulationReport) -> None:
        """Exit 1, and the changes listed per read model."""
        result = run("diff", sim.db_path, sim.db_path, "--at-a", "30")
        assert result.exit_code == 1, result.output
        assert "read models: different" in result.output
        assert "status:" in result.output

    def test_json(self, run: Any, sim: SimulationReport, tmp_path: Path) -> None:
        """--json prints one document: equal, both positions, the four read
        models' additions, removals and changes."""
        result = run("diff", sim.db_path, sim.db_path, "--at-a", "30", "--json")
        assert result.exit_code == 1
        data = json.loads(result.stdout)
        assert data["equal"] is False
        assert (data["at_a"], data["at_b"]) == (30, sim.events)
        assert set(data) >= {"agents", "tasks", "memory", "swarm"}
        assert data["tasks"]["added"] or data["tasks"]["changed"]
        same = json.loads(run("diff", sim.db_path, sim.db_path, "--json").stdout)
        assert same["equal"] is True

    def test_a_missing_store_exits_2(
        self, run: Any, sim: SimulationReport, tmp_path: Path
    ) -> None:
        """Like diff(1): trouble is exit 2, with one error line."""
        result = run("diff", sim.db_path, str(tmp_path / "missing.db"))
        assert result.exit_code == 2
        assert "no such file" in one_error_line(result)

    def test_a_position_beyond_the_head_exits_2(
        self, run: Any, sim: SimulationReport
    ) -> None:
        """A bad --at-b is exit 2 too."""
        result = run("diff", sim.db_path, sim.db_path, "--at-b", "999999")
        assert result.exit_code == 2
        assert "at_b" in one_error_line(result)

    def test_a_negative_position_exits_2(self, run: Any, sim: SimulationReport) -> None:
        """A negative --at-a is a usage error: exit 2."""
        result = run("diff", sim.db_path, sim.db_path, "--at-a", "-1")
        assert result.exit_code == 2
        one_error_line(result)
