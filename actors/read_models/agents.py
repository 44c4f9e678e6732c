"""AgentStateProjection: every agent's status, tasks, timings and health.

Transitions (the reference's, fixed):

========================  ====================================================
event                     effect on the agent
========================  ====================================================
``agent:spawned``         new entry, status ``idle``
``agent:started``         status ``active``, ``started_at``
``agent:task-assigned``   ``current_task`` set, status ``active``
``agent:task-completed``  task appended to ``completed_tasks``,
                          ``task_count += 1``, duration added (0 counts),
                          ``current_task`` cleared, status ``idle``
``agent:stopped``         status ``completed``, ``stopped_at``
``agent:failed``          status ``error``, ``error_count += 1``
``agent:status-changed``  status set to ``new_status``
``task:started``          remembers which agent runs the task
``task:failed``           the task lands in its agent's ``failed_tasks``
                          (the agent it was assigned to, by
                          ``agent:task-assigned`` or ``task:started``);
                          ``current_task`` cleared if it was that task
========================  ====================================================

Events about an agent that was never spawned are ignored (they change no
entry): an agent exists from its ``agent:spawned`` on, and
:meth:`AgentStateProjection.get_all_agents` lists agents in spawn order. A
second ``agent:spawned`` for a known id starts the agent afresh, keeping its
place in that order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.projection import Projection, handles, query
from swarmlog.schema.errors import InvalidQueryError
from swarmlog.schema.events import (
    AgentFailed,
    AgentSpawned,
    AgentStarted,
    AgentStatusChanged,
    AgentStopped,
    AgentTaskAssigned,
    AgentTaskCompleted,
    TaskFailed,
    TaskStarted,
)
from swarmlog.schema.timeutil import query_now

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event

__all__ = ["AgentHealth", "AgentState", "AgentStateProjection"]

IDLE = "idle"
ACTIVE = "active"
COMPLETED = "completed"
ERROR = "error"

_replace = msgspec.structs.replace
_ZERO = timedelta(0)


class AgentState(msgspec.Struct, frozen=True, kw_only=True):
    """One agent as the projection sees it.

    Attributes:
        id: The agent's id.
        role: Its role (``coder``, ``reviewer``, ...).
        domain: Its domain.
        capabilities: What it can do.
        status: ``idle``, ``active``, ``completed``, ``error`` or whatever
            an ``agent:status-changed`` set.
        current_task: The task it works on, or None.
        completed_tasks: Ids of the tasks it completed, in order (one entry
            per ``agent:task-completed``).
        failed_tasks: Ids of its tasks that failed, in order (one entry per
            ``task:failed``).
        task_count: Number of completed tasks.
        total_task_duration: Sum of the completed tasks' durations, in ms.
        error_count: Number of ``agent:failed`` events.
        spawned_at: When it was spawned.
        started_at: When it last started, or None.
        stopped_at: When it stopped, or None.
        last_activity_at: The latest instant of any event about it.
    """

    id: str
    role: str
    domain: str
    capabilities: tuple[str, ...] = ()
    status: str = IDLE
    current_task: str | None = None
    completed_tasks: tuple[str, ...] = ()
    failed_tasks: tuple[str, ...] = ()
    task_count: int = 0
    total_task_duration: int = 0
    error_count: int = 0
    spawned_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    last_activity_at: datetime | None = None


class AgentHealth(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's health figures at one instant.

    Attributes:
        agent_id: The agent.
        status: Its status.
        error_count: Number of ``agent:failed`` events.
        completed_count: Tasks it completed.
        failed_count: Tasks of it that failed.
        success_rate: ``completed / (completed + failed)`` over the
            agent's ``agent:task-completed`` and ``task:failed`` events,
            retries included (a task that failed twice and then completed
            counts 1 of 3); 0.0 when it finished no task yet. The tasks
            read model's ``get_success_rate(agent_id=...)`` counts each
            task once by its final status instead.
        last_activity_at: The latest instant of any event about it.
        idle_for: Time since ``last_activity_at`` (never negative).
    """

    agent_id: str
    status: str
    error_count: int
    completed_count: int
    failed_count: int
    success_rate: float
    last_activity_at: datetime | None
    idle_for: timedelta


