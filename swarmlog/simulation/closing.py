"""The last two phases: review (read the key results, delete leftover
scratch memory) and completion (stop every agent, scale to 0, terminate).

Runs on the coordinator's (calling) thread.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from swarmlog.schema.factories import (
    create_agent_stopped_event,
    create_memory_deleted_event,
    create_memory_retrieved_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
)
from swarmlog.simulation.messages import Order
from swarmlog.simulation.world import COORDINATOR, EPOCH, ms

if TYPE_CHECKING:
    from swarmlog.simulation.coordinator import Coordinator

__all__ = ["complete", "review"]


def review(c: Coordinator) -> None:
    """Read the key results and delete leftover scratch memory."""
    c.clock += timedelta(seconds=5)
    c.set_phase("review")
    key_results = [
        t.result
        for t in c.tasks
        if t.status == "completed" and t.priority == "critical" and t.result
    ]
    for ref in key_results[:5]:
        c.append(
            create_memory_retrieved_event(
                ref.id,
                ref.namespace,
                ref.key,
                c.backend.read(ref.id),
                **c.envelope(),
            )
        )
    for _, ref in sorted(c.memory.items()):
        if ref.namespace == "working-memory":
            c.append(
                create_memory_deleted_event(
                    ref.id, ref.namespace, ref.key, **c.envelope()
                )
            )
            del c.memory[ref.id]


def complete(c: Coordinator) -> None:
    """Stop every agent, scale the swarm to 0 and terminate it."""
    c.clock += timedelta(seconds=5)
    c.set_phase("completion")
    live = c.live()
    at = c.clock + ms(100)
    c.dispatch(
        {w.id: Order(round=c.round, at=at, stop="swarm completed") for w in live}
    )
    for worker in live:
        worker.status = "stopped"
    c.clock = max(c.clock, at + timedelta(seconds=1))
    c.append(create_swarm_scaled_event(len(live), 0, "swarm completed", **c.envelope()))
    c.append(create_agent_stopped_event(COORDINATOR, "swarm completed", **c.envelope()))
    completed = sum(1 for t in c.tasks if t.status == "completed")
    metrics = {
        "rounds": c.round,
        "tasks": len(c.tasks),
        "completed": completed,
        "failed": len(c.tasks) - completed,
        "retries": c.retries,
        "agentFailures": c.agent_failures,
        "agentsSpawned": c.spawned,
        "simulatedSeconds": (c.clock - EPOCH).total_seconds(),
    }
    c.append(
        create_swarm_terminated_event("all tasks finished", metrics, **c.envelope())
    )
    c.progress()
