"""The four built-in read models in one canonical value, and its digest.

:func:`collect_read_models` queries the agent, task, memory and swarm
projections into one :class:`ReadModels` (deterministic order), and
:func:`fingerprint` digests it. The simulation uses both to prove that a
rebuild from the log equals the live projections; the command line uses
them to print a replay. Both import this module; it imports neither.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import msgspec

# msgspec resolves ReadModels' field annotations at runtime: these stay
# runtime imports.
from swarmlog.actors.read_models import (  # noqa: TC001
    AgentHealth,
    AgentState,
    MemoryEntry,
    NamespaceUsage,
    SwarmState,
    TaskState,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from swarmlog.actors.read_models import (
        AgentStateProjection,
        MemoryIndexProjection,
        SwarmProjection,
        TaskHistoryProjection,
    )

__all__ = [
    "COLD_AFTER",
    "HOT_WINDOW",
    "ReadModels",
    "collect_read_models",
    "fingerprint",
]

HOT_WINDOW: Final = timedelta(minutes=2)
"""Hot memories: retrieved within this span before the end."""

COLD_AFTER: Final = timedelta(seconds=90)
"""Cold memories: not retrieved for longer than this before the end."""


class ReadModels(msgspec.Struct, frozen=True, kw_only=True):
    """The final read models of a run, in a canonical (deterministic) order.

    Lists the projections keep in commit order, where concurrent agents
    interleave (memory entries), are sorted by id; ties in rankings (hot
    memories) are broken by id.

    Attributes:
        now: The instant time-dependent figures refer to.
        agents: Every agent, in spawn order.
        health: Each agent's health as of ``now``, in spawn order.
        tasks: Every task, in creation order.
        tasks_by_status: Status -> number of tasks.
        average_task_duration: Mean duration of the completed tasks (ms).
        success_rate: Completed / finished tasks.
        failure_rate: Failed / finished tasks.
        memories: Every memory entry (deleted ones included) by id.
        namespace_usage: Namespace -> usage of its active entries.
        total_memory_size: Bytes of the active entries.
        hot_memories: The most retrieved active entries within
            :data:`HOT_WINDOW` before ``now`` (at most 5).
        cold_memories: Active entries idle for longer than
            :data:`COLD_AFTER` before ``now``, by id.
        swarm: The swarm, or None before it is initialised.
    """

    now: datetime
    agents: tuple[AgentState, ...]
    health: tuple[AgentHealth, ...]
    tasks: tuple[TaskState, ...]
    tasks_by_status: dict[str, int]
    average_task_duration: float
    success_rate: float
    failure_rate: float
    memories: tuple[MemoryEntry, ...]
    namespace_usage: dict[str, NamespaceUsage]
    total_memory_size: int
    hot_memories: tuple[MemoryEntry, ...]
    cold_memories: tuple[MemoryEntry, ...]
    swarm: SwarmState | None


def collect_read_models(
    agents: AgentStateProjection,
    tasks: TaskHistoryProjection,
    memory: MemoryIndexProjection,
    swarm: SwarmProjection,
    *,
    now: datetime,
    memory_ids: Iterable[str] | None = None,
) -> ReadModels:
    """Query the four projections into one canonical :class:`ReadModels`.

    Safe from any thread (live or ``as_of`` projections alike).

    Args:
        agents: The agent projection.
        tasks: The task projection.
        memory: The memory projection.
        swarm: The swarm projection.
        now: The instant for health, hot and cold figures.
        memory_ids: Every memory id to include, deleted ones too; default
            the active entries only.
    """
    all_agents = agents.get_all_agents()
    health = []
    for agent in all_agents:
        item = agents.get_agent_health(agent.id, now=now)
        if item is not None:
            health.append(item)
    all_tasks = tasks.get_all_tasks()
    by_status: dict[str, int] = {}
    for task in all_tasks:
        by_status[task.status] = by_status.get(task.status, 0) + 1
    active = memory.get_active_memories()
    if memory_ids is None:
        entries = sorted(active, key=lambda e: e.id)
    else:
        found = (memory.get_memory(i) for i in sorted(set(memory_ids)))
        entries = [e for e in found if e is not None]
    hot = memory.get_hot_memories(max(len(active), 1), HOT_WINDOW, now=now)
    hot.sort(key=lambda e: (-e.access_count, e.id))
    cold = memory.get_cold_memories(COLD_AFTER, now=now)
    usage = memory.get_namespace_usage()
    return ReadModels(
        now=now,
        agents=tuple(all_agents),
        health=tuple(health),
        tasks=tuple(all_tasks),
        tasks_by_status=dict(sorted(by_status.items())),
        average_task_duration=tasks.get_average_task_duration(),
        success_rate=tasks.get_success_rate(),
        failure_rate=tasks.get_failure_rate(),
        memories=tuple(entries),
        namespace_usage=dict(sorted(usage.items())),
        total_memory_size=memory.get_total_memory_size(),
        hot_memories=tuple(hot[:5]),
        cold_memories=tuple(sorted(cold, key=lambda e: e.id)),
        swarm=swarm.get_swarm(),
    )


def fingerprint(models: ReadModels) -> str:
    """A short, stable digest of ``models`` (sha256 of canonical JSON)."""
    data = msgspec.json.encode(models, order="deterministic")
    return hashlib.sha256(data).hexdigest()[:16]
