"""examples/example_usage.py: the reference walk-through's 20 events and the
figures it prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_usage.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example, loaded from its file (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("example_usage", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["memory", "file"])
def figures(
    request: pytest.FixtureRequest, example: ModuleType, tmp_path: Path
) -> dict[str, Any]:
    """The figures of one run, on ``:memory:`` and on a file."""
    path = ":memory:" if request.param == "memory" else str(tmp_path / "example.db")
    result: dict[str, Any] = example.main(path, verbose=False)
    return result


def test_twenty_events(figures: dict[str, Any]) -> None:
    """20 events: 9 about agents, 5 about tasks, one task:completed."""
    assert figures["total_events"] == 20
    assert figures["agent_events"] == 9
    assert figures["task_events"] == 5
    assert figures["task_completed_events"] == 1


def test_agents(figures: dict[str, Any]) -> None:
    """agent-1 active; agent-2 idle with task-1 done in 5234 ms on average;
    agent-3 active on task-2; two active agents."""
    assert figures["agent_1_status"] == "active"
    assert figures["agent_2_status"] == "idle"
    assert figures["agent_2_completed_tasks"] == ["task-1"]
    assert figures["agent_2_average_duration"] == 5234
    assert figures["agent_3_status"] == "active"
    assert figures["agent_3_current_task"] == "task-2"
    assert figures["active_agents"] == 2


def test_tasks(figures: dict[str, Any]) -> None:
    """task-1 completed by agent-2 in 5234 ms; task-2 in progress on
    agent-3 with no duration."""
    assert figures["task_1_status"] == "completed"
    assert figures["task_1_agent"] == "agent-2"
    assert figures["task_1_duration"] == 5234
    assert figures["task_2_status"] == "in-progress"
    assert figures["task_2_agent"] == "agent-3"
    assert figures["task_2_duration"] is None


def test_memory(figures: dict[str, Any]) -> None:
    """mem-1 read twice (2048 bytes), mem-2 never (1024 bytes), 3072 in
    total."""
    assert figures["mem_1_access_count"] == 2
    assert figures["mem_1_size"] == 2048
    assert figures["mem_2_access_count"] == 0
    assert figures["mem_2_size"] == 1024
    assert figures["total_memory_size"] == 3072


def test_replay_and_snapshot(figures: dict[str, Any]) -> None:
    """Replay yields the 20 events; a snapshot is saved and read back."""
    assert figures["replayed_events"] == 20
    assert figures["snapshot_version"] == 4
    assert figures["snapshot_read_back"] is True


def test_prints_the_figures(
    example: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as a script, it prints every figure."""
    example.main()
    out = capsys.readouterr().out
    for line in (
        "events: 20 stored",
        "9 agent events, 5 task events",
        "1 task:completed event",
        "agent-1 active",
        "agent-2 idle, completed ['task-1'], average 5234 ms",
        "agent-3 active on task-2",
        "2 active agents",
        "task-1 completed by agent-2 in 5234 ms",
        "task-2 in-progress on agent-3, duration None",
        "mem-1 accessed 2 times, 2048 bytes",
        "mem-2 accessed 0 times, 1024 bytes",
        "3072 bytes in total",
        "replay: 20 events",
        "saved and read back (identical)",
    ):
        assert line in out
