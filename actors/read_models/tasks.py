"""TaskHistoryProjection: every task's life cycle, timings and outcomes.

Transitions:

=======================  =====================================================
event                    effect on the task
=======================  =====================================================
``task:created``         new entry, status ``pending``
``task:queued``          status ``queued``, priority updated
``task:started``         status ``in-progress``, ``assigned_agent``,
                         ``started_at``
``agent:task-assigned``  ``assigned_agent`` (status unchanged)
``task:completed``       status ``completed``, ``completed_at``, ``result``,
                         ``duration`` from the payload, else
                         ``completed_at - started_at`` in ms (None if the
                         task never started)
``task:failed``          status ``failed``, ``failed_at``, ``error``,
                         ``retry_count``
``task:blocked``         status ``blocked``, ``blocked_by``
=======================  =====================================================

Events about a task that was never created are ignored; a second
``task:created`` for a known id starts the task afresh, keeping its place in
creation order. ``result`` is the payload's data as stored: read-only
containers (:class:`~swarmlog.schema.frozen.FrozenDict` /
:class:`~swarmlog.schema.frozen.FrozenList`), shared with the events.

Two success rates exist and differ on purpose:
:meth:`TaskHistoryProjection.get_success_rate` counts each task once, by
its final status (a task that failed, was retried and completed counts as
one success), while ``AgentHealth.success_rate`` of the agents read model
counts every ``agent:task-completed`` and every ``task:failed`` of the
agent, retries included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.actors.projection import Projection, handles, query
from swarmlog.schema.events import (
    AgentTaskAssigned,
    TaskBlocked,
    TaskCompleted,
    TaskCreated,
    TaskFailed,
    TaskQueued,
    TaskStarted,
)
from swarmlog.schema.frozen import freeze_stored

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event

__all__ = ["TaskHistoryProjection", "TaskState"]

PENDING = "pending"
QUEUED = "queued"
IN_PROGRESS = "in-progress"
COMPLETED = "completed"
FAILED = "failed"
BLOCKED = "blocked"

_replace = msgspec.structs.replace
_MS = timedelta(milliseconds=1)


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    """One task as the projection sees it.

    Attributes:
        id: The task's id.
        type: Its task type.
        title: Its title.
        description: Its description.
        status: ``pending``, ``queued``, ``in-progress``, ``completed``,
            ``failed`` or ``blocked``.
        priority: Its priority.
        assigned_agent: The agent running it, or None.
        dependencies: Tasks it depends on.
        blocked_by: Tasks blocking it (from the latest ``task:blocked``).
        created_at: When it was created.
        started_at: When it last started, or None.
        completed_at: When it completed, or None.
        failed_at: When it last failed, or None.
        duration: Run time in ms once completed, else None.
        result: The completion's result data, or None.
        error: The latest failure's message, or None.
        retry_count: Retries reported by the latest failure.
    """

    id: str
    type: str
    title: str
    description: str
    status: str = PENDING
    priority: str = ""
    assigned_agent: str | None = None
    dependencies: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    duration: int | None = None
    result: Any = None
    error: str | None = None
    retry_count: int = 0


class _TasksSnapshot(msgspec.Struct, kw_only=True):
    """What TaskHistoryProjection snapshots: tasks in creation order."""

    tasks: list[TaskState]


class TaskHistoryProjection(Projection):
    """Live read model of every task (name ``"tasks"``).

    Start it with ``TaskHistoryProjection(store).initialize()``; queries
    are synchronous, callable from any thread, and run on the projection's
    thread. They return frozen :class:`TaskState` Structs or new lists of
    them, in creation order. Events for tasks never created are ignored.
    """

    name = "tasks"
    state_version = 1
    state_type = _TasksSnapshot

    _tasks: dict[str, TaskState]

    # -- state (projection thread) ----------------------------------------------

    def reset_state(self) -> None:
        """Start with no tasks."""
        self._tasks = {}

    def snapshot_state(self) -> _TasksSnapshot:
        """The tasks in creation order."""
        return _TasksSnapshot(tasks=list(self._tasks.values()))

    def restore_state(self, state: _TasksSnapshot) -> None:
        """Load a snapshot made by :meth:`snapshot_state` (results made
        read-only again, as events deliver them)."""
        self._tasks = {}
        for task in state.tasks:
            result = freeze_stored(task.result)
            if result is not task.result:
                task = _replace(task, result=result)  # noqa: PLW2901
            self._tasks[task.id] = task

    # -- handlers (projection thread) ---------------------------------------------

    @handles(TaskCreated)
    def _on_created(self, event: Event[TaskCreated]) -> None:
        payload = event.payload
        self._tasks[payload.task_id] = TaskState(
            id=payload.task_id,
            type=payload.task_type,
            title=payload.title,
            description=payload.description,
            status=PENDING,
            priority=payload.priority,
            dependencies=tuple(payload.dependencies),
            created_at=event.timestamp,
        )

    @handles(TaskQueued)
    def _on_queued(self, event: Event[TaskQueued]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is not None:
            self._tasks[task.id] = _replace(
                task, status=QUEUED, priority=payload.priority
            )

    @handles(TaskStarted)
    def _on_started(self, event: Event[TaskStarted]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is not None:
            self._tasks[task.id] = _replace(
                task,
                status=IN_PROGRESS,
                assigned_agent=payload.agent_id,
                started_at=payload.started_at,
            )

    @handles(AgentTaskAssigned)
    def _on_assigned(self, event: Event[AgentTaskAssigned]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is not None:
            self._tasks[task.id] = _replace(task, assigned_agent=payload.agent_id)

    @handles(TaskCompleted)
    def _on_completed(self, event: Event[TaskCompleted]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is None:
            return
        duration = payload.duration
        if duration is None and task.started_at is not None:
            duration = max(0, (payload.completed_at - task.started_at) // _MS)
        self._tasks[task.id] = _replace(
            task,
            status=COMPLETED,
            completed_at=payload.completed_at,
            result=payload.result,
            duration=duration,
        )

    @handles(TaskFailed)
    def _on_failed(self, event: Event[TaskFailed]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is not None:
            self._tasks[task.id] = _replace(
                task,
                status=FAILED,
                failed_at=payload.failed_at,
                error=payload.error,
                retry_count=payload.retry_count,
            )

    @handles(TaskBlocked)
    def _on_blocked(self, event: Event[TaskBlocked]) -> None:
        payload = event.payload
        task = self._tasks.get(payload.task_id)
        if task is not None:
            self._tasks[task.id] = _replace(
                task, status=BLOCKED, blocked_by=tuple(payload.blocked_by)
            )

    # -- queries (any thread; bodies run on the projection thread) ----------------

    @query
    def get_task(self, task_id: str) -> TaskState | None:
        """The task, or None if it was never created."""
        return self._tasks.get(task_id)

    @query
    def get_all_tasks(self) -> list[TaskState]:
        """Every task, in creation order."""
        return list(self._tasks.values())

    @query
    def get_tasks_by_status(self, status: str) -> list[TaskState]:
        """Tasks whose status is ``status``, in creation order."""
        return [t for t in self._tasks.values() if t.status == status]

    @query
    def get_tasks_by_agent(self, agent_id: str) -> list[TaskState]:
        """Tasks assigned to ``agent_id``, in creation order."""
        return [t for t in self._tasks.values() if t.assigned_agent == agent_id]

    @query
    def get_tasks_by_type(self, task_type: str) -> list[TaskState]:
        """Tasks of ``task_type``, in creation order."""
        return [t for t in self._tasks.values() if t.type == task_type]

    @query
    def get_completed_task_count(self) -> int:
        """Number of tasks whose status is ``completed``."""
        return sum(1 for t in self._tasks.values() if t.status == COMPLETED)

    @query
    def get_average_task_duration(self) -> float:
        """Mean duration (ms) of the completed tasks that have one; 0.0 when
        there are none."""
        durations = [
            t.duration
            for t in self._tasks.values()
            if t.status == COMPLETED and t.duration is not None
        ]
        return sum(durations) / len(durations) if durations else 0.0

    @query
    def get_success_rate(
        self, *, agent_id: str | None = None, task_type: str | None = None
    ) -> float:
        """Completed / (completed + failed) over the tasks matching the
        filters, each task counted once by its final status (retries are
        not counted), in [0, 1]; 0.0 when none finished. (An agent's
        ``AgentHealth.success_rate`` counts every completion and failure
        event instead, retries included.)"""
        completed, failed = self._finished(agent_id, task_type)
        total = completed + failed
        return completed / total if total else 0.0

    @query
    def get_failure_rate(
        self, *, agent_id: str | None = None, task_type: str | None = None
    ) -> float:
        """Failed / (completed + failed) over the tasks matching the
        filters, in [0, 1]; 0.0 when none finished."""
        completed, failed = self._finished(agent_id, task_type)
        total = completed + failed
        return failed / total if total else 0.0

    def _finished(self, agent_id: str | None, task_type: str | None) -> tuple[int, int]:
        completed = failed = 0
        for task in self._tasks.values():
            if agent_id is not None and task.assigned_agent != agent_id:
                continue
            if task_type is not None and task.type != task_type:
                continue
            if task.status == COMPLETED:
                completed += 1
            elif task.status == FAILED:
                failed += 1
        return completed, failed
