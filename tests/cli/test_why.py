"""``swarmlog why`` and ``swarmlog events --correlation``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from swarmlog import EventStore, create_agent_started_event
from tests.cli.support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path

    from swarmlog import Event


def _store(path: Path) -> list[Event]:
    """root -> (a -> c, b), and an unrelated event; all in conversation t-1
    but the unrelated one."""
    with EventStore(path) as store:
        root = store.append(create_agent_started_event("root", correlation_id="t-1"))
        a = store.append(
            create_agent_started_event(
                "a", causation_id=str(root.id), correlation_id="t-1"
            )
        )
        other = store.append(create_agent_started_event("other"))
        b = store.append(
            create_agent_started_event(
                "b", causation_id=str(root.id), correlation_id="t-1"
            )
        )
        c = store.append(
            create_agent_started_event(
                "c", causation_id=str(a.id), correlation_id="t-1"
            )
        )
    return [root, a, other, b, c]


class TestWhy:
    """swarmlog why DB EVENT_ID."""

    def test_causes_and_tree(self, run: Any, tmp_path: Path) -> None:
        """The chain root first, then the consequences as a tree."""
        path = tmp_path / "why.db"
        root, a, _, b, c = _store(path)
        result = run("why", str(path), str(a.id))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].startswith(f"Why #{a.position} agent:started a")
        assert lines[1].lstrip().startswith(f"#{root.position} ")
        assert lines[2].startswith("→")
        assert f"#{a.position} " in lines[2]
        assert "Consequences (1)" in result.output
        assert f"#{c.position} " in result.output
        assert f"#{b.position} " not in result.output
        tree = run("why", str(path), str(root.id))
        assert "Consequences (3)" in tree.output
        assert "└──" in tree.output

    def test_json(self, run: Any, tmp_path: Path) -> None:
        """--json: the event, its chain and its consequences."""
        path = tmp_path / "why.db"
        root, a, _, b, c = _store(path)
        result = run("why", str(path), str(root.id), "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["event"]["id"] == str(root.id)
        assert [e["id"] for e in data["chain"]] == [str(root.id)]
        assert [e["id"] for e in data["consequences"]] == [
            str(a.id),
            str(b.id),
            str(c.id),
        ]

    def test_unknown_id(self, run: Any, tmp_path: Path) -> None:
        """One error line, exit 1."""
        path = tmp_path / "why.db"
        _store(path)
        result = run("why", str(path), "no-such-event")
        assert result.exit_code == 1
        assert "no event with id" in one_error_line(result)


class TestEventsByCorrelation:
    """swarmlog events DB --correlation ID."""

    def test_lists_the_conversation(self, run: Any, tmp_path: Path) -> None:
        """Only its events, in commit order, with the other filters applied."""
        path = tmp_path / "why.db"
        root, a, _, b, c = _store(path)
        result = run("events", str(path), "--correlation", "t-1", "--json")
        assert result.exit_code == 0, result.output
        ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
        assert ids == [str(e.id) for e in (root, a, b, c)]
        filtered = run(
            "events", str(path), "-c", "t-1", "--aggregate", "b", "--json"
        ).stdout.splitlines()
        assert [json.loads(line)["id"] for line in filtered] == [str(b.id)]
        limited = run("events", str(path), "-c", "t-1", "--limit", "2", "--json")
        assert len(limited.stdout.splitlines()) == 2

    def test_unknown_correlation(self, run: Any, tmp_path: Path) -> None:
        """No events: an empty list, exit 0."""
        path = tmp_path / "why.db"
        _store(path)
        result = run("events", str(path), "--correlation", "nope", "--json")
        assert result.exit_code == 0
        assert result.stdout == ""
