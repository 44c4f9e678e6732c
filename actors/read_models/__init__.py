"""The four built-in read models, each a live :class:`~swarmlog.Projection`.

- :class:`AgentStateProjection` (``"agents"``): agents, their tasks and health.
- :class:`TaskHistoryProjection` (``"tasks"``): tasks, durations and rates.
- :class:`MemoryIndexProjection` (``"memory"``): memory entries and usage.
- :class:`SwarmProjection` (``"swarm"``): the swarm's shape, phases and end.

Start one with ``AgentStateProjection(store).initialize()``; its queries are
synchronous, callable from any thread, and return frozen Structs or new
lists of them.
"""

from __future__ import annotations

from swarmlog.actors.read_models.agents import (
    AgentHealth,
    AgentState,
    AgentStateProjection,
)
from swarmlog.actors.read_models.memory import (
    MemoryEntry,
    MemoryIndexProjection,
    NamespaceUsage,
)
from swarmlog.actors.read_models.swarm import (
    PhaseChange,
    ScaleChange,
    SwarmProjection,
    SwarmState,
)
from swarmlog.actors.read_models.tasks import TaskHistoryProjection, TaskState

__all__ = [
    "AgentHealth",
    "AgentState",
    "AgentStateProjection",
    "MemoryEntry",
    "MemoryIndexProjection",
    "NamespaceUsage",
    "PhaseChange",
    "ScaleChange",
    "SwarmProjection",
    "SwarmState",
    "TaskHistoryProjection",
    "TaskState",
]