class _AgentsSnapshot(msgspec.Struct, kw_only=True):
    """What AgentStateProjection snapshots: agents in spawn order, and the
    agent each known task was assigned to."""

    agents: list[AgentState]
    task_agents: dict[str, str] = {}


def _later(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new > current else current


class AgentStateProjection(Projection):
    """Live read model of every agent (name ``"agents"``).

    Start it with ``AgentStateProjection(store).initialize()``; queries are
    synchronous, callable from any thread, and run on the projection's
    thread. They return frozen :class:`AgentState` / :class:`AgentHealth`
    Structs or new lists of them. Events for agents never spawned are
    ignored.
    """

    name = "agents"
    state_version = 1
    state_type = _AgentsSnapshot

    _agents: dict[str, AgentState]
    _task_agents: dict[str, str]

    # -- state (projection thread) ----------------------------------------------

    def reset_state(self) -> None:
        """Start with no agents."""
        self._agents = {}
        self._task_agents = {}

    def snapshot_state(self) -> _AgentsSnapshot:
        """The agents in spawn order, and task assignments."""
        return _AgentsSnapshot(
            agents=list(self._agents.values()), task_agents=dict(self._task_agents)
        )

    def restore_state(self, state: _AgentsSnapshot) -> None:
        """Load a snapshot made by :meth:`snapshot_state`."""
        self._agents = {agent.id: agent for agent in state.agents}
        self._task_agents = dict(state.task_agents)

    # -- handlers (projection thread) ---------------------------------------------

    @handles(AgentSpawned)
    def _on_spawned(self, event: Event[AgentSpawned]) -> None:
        payload = event.payload
        self._agents[payload.agent_id] = AgentState(
            id=payload.agent_id,
            role=payload.role,
            domain=payload.domain,
            capabilities=tuple(payload.capabilities),
            status=IDLE,
            spawned_at=event.timestamp,
            last_activity_at=event.timestamp,
        )

    def _put(self, agent: AgentState, at: datetime, **changes: Any) -> None:
        """Store ``agent`` with ``changes``, noting activity at ``at``."""
        self._agents[agent.id] = _replace(
            agent, last_activity_at=_later(agent.last_activity_at, at), **changes
        )

    @handles(AgentStarted)
    def _on_started(self, event: Event[AgentStarted]) -> None:
        payload = event.payload
        if (agent := self._agents.get(payload.agent_id)) is not None:
            at = payload.started_at
            self._put(agent, at, status=ACTIVE, started_at=at)

    @handles(AgentTaskAssigned)
    def _on_task_assigned(self, event: Event[AgentTaskAssigned]) -> None:
        payload = event.payload
        self._task_agents[payload.task_id] = payload.agent_id
        if (agent := self._agents.get(payload.agent_id)) is not None:
            self._put(
                agent, payload.assigned_at, status=ACTIVE, current_task=payload.task_id
            )

    @handles(AgentTaskCompleted)
    def _on_task_completed(self, event: Event[AgentTaskCompleted]) -> None:
        payload = event.payload
        if (agent := self._agents.get(payload.agent_id)) is not None:
            self._put(
                agent,
                payload.completed_at,
                status=IDLE,
                current_task=None,
                completed_tasks=(*agent.completed_tasks, payload.task_id),
                task_count=agent.task_count + 1,
                total_task_duration=agent.total_task_duration + payload.duration,
            )

    @handles(AgentStopped)
    def _on_stopped(self, event: Event[AgentStopped]) -> None:
        payload = event.payload
        if (agent := self._agents.get(payload.agent_id)) is not None:
            at = payload.stopped_at
            self._put(agent, at, status=COMPLETED, stopped_at=at)

    @handles(AgentFailed)
    def _on_failed(self, event: Event[AgentFailed]) -> None:
        payload = event.payload
        if (agent := self._agents.get(payload.agent_id)) is not None:
            self._put(
                agent,
                payload.failed_at,
                status=ERROR,
                error_count=agent.error_count + 1,
            )

    @handles(AgentStatusChanged)
    def _on_status_changed(self, event: Event[AgentStatusChanged]) -> None:
        payload = event.payload
        if (agent := self._agents.get(payload.agent_id)) is not None:
            self._put(agent, event.timestamp, status=payload.new_status)

    @handles(TaskStarted)
    def _on_task_started(self, event: Event[TaskStarted]) -> None:
        payload = event.payload
        self._task_agents[payload.task_id] = payload.agent_id
        if (agent := self._agents.get(payload.agent_id)) is not None:
            self._put(agent, payload.started_at)

    @handles(TaskFailed)
    def _on_task_failed(self, event: Event[TaskFailed]) -> None:
        payload = event.payload
        agent_id = self._task_agents.get(payload.task_id)
        agent = None if agent_id is None else self._agents.get(agent_id)
        if agent is None:
            return
        current = None if agent.current_task == payload.task_id else agent.current_task
        self._put(
            agent,
            payload.failed_at,
            current_task=current,
            failed_tasks=(*agent.failed_tasks, payload.task_id),
        )

    # -- queries (any thread; bodies run on the projection thread) ----------------

    @query
    def get_agent(self, agent_id: str) -> AgentState | None:
        """The agent, or None if it was never spawned."""
        return self._agents.get(agent_id)

    @query
    def get_all_agents(self) -> list[AgentState]:
        """Every agent, in spawn order."""
        return list(self._agents.values())

    @query
    def get_agents_by_status(self, status: str) -> list[AgentState]:
        """Agents whose status is ``status``, in spawn order."""
        return [a for a in self._agents.values() if a.status == status]

    @query
    def get_agents_by_domain(self, domain: str) -> list[AgentState]:
        """Agents of ``domain``, in spawn order."""
        return [a for a in self._agents.values() if a.domain == domain]

    @query
    def get_agents_by_role(self, role: str) -> list[AgentState]:
        """Agents with ``role``, in spawn order."""
        return [a for a in self._agents.values() if a.role == role]

    @query
    def get_active_agent_count(self) -> int:
        """Number of agents whose status is ``active``."""
        return sum(1 for a in self._agents.values() if a.status == ACTIVE)

    @query
    def get_average_task_duration(self, agent_id: str) -> float:
        """Mean duration (ms) of the agent's completed tasks; 0.0 when it
        completed none or is unknown."""
        agent = self._agents.get(agent_id)
        if agent is None or agent.task_count == 0:
            return 0.0
        return agent.total_task_duration / agent.task_count

    @query
    def get_agent_health(
        self, agent_id: str, *, now: datetime | None = None
    ) -> AgentHealth | None:
        """The agent's health as of ``now`` (default: the current time), or
        None if it is unknown.

        Raises:
            InvalidQueryError: ``now`` is not a timezone-aware datetime.
        """
        at = query_now(now)
        agent = self._agents.get(agent_id)
        return None if agent is None else _health(agent, at)

    @query
    def get_unhealthy_agents(
        self, max_idle: timedelta, *, now: datetime | None = None
    ) -> list[AgentHealth]:
        """Health of the agents in ``error``, or silent for longer than
        ``max_idle`` as of ``now`` (default: the current time), in spawn
        order. Agents that stopped (status ``completed``) are expected to
        be silent: only an ``error`` status makes them unhealthy.

        Raises:
            InvalidQueryError: ``max_idle`` is not a timedelta, or ``now``
                is not a timezone-aware datetime.
        """
        if not isinstance(max_idle, timedelta):
            msg = f"max_idle must be a timedelta, got {max_idle!r}"
            raise InvalidQueryError(msg)
        at = query_now(now)
        unhealthy = []
        for agent in self._agents.values():
            health = _health(agent, at)
            if agent.status == ERROR or (
                agent.status != COMPLETED and health.idle_for > max_idle
            ):
                unhealthy.append(health)
        return unhealthy


def _health(agent: AgentState, now: datetime) -> AgentHealth:
    completed = len(agent.completed_tasks)
    failed = len(agent.failed_tasks)
    finished = completed + failed
    last = agent.last_activity_at
    idle_for = _ZERO if last is None else max(_ZERO, now - last)
    return AgentHealth(
        agent_id=agent.id,
        status=agent.status,
        error_count=agent.error_count,
        completed_count=completed,
        failed_count=failed,
        success_rate=completed / finished if finished else 0.0,
        last_activity_at=last,
        idle_for=idle_for,
    )
