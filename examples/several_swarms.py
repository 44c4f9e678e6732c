"""Several swarms: one store per swarm, or several swarm aggregates in one.

Two independent swarms ("research" and "delivery") each get their own store
file: the same agent and task ids can live in both without meeting, and
each file is locked, backed up, replayed and deleted on its own. Then one
coordinator store holds several swarm aggregates (``swarm_id=``): the swarm
read model keeps one state per swarm, and the agent and task ids carry the
swarm's name, since aggregate ids are not namespaced inside one store::

    python examples/several_swarms.py            # in a temporary directory
    python examples/several_swarms.py some/dir   # or keep the files there

``main(directory)`` returns the figures as a dict (the tests check them).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from swarmlog import (
    AgentStateProjection,
    EventStore,
    SwarmProjection,
    create_agent_spawned_event,
    create_agent_started_event,
    create_swarm_initialized_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
)

SWARMS = {"research": ("mesh", 3), "delivery": ("hierarchical", 2)}


def one_store_per_swarm(directory: Path, say: Any) -> dict[str, Any]:
    """Each swarm in its own file, with the same agent ids in both."""
    figures: dict[str, Any] = {}
    for name, (topology, agents) in SWARMS.items():
        path = directory / f"{name}.db"
        with EventStore(path) as store:
            store.append(
                create_swarm_initialized_event(topology, agents, {"name": name})
            )
            for k in range(1, agents + 1):
                store.append(create_agent_spawned_event(f"agent-{k}", "coder", name))
            store.append(create_agent_started_event("agent-1"))
            swarm = SwarmProjection(store).initialize().get_swarm()
            team = AgentStateProjection(store).initialize().get_all_agents()
            assert swarm is not None
            figures[name] = {
                "file": path.name,
                "topology": swarm.topology,
                "agents": [a.id for a in team],
                "events": store.head_position,
            }
            say(
                f"{path.name}: a {swarm.topology} swarm, agents "
                f"{[a.id for a in team]}, {store.head_position} events"
            )
    return figures


def several_swarms_in_one_store(directory: Path, say: Any) -> dict[str, Any]:
    """One coordinator store, one swarm aggregate per ``swarm_id``."""
    path = directory / "coordinator.db"
    with EventStore(path) as store:
        swarms = SwarmProjection(store).initialize()
        for name, (topology, agents) in SWARMS.items():
            store.append(
                create_swarm_initialized_event(topology, agents, None, swarm_id=name)
            )
            store.append(create_swarm_scaled_event(0, agents, "start", swarm_id=name))
            # Agent ids are aggregate ids: they carry the swarm's name.
            for k in range(1, agents + 1):
                store.append(
                    create_agent_spawned_event(f"{name}/agent-{k}", "coder", name)
                )
        store.append(
            create_swarm_phase_changed_event("init", "run", swarm_id="research")
        )
        store.append(
            create_swarm_terminated_event("shipped", None, swarm_id="delivery")
        )
        agents = AgentStateProjection(store).initialize()
        listed = swarms.get_all_swarms()
        for swarm in listed:
            state = "terminated" if swarm.terminated else f"phase {swarm.phase}"
            say(
                f"coordinator.db: swarm {swarm.id}, {swarm.agent_count} agents, {state}"
            )
        return {
            "swarms": [s.id for s in listed],
            "agent_counts": {s.id: s.agent_count for s in listed},
            "terminated": {s.id: s.terminated for s in listed},
            "research_agents": [a.id for a in agents.get_agents_by_domain("research")],
            "research_events": len(store.get_events("research")),
        }


def main(
    directory: str | Path | None = None, *, verbose: bool = True
) -> dict[str, Any]:
    """Run both layouts under ``directory`` (default: a temporary one).

    Returns:
        ``{"per_swarm": ..., "shared": ...}``, the figures of each layout.
    """

    def say(line: str) -> None:
        if verbose:
            print(line)

    if directory is None:
        with tempfile.TemporaryDirectory() as temporary:
            return main(temporary, verbose=verbose)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    return {
        "per_swarm": one_store_per_swarm(root, say),
        "shared": several_swarms_in_one_store(root, say),
    }


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
