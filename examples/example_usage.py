"""The reference walk-through in Python: record, query, project, replay,
snapshot and inspect a small swarm.

It appends the reference example's 20 events in order (2 swarm, 9 agent,
5 task, 4 memory), builds the four read models, replays the log, saves and
reads back a snapshot, and prints the figures a reader can check::

    python examples/example_usage.py            # a private in-memory store
    python examples/example_usage.py demo.db    # or a new store file

``main(db_path)`` returns the figures as a dict (the tests check them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from swarmlog import (
    EventStore,
    Snapshot,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_initialized_event,
    create_swarm_scaled_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_started_event,
)
from swarmlog.actors.read_models import (
    AgentState,
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)

T = TypeVar("T")
Say = Callable[..., None]


def record_events(store: EventStore) -> None:
    """Append the reference example's 20 events, in the reference's order."""
    # The swarm (2 events).
    store.append(
        create_swarm_initialized_event(
            "hierarchical-mesh",
            15,
            {"security": {"strict": True}, "memory": {"backend": "agentdb"}},
        )
    )
    store.append(create_swarm_scaled_event(0, 5, "Initial agent spawn"))

    # Three agents, each spawned then started (6 events).
    for agent_id, role, domain, capabilities in (
        (
            "agent-1",
            "queen-coordinator",
            "coordination",
            ["orchestration", "task-assignment"],
        ),
        (
            "agent-2",
            "security-architect",
            "security",
            ["threat-modeling", "security-design"],
        ),
        ("agent-3", "core-architect", "core", ["ddd-design", "architecture"]),
    ):
        store.append(create_agent_spawned_event(agent_id, role, domain, capabilities))
        store.append(create_agent_started_event(agent_id))

    # task-1: created, started by agent-2, assigned, completed (5 events).
    store.append(
        create_task_created_event(
            "task-1",
            "security-audit",
            "Audit CVE-1 (Command Injection)",
            "Review and fix command injection vulnerability",
            "critical",
            [],
        )
    )
    store.append(create_task_started_event("task-1", "agent-2"))
    store.append(create_agent_task_assigned_event("agent-2", "task-1"))
    store.append(
        create_task_completed_event(
            "task-1", {"vulnerabilitiesFixed": 3, "severity": "high"}, 5234
        )
    )
    store.append(
        create_agent_task_completed_event(
            "agent-2", "task-1", {"success": True}, datetime.now(UTC), 5234
        )
    )

    # task-2: created, started by agent-3, assigned; still running (3 events).
    store.append(
        create_task_created_event(
            "task-2",
            "architecture-design",
            "Design V3 Domain Structure",
            "Implement bounded contexts for V3",
            "high",
            [],
        )
    )
    store.append(create_task_started_event("task-2", "agent-3"))
    store.append(create_agent_task_assigned_event("agent-3", "task-2"))

    # Memory: two entries stored, the first read twice (4 events).
    store.append(
        create_memory_stored_event(
            "mem-1", "agent-context", "agent-2-state", "episodic", 2048
        )
    )
    store.append(
        create_memory_stored_event(
            "mem-2", "task-results", "task-1-result", "semantic", 1024
        )
    )
    store.append(
        create_memory_retrieved_event("mem-1", "agent-context", "agent-2-state", 1)
    )
    store.append(
        create_memory_retrieved_event("mem-1", "agent-context", "agent-2-state", 2)
    )


def query_log(store: EventStore, say: Say) -> dict[str, Any]:
    """Query the log directly: by aggregate type and by event type."""
    agent_events = store.query(aggregate_types=["agent"])
    task_events = store.query(aggregate_types=["task"])
    completed_events = store.get_events_by_type("task:completed")
    say(f"events: {store.head_position} stored")
    say(f"  {len(agent_events)} agent events, {len(task_events)} task events")
    say(f"  {len(completed_events)} task:completed event")
    return {
        "total_events": store.head_position,
        "agent_events": len(agent_events),
        "task_events": len(task_events),
        "task_completed_events": len(completed_events),
    }


def read_models(store: EventStore, say: Say) -> dict[str, Any]:
    """Build the four live projections and query them."""
    agents = AgentStateProjection(store).initialize()
    tasks = TaskHistoryProjection(store).initialize()
    memory = MemoryIndexProjection(store).initialize()
    swarm = SwarmProjection(store).initialize()

    agent_1 = _found(agents.get_agent("agent-1"))
    agent_2 = _found(agents.get_agent("agent-2"))
    agent_3 = _found(agents.get_agent("agent-3"))
    average_2 = agents.get_average_task_duration("agent-2")
    active = agents.get_active_agent_count()
    say("agents:")
    say(f"  agent-1 {agent_1.status}")
    say(
        f"  agent-2 {agent_2.status}, completed {list(agent_2.completed_tasks)}, "
        f"average {average_2:.0f} ms"
    )
    say(f"  agent-3 {agent_3.status} on {agent_3.current_task}")
    say(f"  {active} active agents")

    task_1 = _found(tasks.get_task("task-1"))
    task_2 = _found(tasks.get_task("task-2"))
    say("tasks:")
    say(
        f"  task-1 {task_1.status} by {task_1.assigned_agent} "
        f"in {task_1.duration} ms, result {task_1.result}"
    )
    say(
        f"  task-2 {task_2.status} on {task_2.assigned_agent}, "
        f"duration {task_2.duration}"
    )

    mem_1 = _found(memory.get_memory("mem-1"))
    mem_2 = _found(memory.get_memory("mem-2"))
    total = memory.get_total_memory_size()
    say("memory:")
    say(f"  mem-1 accessed {mem_1.access_count} times, {mem_1.size} bytes")
    say(f"  mem-2 accessed {mem_2.access_count} times, {mem_2.size} bytes")
    say(f"  {total} bytes in total")

    state = _found(swarm.get_swarm())
    say(f"swarm: {state.topology}, {state.agent_count} agents of {state.max_agents}")
    return {
        "agent_1_status": agent_1.status,
        "agent_2_status": agent_2.status,
        "agent_2_completed_tasks": list(agent_2.completed_tasks),
        "agent_2_average_duration": average_2,
        "agent_3_status": agent_3.status,
        "agent_3_current_task": agent_3.current_task,
        "active_agents": active,
        "task_1_status": task_1.status,
        "task_1_agent": task_1.assigned_agent,
        "task_1_duration": task_1.duration,
        "task_2_status": task_2.status,
        "task_2_agent": task_2.assigned_agent,
        "task_2_duration": task_2.duration,
        "mem_1_access_count": mem_1.access_count,
        "mem_1_size": mem_1.size,
        "mem_2_access_count": mem_2.access_count,
        "mem_2_size": mem_2.size,
        "total_memory_size": total,
    }


def replay_and_snapshot(store: EventStore, say: Say) -> dict[str, Any]:
    """Replay the whole log, snapshot agent-2 and read it back, show stats."""
    replayed = sum(1 for _ in store.replay())
    say(f"replay: {replayed} events")

    agent_2 = _found(
        AgentStateProjection.as_of(store, store.head_position).get_agent("agent-2")
    )
    version = store.get_events("agent-2")[-1].version
    store.save_snapshot(
        Snapshot("agent-2", "agent", version, agent_2, datetime.now(UTC))
    )
    snapshot = _found(store.get_snapshot("agent-2", type=AgentState))
    read_back = snapshot.state == agent_2
    say(
        f"snapshot: agent-2 at version {snapshot.version} saved and read back "
        f"({'identical' if read_back else 'DIFFERENT'})"
    )

    stats = store.get_stats()
    say(f"stats: {stats.total_events} events, {stats.snapshot_count} snapshot")
    for event_type, count in sorted(stats.events_by_type.items()):
        say(f"  {event_type:<22} {count}")
    return {
        "replayed_events": replayed,
        "snapshot_version": snapshot.version,
        "snapshot_read_back": read_back,
    }


def main(db_path: str = ":memory:", *, verbose: bool = True) -> dict[str, Any]:
    """Run the walk-through on ``db_path``; print and return its figures."""
    say: Say = print if verbose else _silent
    with EventStore(db_path) as store:
        record_events(store)
        return {
            **query_log(store, say),
            **read_models(store, say),
            **replay_and_snapshot(store, say),
        }


def _found(value: T | None) -> T:
    if value is None:
        msg = "the walk-through expected this item to exist"
        raise LookupError(msg)
    return value


def _silent(*_: object) -> None:
    return None


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ":memory:")
