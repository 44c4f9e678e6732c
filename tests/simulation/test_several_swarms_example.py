"""examples/several_swarms.py: one store per swarm, and several swarm
aggregates in one store."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "several_swarms.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example, loaded from its file (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("several_swarms", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def figures(example: ModuleType, tmp_path: Path) -> dict[str, Any]:
    """The figures of one run, its files under ``tmp_path``."""
    result: dict[str, Any] = example.main(tmp_path, verbose=False)
    return result


def test_one_store_per_swarm(figures: dict[str, Any], tmp_path: Path) -> None:
    """Each swarm has its own file; the same agent ids live in both."""
    per_swarm = figures["per_swarm"]
    assert per_swarm["research"]["agents"] == ["agent-1", "agent-2", "agent-3"]
    assert per_swarm["delivery"]["agents"] == ["agent-1", "agent-2"]
    assert per_swarm["research"]["topology"] == "mesh"
    assert per_swarm["delivery"]["topology"] == "hierarchical"
    assert (per_swarm["research"]["events"], per_swarm["delivery"]["events"]) == (5, 4)
    assert (tmp_path / "research.db").exists()
    assert (tmp_path / "delivery.db").exists()


def test_several_swarms_in_one_store(figures: dict[str, Any]) -> None:
    """The swarm read model keeps one state per swarm aggregate."""
    shared = figures["shared"]
    assert shared["swarms"] == ["research", "delivery"]
    assert shared["agent_counts"] == {"research": 3, "delivery": 2}
    assert shared["terminated"] == {"research": False, "delivery": True}
    assert shared["research_agents"] == [
        "research/agent-1",
        "research/agent-2",
        "research/agent-3",
    ]
    assert shared["research_events"] == 3


def test_runs_as_a_script(tmp_path: Path) -> None:
    """``python examples/several_swarms.py DIR`` prints both layouts."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in (
        "research.db: a mesh swarm, agents ['agent-1', 'agent-2', 'agent-3']",
        "delivery.db: a hierarchical swarm, agents ['agent-1', 'agent-2']",
        "coordinator.db: swarm research, 3 agents, phase run",
        "coordinator.db: swarm delivery, 2 agents, terminated",
    ):
        assert line in done.stdout
