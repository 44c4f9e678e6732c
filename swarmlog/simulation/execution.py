"""The execution phase, in rounds of simulated time.

Each round the coordinator expires memory past its TTL, re-queues failed
tasks (one retry), unblocks tasks whose dependencies completed (and fails
those whose dependencies failed for good), scales the swarm, restarts
crashed agents and assigns queued tasks to idle agents; the agents then work
concurrently and the coordinator applies their sorted reports. Runs on the
coordinator's (calling) thread.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import msgspec

from swarmlog.schema.factories import (
    create_agent_task_assigned_event,
    create_memory_expired_event,
    create_swarm_error_event,
    create_swarm_scaled_event,
    create_task_failed_event,
)
from swarmlog.simulation.messages import Order, TaskOrder
from swarmlog.simulation.results import SimulationError
from swarmlog.simulation.world import MAX_ATTEMPTS, ROUND, ROUND_WORK, ms

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from swarmlog.simulation.coordinator import Coordinator
    from swarmlog.simulation.messages import Report

__all__ = ["execute"]


def execute(c: Coordinator) -> None:
    """Play rounds until every task is completed or failed for good."""
    start = c.clock + timedelta(seconds=5)
    limit = c.n_tasks * MAX_ATTEMPTS + 10
    while c.finished() < len(c.tasks):
        if c.before_round is not None:
            c.before_round(c)
        c.round += 1
        if c.round > limit:
            msg = f"the swarm made no progress after {limit} rounds"
            raise SimulationError(msg)
        base = start + ROUND * (c.round - 1)
        c.clock = max(c.clock, base)
        _expire_memory(c)
        _requeue_and_unblock(c)
        orders = _scale(c)
        orders.update(_restart(c, orders))
        orders.update(_assign(c, orders, base))
        knowledge = c.shared_memory()
        at = base + ms(200)
        for worker in c.live():
            order = orders.get(worker.id)
            if order is None:
                order = Order(round=c.round, at=at)
            orders[worker.id] = msgspec.structs.replace(
                order, round=c.round, at=at, knowledge=knowledge
            )
        reports = c.dispatch(orders)
        c.clock = max(c.clock, base + ROUND_WORK)
        _apply(c, reports)
        c.progress()


def _expire_memory(c: Coordinator) -> None:
    for _, ref in sorted(c.memory.items()):
        due = ref.expires_at
        if due is None or due > c.clock:
            continue
        c.append(
            create_memory_expired_event(
                ref.id, ref.namespace, ref.key, due, **c.envelope()
            )
        )
        del c.memory[ref.id]


def _requeue_and_unblock(c: Coordinator) -> None:
    for task in c.tasks:  # creation order: dependencies come first
        if task.status == "retry":
            c.retries += 1
            c.enqueue(task)
        elif task.status == "blocked":
            states = [c.by_id[d].status for d in task.dependencies]
            failed = [d for d in task.dependencies if c.by_id[d].status == "failed"]
            if failed:
                task.status = "failed"
                c.append(
                    create_task_failed_event(
                        task.id,
                        f"cancelled: dependency {failed[0]} failed",
                        0,
                        **c.envelope(correlation_id=task.id),
                    )
                )
            elif all(s == "completed" for s in states):
                c.enqueue(task)


def _scale(c: Coordinator) -> dict[str, Order]:
    if c.target_agents is not None:
        return _retarget(c, c.target_agents)
    orders: dict[str, Order] = {}
    live = c.live()
    backlog = len(c.queued())
    if not c.scaled_up and c.round >= 2 and backlog > len(live):
        count = min(c.max_agents - len(live), max(1, c.n_agents // 4))
        if count > 0:
            c.scaled_up = True
            c.append(
                create_swarm_scaled_event(
                    len(live),
                    len(live) + count,
                    f"backlog of {backlog} queued tasks",
                    **c.envelope(),
                )
            )
            for worker in c.spawn(count):
                worker.status = "ready"
                orders[worker.id] = Order(round=c.round, at=c.clock, start=True)
        return orders
    open_tasks = sum(1 for t in c.tasks if t.status in ("queued", "blocked", "retry"))
    if not c.scaled_down and len(live) > 2 and open_tasks < len(live):
        count = max(1, (len(live) - open_tasks) // 2)
        c.scaled_down = True
        c.append(
            create_swarm_scaled_event(
                len(live), len(live) - count, "demand dropped", **c.envelope()
            )
        )
        for worker in live[-count:]:
            orders[worker.id] = Order(
                round=c.round, at=c.clock, stop="scaled down: demand dropped"
            )
    return orders


def _retarget(c: Coordinator, target: int) -> dict[str, Order]:
    """Scale the swarm to ``target`` live agents at once (a what-if that
    changes the number of agents): spawn the missing ones or stop the
    newest; later rounds scale around the new size."""
    c.target_agents = None
    c.n_agents = target
    c.max_agents = max(c.max_agents, target + max(1, target // 4))
    orders: dict[str, Order] = {}
    live = c.live()
    if target == len(live):
        return orders
    c.append(
        create_swarm_scaled_event(
            len(live), target, f"what-if: {target} agents", **c.envelope()
        )
    )
    if target > len(live):
        for worker in c.spawn(target - len(live)):
            worker.status = "ready"
            orders[worker.id] = Order(round=c.round, at=c.clock, start=True)
        return orders
    for worker in live[target:]:
        orders[worker.id] = Order(
            round=c.round, at=c.clock, stop=f"what-if: scaled to {target} agents"
        )
    return orders


def _restart(c: Coordinator, orders: dict[str, Order]) -> dict[str, Order]:
    restarts = {}
    for worker in c.live():
        if worker.status == "crashed" and worker.id not in orders:
            worker.status = "ready"
            restarts[worker.id] = Order(round=c.round, at=c.clock, restart=True)
    return restarts


def _assign(
    c: Coordinator, orders: dict[str, Order], base: datetime
) -> dict[str, Order]:
    free = [
        w
        for w in c.live()
        if w.status == "ready" and (w.id not in orders or orders[w.id].stop is None)
    ]
    assigned: dict[str, Order] = {}
    for task in c.queued():
        if not free:
            break
        worker = next((w for w in free if w.domain == task.domain), free[0])
        free.remove(worker)
        task.status = "assigned"
        task.attempts += 1
        event = c.append(
            create_agent_task_assigned_event(
                worker.id, task.id, **c.envelope(correlation_id=task.id)
            )
        )
        inject: Literal["fail", "crash"] | None = None
        if not c.fail_injected:
            c.fail_injected = True
            inject = "fail"
        elif not c.crash_injected and c.round >= 2:
            c.crash_injected = True
            inject = "crash"
        inputs = tuple(
            ref for d in task.dependencies if (ref := c.by_id[d].result) is not None
        )
        previous = orders.get(worker.id, Order(round=c.round, at=base))
        assigned[worker.id] = msgspec.structs.replace(
            previous,
            task=TaskOrder(
                task_id=task.id,
                task_type=task.type,
                attempt=task.attempts,
                inputs=inputs,
                inject=inject,
                assignment_id=str(event.id),
                failure_rate=c.failure_rate,
            ),
        )
    return assigned


def _apply(c: Coordinator, reports: Sequence[Report]) -> None:
    workers = {w.id: w for w in c.workers}
    for report in reports:
        worker = workers[report.agent_id]
        if report.outcome == "stopped":
            worker.status = "stopped"
            continue
        if report.task_id is None:
            continue
        task = c.by_id[report.task_id]
        if report.outcome == "completed":
            task.status = "completed"
            task.result = next(
                (r for r in report.stored if r.namespace == "task-results"), None
            )
            continue
        if report.outcome == "crashed":
            worker.status = "crashed"
            c.crash_injected = True
            c.agent_failures += 1
            c.append(
                create_swarm_error_event(
                    f"{worker.id} crashed while running {task.id}",
                    {"agentId": worker.id, "taskId": task.id, "round": c.round},
                    **c.envelope(correlation_id=task.id),
                )
            )
        if task.attempts < MAX_ATTEMPTS:
            task.status = "retry"
        else:
            task.status = "failed"
            c.append(
                create_swarm_error_event(
                    f"task {task.id} failed after {task.attempts} attempts",
                    {"taskId": task.id, "attempts": task.attempts},
                    **c.envelope(correlation_id=task.id),
                )
            )
    finished = c.finished()
    total = len(c.tasks)
    if any(t.status == "completed" for t in c.tasks):
        c.milestone("first-result", "first task completed")
    for pct in (25, 50, 75, 100):
        if finished * 100 >= pct * total:
            c.milestone(f"tasks-{pct}", f"{pct}% of tasks finished")
