"""The first two phases: initialization (the swarm, the coordinator, the
first agents) and planning (shared knowledge, tasks with dependencies).

Runs on the coordinator's (calling) thread.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_agent_started_event,
    create_swarm_initialized_event,
    create_swarm_scaled_event,
    create_task_blocked_event,
    create_task_created_event,
)
from swarmlog.simulation.coordinator import PlannedTask
from swarmlog.simulation.messages import Order
from swarmlog.simulation.world import (
    COORDINATOR,
    KNOWLEDGE,
    MAX_ATTEMPTS,
    PLAN_DRAFT_TTL,
    PRIORITIES,
    SUBJECTS,
    TASK_KINDS,
    TOPOLOGY,
    ms,
)

if TYPE_CHECKING:
    from swarmlog.simulation.coordinator import Coordinator

__all__ = ["initialize", "plan"]


def initialize(c: Coordinator) -> None:
    """Initialise the swarm, spawn the coordinator and the first agents."""
    config = {
        "seed": c.seed,
        "agents": c.n_agents,
        "tasks": c.n_tasks,
        "failureRate": c.failure_rate,
        "maxAttempts": MAX_ATTEMPTS,
        "memory": {"backend": "swarmlog"},
    }
    c.append(
        create_swarm_initialized_event(TOPOLOGY, c.max_agents, config, **c.envelope())
    )
    c.set_phase("initialization")
    c.append(
        create_agent_spawned_event(
            COORDINATOR,
            "queen-coordinator",
            "coordination",
            ("orchestration", "task-assignment"),
            **c.envelope(),
        )
    )
    c.append(create_agent_started_event(COORDINATOR, **c.envelope()))
    c.append(
        create_swarm_scaled_event(0, c.n_agents, "initial agent spawn", **c.envelope())
    )
    new = c.spawn(c.n_agents)
    at = c.clock + ms(200)
    c.dispatch({w.id: Order(round=0, at=at, start=True) for w in new})
    for worker in new:
        worker.status = "ready"
    c.clock = max(c.clock, at + timedelta(seconds=5))
    c.progress()


def plan(c: Coordinator) -> None:
    """Seed the knowledge base and plan the tasks; enter execution."""
    rng = c.rng
    c.set_phase("planning")
    for key in KNOWLEDGE:
        c.store_memory("knowledge", key, "semantic", rng.randint(4096, 32768), None)
    c.store_memory(
        "working-memory",
        "plan-draft",
        "procedural",
        rng.randint(1024, 8192),
        PLAN_DRAFT_TTL,
    )
    for index in range(c.n_tasks):
        task_type, domain, verb, _, _ = rng.choice(TASK_KINDS)
        subject = rng.choice(SUBJECTS)
        priority = rng.choices(PRIORITIES, weights=(1, 3, 4, 2))[0]
        dependencies: tuple[str, ...] = ()
        if index and rng.random() < 0.45:
            pool = range(max(0, index - 8), index)
            picked = rng.sample(pool, min(rng.choice((1, 1, 2)), len(pool)))
            dependencies = tuple(c.tasks[i].id for i in sorted(picked))
        task = PlannedTask(
            id=f"task-{index + 1:0{c.task_width}d}",
            index=index,
            type=task_type,
            domain=domain,
            priority=priority,
            dependencies=dependencies,
        )
        c.tasks.append(task)
        c.by_id[task.id] = task
        c.append(
            create_task_created_event(
                task.id,
                task_type,
                f"{verb} the {subject}",
                f"{verb} the {subject} for the next release ({priority} priority)",
                priority,
                dependencies,
                **c.envelope(correlation_id=task.id),
            )
        )
        if dependencies:
            task.status = "blocked"
            c.append(
                create_task_blocked_event(
                    task.id, dependencies, **c.envelope(correlation_id=task.id)
                )
            )
        else:
            c.enqueue(task)
    c.milestone("plan-ready", f"plan ready: {c.n_tasks} tasks")
    c.set_phase("execution")
