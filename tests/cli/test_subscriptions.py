"""``swarmlog subscriptions`` and the subscriptions of ``swarmlog stats``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from swarmlog import EventStore, create_agent_spawned_event
from tests.cli.support import one_error_line

if TYPE_CHECKING:
    from pathlib import Path


def _store(path: Path) -> str:
    """A store of 4 events with subscriptions "mailer" at 3, "audit" at 1."""
    with EventStore(path) as store:
        for i in range(4):
            store.append(create_agent_spawned_event(f"a{i}", "coder", "core"))
        store.reset_subscription("mailer", 3)
        store.reset_subscription("audit", 1)
    return str(path)


def test_list_and_json(run: Any, tmp_path: Path) -> None:
    """The table names each subscription; --json has position, lag, status."""
    db = _store(tmp_path / "s.db")
    result = run("subscriptions", db)
    assert result.exit_code == 0, result.output
    assert "mailer" in result.stdout
    assert "audit" in result.stdout
    data = json.loads(run("subscriptions", db, "--json").stdout)
    assert data["mailer"] == {
        "position": 3,
        "lag": 1,
        "status": "stopped",
        "error": None,
    }
    assert data["audit"]["lag"] == 3


def test_stats_show_subscriptions(run: Any, tmp_path: Path) -> None:
    """``swarmlog stats`` lists them in a table and in --json."""
    db = _store(tmp_path / "s.db")
    result = run("stats", db, "--no-projections")
    assert result.exit_code == 0, result.output
    assert "Subscriptions" in result.stdout
    assert "mailer" in result.stdout
    data = json.loads(run("stats", db, "--no-projections", "--json").stdout)
    assert data["subscriptions"]["mailer"]["position"] == 3


def test_delete(run: Any, tmp_path: Path) -> None:
    """--delete forgets one; an unknown name is an error (exit 1)."""
    db = _store(tmp_path / "s.db")
    result = run("subscriptions", db, "--delete", "mailer")
    assert result.exit_code == 0, result.output
    assert "deleted" in result.stdout
    assert list(json.loads(run("subscriptions", db, "--json").stdout)) == ["audit"]
    result = run("subscriptions", db, "--delete", "mailer")
    assert result.exit_code == 1
    assert "no subscription named 'mailer'" in one_error_line(result)


def test_empty_and_missing(run: Any, tmp_path: Path) -> None:
    """A store without subscriptions says so; a missing file is an error."""
    db = str(tmp_path / "e.db")
    EventStore(db).initialize().shutdown()
    result = run("subscriptions", db)
    assert result.exit_code == 0
    assert "no subscriptions" in result.stdout
    missing = str(tmp_path / "none.db")
    assert run("subscriptions", missing).exit_code == 1
    assert run("subscriptions", missing, "--delete", "x").exit_code == 1
