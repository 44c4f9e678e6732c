"""The four built-in read models: every transition and query, live updates,
catch-up, snapshots (encode/restore and restart) and time travel."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlog.actors.read_models import (
    AgentHealth,
    AgentState,
    AgentStateProjection,
    MemoryEntry,
    MemoryIndexProjection,
    NamespaceUsage,
    PhaseChange,
    ScaleChange,
    SwarmProjection,
    SwarmState,
    TaskHistoryProjection,
    TaskState,
)
from swarmlog.actors.read_models.swarm import ErrorRecord, Milestone
from swarmlog.schema.errors import InvalidQueryError
from swarmlog.schema.factories import (
    create_agent_failed_event,
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_status_changed_event,
    create_agent_stopped_event,
    create_agent_task_assigned_event,
    create_agent_task_completed_event,
    create_memory_deleted_event,
    create_memory_expired_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_error_event,
    create_swarm_initialized_event,
    create_swarm_milestone_reached_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_swarm_terminated_event,
    create_task_blocked_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
    create_task_queued_event,
    create_task_started_event,
)
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from swarmlog.actors.projection import Projection
    from swarmlog.schema.envelope import Event

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def store() -> Iterator[EventStore]:
    """An initialised in-memory store, shut down afterwards."""
    event_store = EventStore(":memory:").initialize()
    yield event_store
    event_store.shutdown()


@pytest.fixture
def agents(store: EventStore) -> AgentStateProjection:
    """A live AgentStateProjection."""
    return AgentStateProjection(store).initialize()


@pytest.fixture
def tasks(store: EventStore) -> TaskHistoryProjection:
    """A live TaskHistoryProjection."""
    return TaskHistoryProjection(store).initialize()


@pytest.fixture
def memory(store: EventStore) -> MemoryIndexProjection:
    """A live MemoryIndexProjection."""
    return MemoryIndexProjection(store).initialize()


@pytest.fixture
def swarm(store: EventStore) -> SwarmProjection:
    """A live SwarmProjection."""
    return SwarmProjection(store).initialize()


def append_all(store: EventStore, events: list[Event[Any]]) -> None:
    """Append ``events`` one by one, in order."""
    for event in events:
        store.append(event)


# -- AgentStateProjection ------------------------------------------------------


class TestAgentTransitions:
    """Each agent event moves the agent as the issue lists."""

    def test_spawned_is_idle(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A spawned agent is idle, with its role, domain and capabilities."""
        store.append(
            create_agent_spawned_event(
                "a1", "coder", "core", ["python", "sql"], timestamp=at(0)
            )
        )
        agent = agents.get_agent("a1")
        assert agent == AgentState(
            id="a1",
            role="coder",
            domain="core",
            capabilities=("python", "sql"),
            status="idle",
            spawned_at=at(0),
            last_activity_at=at(0),
        )
        assert agent.spawned_at is not None
        assert agent.spawned_at.tzinfo is not None

    def test_started_is_active(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:started makes it active and sets started_at."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_started_event("a1", timestamp=at(5)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.status == "active"
        assert agent.started_at == at(5)
        assert agent.last_activity_at == at(5)

    def test_task_assigned_sets_current_task(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:task-assigned sets current_task and makes it active."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_task_assigned_event("a1", "t1", timestamp=at(3)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.current_task == "t1"
        assert agent.status == "active"
        assert agent.last_activity_at == at(3)

    def test_task_completed(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:task-completed records the task and its duration, then idles."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_task_assigned_event("a1", "t1", timestamp=at(1)))
        store.append(
            create_agent_task_completed_event(
                "a1", "t1", {"ok": True}, at(6), 5000, timestamp=at(6)
            )
        )
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.status == "idle"
        assert agent.current_task is None
        assert agent.completed_tasks == ("t1",)
        assert agent.task_count == 1
        assert agent.total_task_duration == 5000
        assert agent.last_activity_at == at(6)

    def test_zero_duration_counts(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A 0 ms task is a real duration: counted, averaging 0.0."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_task_completed_event("a1", "t1", None, at(1), 0))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.task_count == 1
        assert agent.total_task_duration == 0
        assert agents.get_average_task_duration("a1") == 0.0

    def test_stopped_is_completed(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:stopped makes it completed and sets stopped_at."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_stopped_event("a1", "done", timestamp=at(9)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.status == "completed"
        assert agent.stopped_at == at(9)

    def test_failed_is_error(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:failed sets error and counts it, each time."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_failed_event("a1", "boom", timestamp=at(2)))
        store.append(create_agent_failed_event("a1", ValueError("x"), timestamp=at(3)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.status == "error"
        assert agent.error_count == 2
        assert agent.last_activity_at == at(3)

    def test_status_changed(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """agent:status-changed sets the new status; its instant is the
        envelope timestamp."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(
            create_agent_status_changed_event("a1", "idle", "paused", timestamp=at(7))
        )
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.status == "paused"
        assert agent.last_activity_at == at(7)

    def test_failed_assigned_task_lands_in_failed_tasks(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A task:failed for a task assigned to the agent lands in its
        failed_tasks and clears current_task."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_task_assigned_event("a1", "t1", timestamp=at(1)))
        store.append(create_task_failed_event("t1", "boom", timestamp=at(4)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.failed_tasks == ("t1",)
        assert agent.current_task is None
        assert agent.task_count == 0
        assert agent.last_activity_at == at(4)

    def test_failed_started_task_lands_in_failed_tasks(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """The assignment may come from task:started instead."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_task_started_event("t1", "a1", timestamp=at(1)))
        store.append(create_task_failed_event("t1", "boom", timestamp=at(2)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.failed_tasks == ("t1",)
        assert agent.last_activity_at == at(2)

    def test_failure_keeps_another_current_task(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A failing earlier task does not clear the agent's current task."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_task_assigned_event("a1", "t1", timestamp=at(1)))
        store.append(create_agent_task_assigned_event("a1", "t2", timestamp=at(2)))
        store.append(create_task_failed_event("t1", "boom", timestamp=at(3)))
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.current_task == "t2"
        assert agent.failed_tasks == ("t1",)

    def test_unassigned_task_failure_changes_nothing(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A task:failed for a task no agent got changes no agent."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        before = agents.get_agent("a1")
        store.append(create_task_failed_event("t9", "boom", timestamp=at(3)))
        assert agents.get_agent("a1") == before

    def test_unknown_agent_events_are_ignored(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """Events for an agent never spawned create nothing and raise nothing."""
        append_all(
            store,
            [
                create_agent_started_event("ghost", timestamp=at(1)),
                create_agent_task_assigned_event("ghost", "t1", timestamp=at(1)),
                create_agent_task_completed_event("ghost", "t1", None, at(2), 10),
                create_agent_stopped_event("ghost", "done", timestamp=at(3)),
                create_agent_failed_event("ghost", "boom", timestamp=at(3)),
                create_agent_status_changed_event("ghost", "idle", "busy"),
                create_task_started_event("t2", "ghost", timestamp=at(4)),
                create_task_failed_event("t2", "boom", timestamp=at(5)),
            ],
        )
        assert agents.get_agent("ghost") is None
        assert agents.get_all_agents() == []
        assert agents.status == "live"
        assert agents.get_dead_letters() == []

    def test_respawn_starts_afresh_in_place(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A second agent:spawned resets the agent and keeps spawn order."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        store.append(create_agent_spawned_event("a2", "coder", "core", timestamp=at(1)))
        store.append(create_agent_failed_event("a1", "boom", timestamp=at(2)))
        store.append(create_agent_spawned_event("a1", "tester", "qa", timestamp=at(3)))
        assert [a.id for a in agents.get_all_agents()] == ["a1", "a2"]
        agent = agents.get_agent("a1")
        assert agent is not None
        assert (agent.role, agent.status, agent.error_count) == ("tester", "idle", 0)


def spawn_team(store: EventStore) -> None:
    """a1 coder/core active, a2 tester/qa idle, a3 coder/qa active, a4 stopped."""
    append_all(
        store,
        [
            create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)),
            create_agent_spawned_event("a2", "tester", "qa", timestamp=at(1)),
            create_agent_spawned_event("a3", "coder", "qa", timestamp=at(2)),
            create_agent_spawned_event("a4", "planner", "core", timestamp=at(3)),
            create_agent_started_event("a1", timestamp=at(4)),
            create_agent_started_event("a3", timestamp=at(5)),
            create_agent_stopped_event("a4", "done", timestamp=at(6)),
        ],
    )


class TestAgentQueries:
    """The agent queries, including the reference's status filters."""

    def test_get_agent_unknown_is_none(self, agents: AgentStateProjection) -> None:
        """An unknown id gives None."""
        assert agents.get_agent("nobody") is None

    def test_all_agents_in_spawn_order(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """get_all_agents lists agents in spawn order."""
        spawn_team(store)
        assert [a.id for a in agents.get_all_agents()] == ["a1", "a2", "a3", "a4"]

    def test_status_filters(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """get_agents_by_status filters by status (the reference's test)."""
        spawn_team(store)
        assert [a.id for a in agents.get_agents_by_status("active")] == ["a1", "a3"]
        assert [a.id for a in agents.get_agents_by_status("idle")] == ["a2"]
        assert [a.id for a in agents.get_agents_by_status("completed")] == ["a4"]
        assert agents.get_agents_by_status("error") == []
        assert agents.get_active_agent_count() == 2

    def test_domain_and_role_filters(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """get_agents_by_domain and get_agents_by_role filter in spawn order."""
        spawn_team(store)
        assert [a.id for a in agents.get_agents_by_domain("qa")] == ["a2", "a3"]
        assert [a.id for a in agents.get_agents_by_domain("core")] == ["a1", "a4"]
        assert [a.id for a in agents.get_agents_by_role("coder")] == ["a1", "a3"]
        assert agents.get_agents_by_role("nobody") == []

    def test_average_task_duration(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """Durations 5000 and 3000 average 4000 (the reference's test)."""
        append_all(
            store,
            [
                create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)),
                create_agent_task_completed_event("a1", "t1", None, at(5), 5000),
                create_agent_task_completed_event("a1", "t2", None, at(8), 3000),
            ],
        )
        assert agents.get_average_task_duration("a1") == 4000.0
        agent = agents.get_agent("a1")
        assert agent is not None
        assert agent.completed_tasks == ("t1", "t2")
        assert agent.task_count == 2
        assert agent.total_task_duration == 8000

    def test_average_duration_without_tasks(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """No completed task, or an unknown agent, averages 0.0."""
        store.append(create_agent_spawned_event("a1", "coder", "core"))
        assert agents.get_average_task_duration("a1") == 0.0
        assert agents.get_average_task_duration("nobody") == 0.0


class TestAgentHealth:
    """get_agent_health and get_unhealthy_agents, against a given now."""

    def test_health_figures(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """Health carries status, errors, success rate and idle time."""
        append_all(
            store,
            [
                create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)),
                create_agent_task_completed_event("a1", "t1", None, at(10), 100),
                create_agent_task_completed_event("a1", "t2", None, at(20), 100),
                create_agent_task_completed_event("a1", "t3", None, at(30), 100),
                create_task_started_event("t4", "a1", timestamp=at(35)),
                create_task_failed_event("t4", "boom", timestamp=at(40)),
                create_agent_failed_event("a1", "crash", timestamp=at(50)),
            ],
        )
        health = agents.get_agent_health("a1", now=at(80))
        assert health == AgentHealth(
            agent_id="a1",
            status="error",
            error_count=1,
            completed_count=3,
            failed_count=1,
            success_rate=0.75,
            last_activity_at=at(50),
            idle_for=timedelta(seconds=30),
        )

    def test_health_unknown_agent_is_none(self, agents: AgentStateProjection) -> None:
        """An unknown agent has no health."""
        assert agents.get_agent_health("nobody") is None

    def test_health_without_finished_tasks(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """No finished task: success rate 0.0; idle_for never negative;
        the default now is the current time."""
        store.append(create_agent_spawned_event("a1", "coder", "core", timestamp=at(0)))
        health = agents.get_agent_health("a1", now=at(-5))
        assert health is not None
        assert health.success_rate == 0.0
        assert health.idle_for == timedelta(0)
        current = agents.get_agent_health("a1")
        assert current is not None
        assert current.idle_for >= datetime.now(UTC) - at(0) - timedelta(minutes=1)

    def test_unhealthy_agents(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """Agents in error or silent too long are unhealthy; stopped agents
        are expected to be silent."""
        append_all(
            store,
            [
                create_agent_spawned_event("busy", "coder", "core", timestamp=at(0)),
                create_agent_spawned_event("silent", "coder", "core", timestamp=at(0)),
                create_agent_spawned_event("broken", "coder", "core", timestamp=at(0)),
                create_agent_spawned_event("done", "coder", "core", timestamp=at(0)),
                create_agent_started_event("busy", timestamp=at(590)),
                create_agent_failed_event("broken", "boom", timestamp=at(595)),
                create_agent_stopped_event("done", "finished", timestamp=at(10)),
            ],
        )
        unhealthy = agents.get_unhealthy_agents(timedelta(minutes=5), now=at(600))
        assert [h.agent_id for h in unhealthy] == ["silent", "broken"]
        assert unhealthy[0].idle_for == timedelta(minutes=10)
        assert agents.get_unhealthy_agents(timedelta(hours=1), now=at(600)) == [
            agents.get_agent_health("broken", now=at(600))
        ]

    def test_bad_arguments(
        self, store: EventStore, agents: AgentStateProjection
    ) -> None:
        """A non-timedelta max_idle or a naive now is an InvalidQueryError."""
        store.append(create_agent_spawned_event("a1", "coder", "core"))
        with pytest.raises(InvalidQueryError):
            agents.get_unhealthy_agents(300)  # type: ignore[arg-type]
        with pytest.raises(InvalidQueryError):
            agents.get_agent_health("a1", now=datetime(2025, 1, 1))
        assert agents.status == "live"


# -- TaskHistoryProjection -----------------------------------------------------


def create_task(
    task_id: str, task_type: str = "code", seconds: float = 0
) -> Event[Any]:
    """A task:created event at ``at(seconds)``."""
    return create_task_created_event(
        task_id,
        task_type,
        f"title {task_id}",
        f"about {task_id}",
        "normal",
        ["dep"],
        timestamp=at(seconds),
    )


class TestTaskTransitions:
    """Each task event moves the task as the issue lists."""

    def test_created_is_pending(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """A created task is pending, without duration."""
        store.append(create_task("t1"))
        assert tasks.get_task("t1") == TaskState(
            id="t1",
            type="code",
            title="title t1",
            description="about t1",
            status="pending",
            priority="normal",
            dependencies=("dep",),
            created_at=at(0),
        )

    def test_queued(self, store: EventStore, tasks: TaskHistoryProjection) -> None:
        """task:queued sets queued and the priority."""
        store.append(create_task("t1"))
        store.append(create_task_queued_event("t1", "high", timestamp=at(1)))
        task = tasks.get_task("t1")
        assert task is not None
        assert (task.status, task.priority) == ("queued", "high")

    def test_assignment_and_completion(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Started then completed: agent, instants, result, payload duration
        (the reference's test)."""
        store.append(create_task("t1"))
        store.append(create_task_started_event("t1", "a1", timestamp=at(1)))
        started = tasks.get_task("t1")
        assert started is not None
        assert (started.status, started.assigned_agent) == ("in-progress", "a1")
        assert started.started_at == at(1)
        assert started.duration is None
        store.append(
            create_task_completed_event("t1", {"lines": 3}, 1234, timestamp=at(9))
        )
        task = tasks.get_task("t1")
        assert task is not None
        assert task.status == "completed"
        assert task.assigned_agent == "a1"
        assert task.completed_at == at(9)
        assert task.result == {"lines": 3}
        assert task.duration == 1234

    def test_duration_from_instants(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Without a payload duration: completed_at - started_at in ms."""
        store.append(create_task("t1"))
        store.append(create_task_started_event("t1", "a1", timestamp=at(1)))
        store.append(create_task_completed_event("t1", None, timestamp=at(3.5)))
        task = tasks.get_task("t1")
        assert task is not None
        assert task.duration == 2500

    def test_duration_unknown_without_start(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Neither a payload duration nor a start: duration stays None."""
        store.append(create_task("t1"))
        store.append(create_task_completed_event("t1", None, timestamp=at(3)))
        task = tasks.get_task("t1")
        assert task is not None
        assert (task.status, task.duration) == ("completed", None)

    def test_failed(self, store: EventStore, tasks: TaskHistoryProjection) -> None:
        """task:failed records error, retry count and instant."""
        store.append(create_task("t1"))
        store.append(create_task_started_event("t1", "a1", timestamp=at(1)))
        store.append(create_task_failed_event("t1", "boom", 2, timestamp=at(4)))
        task = tasks.get_task("t1")
        assert task is not None
        assert task.status == "failed"
        assert task.error == "boom"
        assert task.retry_count == 2
        assert task.failed_at == at(4)
        assert task.duration is None

    def test_blocked(self, store: EventStore, tasks: TaskHistoryProjection) -> None:
        """task:blocked records the blockers."""
        store.append(create_task("t1"))
        store.append(create_task_blocked_event("t1", ["t0", "tx"], timestamp=at(1)))
        task = tasks.get_task("t1")
        assert task is not None
        assert (task.status, task.blocked_by) == ("blocked", ("t0", "tx"))

    def test_agent_assignment_sets_agent(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """agent:task-assigned sets assigned_agent, not the status."""
        store.append(create_task("t1"))
        store.append(create_agent_task_assigned_event("a7", "t1", timestamp=at(1)))
        task = tasks.get_task("t1")
        assert task is not None
        assert (task.status, task.assigned_agent) == ("pending", "a7")
        assert tasks.get_tasks_by_agent("a7") == [task]

    def test_unknown_task_events_are_ignored(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Events for a task never created create nothing and raise nothing."""
        append_all(
            store,
            [
                create_task_queued_event("ghost", "high"),
                create_task_started_event("ghost", "a1"),
                create_task_completed_event("ghost", None, 5),
                create_task_failed_event("ghost", "boom"),
                create_task_blocked_event("ghost", ["x"]),
                create_agent_task_assigned_event("a1", "ghost"),
            ],
        )
        assert tasks.get_task("ghost") is None
        assert tasks.get_all_tasks() == []
        assert tasks.status == "live"


def run_tasks(store: EventStore) -> None:
    """t1 code/a1 completed 5000, t2 code/a2 completed 3000, t3 test/a1
    failed, t4 test/a2 in progress, t5 code pending."""
    append_all(
        store,
        [
            create_task("t1", "code", 0),
            create_task("t2", "code", 1),
            create_task("t3", "test", 2),
            create_task("t4", "test", 3),
            create_task("t5", "code", 4),
            create_task_started_event("t1", "a1", timestamp=at(10)),
            create_task_started_event("t2", "a2", timestamp=at(10)),
            create_task_started_event("t3", "a1", timestamp=at(10)),
            create_task_started_event("t4", "a2", timestamp=at(10)),
            create_task_completed_event("t1", None, 5000, timestamp=at(15)),
            create_task_completed_event("t2", None, 3000, timestamp=at(13)),
            create_task_failed_event("t3", "boom", timestamp=at(11)),
        ],
    )


class TestTaskQueries:
    """The task queries, including the reference's average duration."""

    def test_get_task_unknown_is_none(self, tasks: TaskHistoryProjection) -> None:
        """An unknown id gives None."""
        assert tasks.get_task("nothing") is None

    def test_filters(self, store: EventStore, tasks: TaskHistoryProjection) -> None:
        """By status, agent and type, in creation order."""
        run_tasks(store)
        assert [t.id for t in tasks.get_all_tasks()] == ["t1", "t2", "t3", "t4", "t5"]
        assert [t.id for t in tasks.get_tasks_by_status("completed")] == ["t1", "t2"]
        assert [t.id for t in tasks.get_tasks_by_status("in-progress")] == ["t4"]
        assert [t.id for t in tasks.get_tasks_by_status("pending")] == ["t5"]
        assert [t.id for t in tasks.get_tasks_by_agent("a1")] == ["t1", "t3"]
        assert [t.id for t in tasks.get_tasks_by_type("test")] == ["t3", "t4"]
        assert tasks.get_tasks_by_agent("nobody") == []
        assert tasks.get_completed_task_count() == 2

    def test_average_task_duration(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Durations 5000 and 3000 average 4000 (the reference's test)."""
        run_tasks(store)
        assert tasks.get_average_task_duration() == 4000.0

    def test_average_duration_without_tasks(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """No completed task with a duration averages 0.0."""
        assert tasks.get_average_task_duration() == 0.0
        store.append(create_task("t1"))
        store.append(create_task_completed_event("t1", None, timestamp=at(1)))
        assert tasks.get_average_task_duration() == 0.0

    def test_rates(self, store: EventStore, tasks: TaskHistoryProjection) -> None:
        """Rates over finished tasks, filterable by agent and type."""
        run_tasks(store)
        assert tasks.get_success_rate() == pytest.approx(2 / 3)
        assert tasks.get_failure_rate() == pytest.approx(1 / 3)
        assert tasks.get_success_rate(agent_id="a1") == 0.5
        assert tasks.get_failure_rate(agent_id="a1") == 0.5
        assert tasks.get_success_rate(agent_id="a2") == 1.0
        assert tasks.get_failure_rate(agent_id="a2") == 0.0
        assert tasks.get_success_rate(task_type="test") == 0.0
        assert tasks.get_failure_rate(task_type="test") == 1.0
        assert tasks.get_success_rate(agent_id="a1", task_type="code") == 1.0

    def test_rates_without_finished_tasks(
        self, store: EventStore, tasks: TaskHistoryProjection
    ) -> None:
        """Nothing finished: both rates are 0.0."""
        assert tasks.get_success_rate() == 0.0
        run_tasks(store)
        assert tasks.get_success_rate(agent_id="nobody") == 0.0
        assert tasks.get_failure_rate(task_type="docs") == 0.0


# -- MemoryIndexProjection -----------------------------------------------------


def store_memory(
    memory_id: str, namespace: str, size: int, seconds: float = 0
) -> Event[Any]:
    """A memory:stored event at ``at(seconds)``."""
    return create_memory_stored_event(
        memory_id, namespace, f"key-{memory_id}", "fact", size, timestamp=at(seconds)
    )


def retrieve(memory_id: str, namespace: str, seconds: float) -> Event[Any]:
    """A memory:retrieved event at ``at(seconds)`` (payload count 99)."""
    return create_memory_retrieved_event(
        memory_id, namespace, f"key-{memory_id}", 99, timestamp=at(seconds)
    )


class TestMemoryTransitions:
    """Each memory event changes the entry as the issue lists."""

    def test_stored(self, store: EventStore, memory: MemoryIndexProjection) -> None:
        """memory:stored makes an active entry."""
        store.append(store_memory("m1", "ns", 100))
        assert memory.get_memory("m1") == MemoryEntry(
            id="m1",
            namespace="ns",
            key="key-m1",
            type="fact",
            size=100,
            stored_at=at(0),
        )

    def test_retrieved_counts_retrievals(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """access_count counts retrieval events, not the payload's count."""
        store.append(store_memory("m1", "ns", 100))
        store.append(retrieve("m1", "ns", 5))
        store.append(retrieve("m1", "ns", 7))
        entry = memory.get_memory("m1")
        assert entry is not None
        assert entry.access_count == 2
        assert entry.last_accessed_at == at(7)

    def test_deletion(self, store: EventStore, memory: MemoryIndexProjection) -> None:
        """A deleted entry is flagged, kept by get_memory, and no longer
        counts in its namespace (the reference's test)."""
        append_all(
            store,
            [
                store_memory("m1", "ns", 100),
                store_memory("m2", "ns", 50),
                store_memory("m3", "other", 7),
            ],
        )
        assert memory.get_total_size_by_namespace("ns") == 150
        store.append(create_memory_deleted_event("m1", "ns", "key-m1", timestamp=at(9)))
        entry = memory.get_memory("m1")
        assert entry is not None
        assert (entry.is_deleted, entry.deleted_at) == (True, at(9))
        assert [e.id for e in memory.get_active_memories()] == ["m2", "m3"]
        assert [e.id for e in memory.get_memories_by_namespace("ns")] == ["m2"]
        assert memory.get_total_size_by_namespace("ns") == 50
        assert memory.get_total_memory_size() == 57

    def test_expiry(self, store: EventStore, memory: MemoryIndexProjection) -> None:
        """memory:expired flags the entry; deleted_at is expired_at, and a
        later deletion keeps the first instant."""
        store.append(store_memory("m1", "ns", 100))
        store.append(
            create_memory_expired_event("m1", "ns", "key-m1", at(5), timestamp=at(6))
        )
        store.append(create_memory_deleted_event("m1", "ns", "key-m1", timestamp=at(8)))
        entry = memory.get_memory("m1")
        assert entry is not None
        assert (entry.is_deleted, entry.deleted_at) == (True, at(6))
        assert memory.get_active_memories() == []

    def test_restore_replaces_entry(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Storing a known id again gives a fresh, active entry in place."""
        append_all(
            store,
            [
                store_memory("m1", "ns", 100),
                store_memory("m2", "ns", 10),
                retrieve("m1", "ns", 1),
                create_memory_deleted_event("m1", "ns", "key-m1", timestamp=at(2)),
                store_memory("m1", "ns", 30, 3),
            ],
        )
        entry = memory.get_memory("m1")
        assert entry is not None
        assert (entry.size, entry.access_count, entry.is_deleted) == (30, 0, False)
        assert [e.id for e in memory.get_active_memories()] == ["m1", "m2"]

    def test_unknown_entry_events_are_ignored(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Events for an entry never stored create nothing and raise nothing."""
        append_all(
            store,
            [
                retrieve("ghost", "ns", 1),
                create_memory_deleted_event("ghost", "ns", "k"),
                create_memory_expired_event("ghost", "ns", "k", at(1)),
            ],
        )
        assert memory.get_memory("ghost") is None
        assert memory.status == "live"


def fill_memory(store: EventStore) -> None:
    """m1..m5 in two namespaces with different access counts; m5 deleted."""
    append_all(
        store,
        [
            store_memory("m1", "a", 100, 0),
            store_memory("m2", "a", 200, 0),
            store_memory("m3", "b", 300, 0),
            store_memory("m4", "b", 400, 0),
            store_memory("m5", "b", 500, 0),
            retrieve("m2", "a", 10),
            retrieve("m2", "a", 20),
            retrieve("m3", "b", 30),
            retrieve("m3", "b", 500),
            retrieve("m1", "a", 590),
            retrieve("m5", "b", 595),
            retrieve("m5", "b", 596),
            retrieve("m5", "b", 597),
            create_memory_deleted_event("m5", "b", "key-m5", timestamp=at(598)),
        ],
    )


class TestMemoryQueries:
    """The memory queries: usage, most accessed, hot and cold."""

    def test_get_memory_unknown_is_none(self, memory: MemoryIndexProjection) -> None:
        """An unknown id gives None."""
        assert memory.get_memory("nothing") is None

    def test_sizes_and_namespaces(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Sizes and namespace listings count active entries only."""
        fill_memory(store)
        assert memory.get_total_memory_size() == 1000
        assert memory.get_total_size_by_namespace("a") == 300
        assert memory.get_total_size_by_namespace("b") == 700
        assert memory.get_total_size_by_namespace("none") == 0
        assert [e.id for e in memory.get_memories_by_namespace("b")] == ["m3", "m4"]

    def test_namespace_usage(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Entries, bytes and accesses of active entries per namespace."""
        fill_memory(store)
        assert memory.get_namespace_usage() == {
            "a": NamespaceUsage(entries=2, bytes=300, accesses=3),
            "b": NamespaceUsage(entries=2, bytes=700, accesses=2),
        }

    def test_most_accessed(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """By access count, highest first, ties in store order; deleted
        entries excluded; limit respected."""
        fill_memory(store)
        ranked = memory.get_most_accessed_memories()
        assert [e.id for e in ranked] == ["m2", "m3", "m1", "m4"]
        assert [e.id for e in memory.get_most_accessed_memories(2)] == ["m2", "m3"]
        assert memory.get_most_accessed_memories(0) == []
        with pytest.raises(InvalidQueryError):
            memory.get_most_accessed_memories(-1)

    def test_hot_memories(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Hot: retrieved entries, most accessed first, optionally within a
        window before now."""
        fill_memory(store)
        assert [e.id for e in memory.get_hot_memories()] == ["m2", "m3", "m1"]
        assert [e.id for e in memory.get_hot_memories(1)] == ["m2"]
        recent = memory.get_hot_memories(within=timedelta(minutes=2), now=at(600))
        assert [e.id for e in recent] == ["m3", "m1"]
        assert memory.get_hot_memories(within=timedelta(0), now=at(600)) == []
        with pytest.raises(InvalidQueryError):
            memory.get_hot_memories(within=60)  # type: ignore[arg-type]

    def test_cold_memories(
        self, store: EventStore, memory: MemoryIndexProjection
    ) -> None:
        """Cold: active entries not retrieved (or stored) within idle_for."""
        fill_memory(store)
        cold = memory.get_cold_memories(timedelta(minutes=5), now=at(600))
        assert [e.id for e in cold] == ["m2", "m4"]
        assert memory.get_cold_memories(timedelta(days=1), now=at(600)) == []
        everything = memory.get_cold_memories(timedelta(0))
        assert [e.id for e in everything] == ["m1", "m2", "m3", "m4"]
        with pytest.raises(InvalidQueryError):
            memory.get_cold_memories(300)  # type: ignore[arg-type]


# -- SwarmProjection -----------------------------------------------------------


class TestSwarm:
    """SwarmProjection: one state per swarm id."""

    def test_initialized(self, store: EventStore, swarm: SwarmProjection) -> None:
        """swarm:initialized makes a fresh state under "swarm"."""
        assert swarm.get_swarm() is None
        store.append(
            create_swarm_initialized_event("mesh", 8, {"seed": 1}, timestamp=at(0))
        )
        assert swarm.get_swarm() == SwarmState(
            id="swarm",
            topology="mesh",
            max_agents=8,
            config={"seed": 1},
            initialized_at=at(0),
        )
        assert swarm.get_swarm("swarm") == swarm.get_swarm()

    def test_full_life(self, store: EventStore, swarm: SwarmProjection) -> None:
        """Scaling, phases, milestones, errors and termination."""
        append_all(
            store,
            [
                create_swarm_initialized_event("mesh", 8, None, timestamp=at(0)),
                create_swarm_scaled_event(0, 3, "start", timestamp=at(1)),
                create_swarm_phase_changed_event("init", "plan", timestamp=at(2)),
                create_swarm_milestone_reached_event("m1", "planned", timestamp=at(3)),
                create_swarm_scaled_event(3, 5, "load", timestamp=at(4)),
                create_swarm_phase_changed_event("plan", "build", timestamp=at(5)),
                create_swarm_error_event("oops", {"agent": "a1"}, timestamp=at(6)),
                create_swarm_terminated_event("done", {"tasks": 9}, timestamp=at(7)),
            ],
        )
        state = swarm.get_swarm()
        assert state is not None
        assert state.agent_count == 5
        assert state.scale_history == (
            ScaleChange(
                previous_agent_count=0,
                new_agent_count=3,
                reason="start",
                scaled_at=at(1),
            ),
            ScaleChange(
                previous_agent_count=3,
                new_agent_count=5,
                reason="load",
                scaled_at=at(4),
            ),
        )
        assert state.phase == "build"
        assert state.phase_timeline == (
            PhaseChange(previous_phase="init", new_phase="plan", changed_at=at(2)),
            PhaseChange(previous_phase="plan", new_phase="build", changed_at=at(5)),
        )
        assert state.milestones == (
            Milestone(milestone_id="m1", name="planned", reached_at=at(3)),
        )
        assert state.errors == (
            ErrorRecord(error="oops", context={"agent": "a1"}, error_at=at(6)),
        )
        assert state.terminated
        assert state.termination_reason == "done"
        assert state.metrics == {"tasks": 9}
        assert state.terminated_at == at(7)

    def test_error_keeps_stack(self, store: EventStore, swarm: SwarmProjection) -> None:
        """An exception's traceback text is kept."""
        store.append(create_swarm_initialized_event("mesh", 8, None))
        try:
            raise RuntimeError("deep")
        except RuntimeError as error:
            store.append(create_swarm_error_event(error, None))
        state = swarm.get_swarm()
        assert state is not None
        (record,) = state.errors
        assert record.error == "deep"
        assert record.stack is not None
        assert "RuntimeError" in record.stack

    def test_several_swarms(self, store: EventStore, swarm: SwarmProjection) -> None:
        """Each aggregate id is its own swarm, listed in init order."""
        append_all(
            store,
            [
                create_swarm_initialized_event("star", 2, None, swarm_id="s2"),
                create_swarm_initialized_event("mesh", 8, None),
                create_swarm_scaled_event(0, 2, "go", swarm_id="s2"),
            ],
        )
        s2 = swarm.get_swarm("s2")
        default = swarm.get_swarm()
        assert s2 is not None
        assert default is not None
        assert (s2.topology, s2.agent_count) == ("star", 2)
        assert (default.topology, default.agent_count) == ("mesh", 0)
        assert swarm.get_all_swarms() == [s2, default]
        assert swarm.get_swarm("nope") is None

    def test_unknown_swarm_events_are_ignored(
        self, store: EventStore, swarm: SwarmProjection
    ) -> None:
        """Events for a swarm never initialised create nothing."""
        append_all(
            store,
            [
                create_swarm_scaled_event(0, 2, "go"),
                create_swarm_phase_changed_event("a", "b"),
                create_swarm_milestone_reached_event("m", "n"),
                create_swarm_error_event("e", None),
                create_swarm_terminated_event("r", None),
            ],
        )
        assert swarm.get_swarm() is None
        assert swarm.get_all_swarms() == []
        assert swarm.status == "live"

    def test_reinitialize_starts_afresh(
        self, store: EventStore, swarm: SwarmProjection
    ) -> None:
        """A second swarm:initialized replaces the swarm's state."""
        append_all(
            store,
            [
                create_swarm_initialized_event("mesh", 8, None, timestamp=at(0)),
                create_swarm_terminated_event("done", None, timestamp=at(1)),
                create_swarm_initialized_event("ring", 4, None, timestamp=at(2)),
            ],
        )
        state = swarm.get_swarm()
        assert state is not None
        assert (state.topology, state.terminated, state.initialized_at) == (
            "ring",
            False,
            at(2),
        )


# -- every read model ----------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """One read model: its class, a scenario, and a summary of its queries."""

    cls: type[Projection]
    scenario: Callable[[], list[Event[Any]]]
    summary: Callable[[Any], Any]


def agent_scenario() -> list[Event[Any]]:
    return [
        create_agent_spawned_event("a1", "coder", "core", ["py"], timestamp=at(0)),
        create_agent_spawned_event("a2", "tester", "qa", timestamp=at(1)),
        create_agent_started_event("a1", timestamp=at(2)),
        create_agent_task_assigned_event("a1", "t1", timestamp=at(3)),
        create_agent_task_completed_event("a1", "t1", {"x": 1}, at(4), 1000),
        create_task_started_event("t2", "a2", timestamp=at(5)),
        create_task_failed_event("t2", "boom", timestamp=at(6)),
        create_agent_failed_event("a2", "crash", timestamp=at(7)),
        create_agent_stopped_event("a1", "done", timestamp=at(8)),
    ]


def agent_summary(p: AgentStateProjection) -> Any:
    return (
        p.get_all_agents(),
        p.get_unhealthy_agents(timedelta(seconds=1), now=at(100)),
        p.get_average_task_duration("a1"),
    )


def task_scenario() -> list[Event[Any]]:
    return [
        create_task("t1", "code", 0),
        create_task("t2", "test", 1),
        create_task("t3", "code", 2),
        create_task_queued_event("t1", "high", timestamp=at(3)),
        create_task_started_event("t1", "a1", timestamp=at(4)),
        create_task_completed_event("t1", [1, 2], timestamp=at(6)),
        create_task_started_event("t2", "a2", timestamp=at(7)),
        create_task_failed_event("t2", "boom", 1, timestamp=at(8)),
        create_task_blocked_event("t3", ["t2"], timestamp=at(9)),
    ]


def task_summary(p: TaskHistoryProjection) -> Any:
    return (p.get_all_tasks(), p.get_success_rate(), p.get_average_task_duration())


def memory_scenario() -> list[Event[Any]]:
    return [
        store_memory("m1", "a", 10, 0),
        store_memory("m2", "b", 20, 1),
        store_memory("m3", "b", 30, 2),
        retrieve("m1", "a", 3),
        retrieve("m1", "a", 4),
        retrieve("m2", "b", 5),
        create_memory_deleted_event("m3", "b", "key-m3", timestamp=at(6)),
        create_memory_expired_event("m2", "b", "key-m2", at(7), timestamp=at(7)),
    ]


def memory_summary(p: MemoryIndexProjection) -> Any:
    return (
        [p.get_memory(m) for m in ("m1", "m2", "m3")],
        p.get_namespace_usage(),
        p.get_cold_memories(timedelta(seconds=1), now=at(100)),
    )


def swarm_scenario() -> list[Event[Any]]:
    return [
        create_swarm_initialized_event("mesh", 4, {"k": [1]}, timestamp=at(0)),
        create_swarm_scaled_event(0, 2, "start", timestamp=at(1)),
        create_swarm_phase_changed_event("init", "run", timestamp=at(2)),
        create_swarm_milestone_reached_event("m", "half", timestamp=at(3)),
        create_swarm_error_event("e", {"n": 1}, timestamp=at(4)),
        create_swarm_initialized_event("star", 2, None, swarm_id="s2", timestamp=at(5)),
        create_swarm_terminated_event("done", {"ok": 1}, timestamp=at(6)),
    ]


def swarm_summary(p: SwarmProjection) -> Any:
    return p.get_all_swarms()


MODELS = [
    pytest.param(
        Model(AgentStateProjection, agent_scenario, agent_summary), id="agents"
    ),
    pytest.param(Model(TaskHistoryProjection, task_scenario, task_summary), id="tasks"),
    pytest.param(
        Model(MemoryIndexProjection, memory_scenario, memory_summary), id="memory"
    ),
    pytest.param(Model(SwarmProjection, swarm_scenario, swarm_summary), id="swarm"),
]


@pytest.mark.parametrize("model", MODELS)
class TestEveryReadModel:
    """Behaviour shared by the four read models."""

    def test_name_and_version(self, model: Model) -> None:
        """Each has its issue name and state version 1."""
        expected = {
            AgentStateProjection: "agents",
            TaskHistoryProjection: "tasks",
            MemoryIndexProjection: "memory",
            SwarmProjection: "swarm",
        }
        assert model.cls.name == expected[model.cls]
        assert model.cls.state_version == 1

    def test_catches_up_then_follows(self, store: EventStore, model: Model) -> None:
        """Initialised after half the events, it catches up; the rest show
        up live, with no further call; the result equals a replay."""
        events = model.scenario()
        half = len(events) // 2
        append_all(store, events[:half])
        projection = model.cls(store).initialize()
        assert model.summary(projection) == model.summary(
            model.cls.as_of(store, store.head_position)
        )
        append_all(store, events[half:])
        live = model.summary(projection)
        assert live == model.summary(model.cls.as_of(store, store.head_position))
        assert projection.position == store.head_position
        assert projection.status == "live"

    def test_initialize_is_idempotent(self, store: EventStore, model: Model) -> None:
        """initialize() returns the projection, twice."""
        projection = model.cls(store)
        assert projection.initialize() is projection
        assert projection.initialize() is projection

    def test_snapshot_round_trip(self, store: EventStore, model: Model) -> None:
        """snapshot_state encodes with msgpack and restores the same model."""
        append_all(store, model.scenario())
        source = model.cls.as_of(store, store.head_position)
        blob = msgspec.msgpack.encode(source.snapshot_state())
        state = msgspec.msgpack.decode(blob, type=model.cls.state_type)
        target = model.cls.as_of(store, 0)
        assert model.summary(target) != model.summary(source)
        target.restore_state(state)
        assert model.summary(target) == model.summary(source)

    def test_restart_from_snapshot(self, tmp_path: Path, model: Model) -> None:
        """After a restart the projection resumes from its snapshot: nothing
        is replayed, and the model is the same."""
        path = tmp_path / "swarm.db"
        with EventStore(path) as first:
            projection = model.cls(first, snapshot_every=3).initialize()
            append_all(first, model.scenario())
            before = model.summary(projection)
        with EventStore(path) as second:
            projection = model.cls(second).initialize()
            after = model.summary(projection)
            status = projection.get_status()
        assert after == before
        assert status.snapshot_position == status.position > 0
        assert status.events_handled == 0

    def test_time_travel(self, store: EventStore, model: Model) -> None:
        """as_of(position) gives the earlier state without touching the live
        projection."""
        projection = model.cls(store).initialize()
        events = model.scenario()
        half = len(events) // 2
        append_all(store, events[:half])
        middle_position = store.head_position
        middle = model.summary(projection)
        append_all(store, events[half:])
        final = model.summary(projection)
        assert final != middle
        past = model.cls.as_of(store, middle_position)
        assert model.summary(past) == middle
        assert model.cls.as_of(store, 0).snapshot_state() == (
            model.cls(store).snapshot_state()
        )
        assert model.summary(projection) == final
        assert projection.status == "live"

    def test_results_are_frozen_and_new(self, store: EventStore, model: Model) -> None:
        """Returned lists are new; the Structs in them are frozen."""
        projection = model.cls(store).initialize()
        append_all(store, model.scenario())
        first = model.summary(projection)
        for value in list(_walk(first)):
            if isinstance(value, list | dict):
                value.clear()
            elif isinstance(value, msgspec.Struct):
                field = value.__struct_fields__[0]
                with pytest.raises(AttributeError):
                    setattr(value, field, "changed")
        assert model.summary(projection) == model.summary(
            model.cls.as_of(store, store.head_position)
        )

    def test_read_your_writes_across_threads(
        self, store: EventStore, model: Model
    ) -> None:
        """Events appended on another thread show up once append returned."""
        projection = model.cls(store).initialize()
        worker = threading.Thread(target=append_all, args=(store, model.scenario()))
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert model.summary(projection) == model.summary(
            model.cls.as_of(store, store.head_position)
        )


def _walk(value: Any) -> Iterator[Any]:
    """Every list, dict value, tuple item and Struct in ``value``."""
    yield value
    if isinstance(value, list | tuple):
        for item in list(value):
            yield from _walk(item)
    elif isinstance(value, dict):
        for item in list(value.values()):
            yield from _walk(item)


# -- properties ------------------------------------------------------------------

# One id pool per aggregate type: an aggregate id keeps its type.
_agent_ids = st.sampled_from(["a1", "a2", "a3"])
_task_ids = st.sampled_from(["t1", "t2", "t3"])
_memory_ids = st.sampled_from(["m1", "m2", "m3"])
_seconds = st.integers(min_value=0, max_value=1000).map(at)
_any_event = st.one_of(
    st.builds(
        create_agent_spawned_event,
        _agent_ids,
        st.sampled_from(["coder", "tester"]),
        st.just("core"),
        timestamp=_seconds,
    ),
    st.builds(create_agent_started_event, _agent_ids, timestamp=_seconds),
    st.builds(create_agent_stopped_event, _agent_ids, st.just("r"), timestamp=_seconds),
    st.builds(create_agent_failed_event, _agent_ids, st.just("e"), timestamp=_seconds),
    st.builds(
        create_agent_status_changed_event,
        _agent_ids,
        st.just("idle"),
        st.just("paused"),
    ),
    st.builds(
        create_agent_task_assigned_event, _agent_ids, _task_ids, timestamp=_seconds
    ),
    st.builds(
        create_agent_task_completed_event,
        _agent_ids,
        _task_ids,
        st.none(),
        _seconds,
        st.integers(min_value=0, max_value=10_000),
    ),
    st.builds(create_task, _task_ids, st.sampled_from(["code", "test"])),
    st.builds(create_task_queued_event, _task_ids, st.just("high"), timestamp=_seconds),
    st.builds(create_task_started_event, _task_ids, _agent_ids, timestamp=_seconds),
    st.builds(
        create_task_completed_event,
        _task_ids,
        st.none(),
        st.none() | st.integers(min_value=0, max_value=10_000),
        timestamp=_seconds,
    ),
    st.builds(create_task_failed_event, _task_ids, st.just("e"), timestamp=_seconds),
    st.builds(
        create_task_blocked_event, _task_ids, st.lists(_task_ids), timestamp=_seconds
    ),
    st.builds(
        store_memory,
        _memory_ids,
        st.sampled_from(["a", "b"]),
        st.integers(0, 100),
        st.integers(0, 1000),
    ),
    st.builds(retrieve, _memory_ids, st.just("a"), st.integers(0, 1000)),
    st.builds(create_memory_deleted_event, _memory_ids, st.just("a"), st.just("k")),
    st.builds(
        create_memory_expired_event, _memory_ids, st.just("a"), st.just("k"), _seconds
    ),
    st.builds(
        create_swarm_initialized_event,
        st.just("mesh"),
        st.just(4),
        st.none(),
        swarm_id=st.sampled_from(["swarm", "s2"]),
    ),
    st.builds(create_swarm_scaled_event, st.just(1), st.just(2), st.just("r")),
    st.builds(create_swarm_phase_changed_event, st.just("a"), st.just("b")),
    st.builds(create_swarm_milestone_reached_event, st.just("m"), st.just("n")),
    st.builds(create_swarm_error_event, st.just("e"), st.none()),
    st.builds(create_swarm_terminated_event, st.just("r"), st.none()),
)

_SUMMARIES: list[tuple[type[Projection], Callable[[Any], Any]]] = [
    (AgentStateProjection, agent_summary),
    (TaskHistoryProjection, task_summary),
    (MemoryIndexProjection, memory_summary),
    (SwarmProjection, swarm_summary),
]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(_any_event, max_size=40))
def test_live_equals_replay_and_snapshot(events: list[Event[Any]]) -> None:
    """Whatever valid events arrive, in whatever order: no handler fails,
    the live model equals a from-scratch replay, and a snapshot restores
    it."""
    with EventStore(":memory:") as store:
        live = [(cls(store).initialize(), summary) for cls, summary in _SUMMARIES]
        append_all(store, events)
        head = store.head_position
        for projection, summary in live:
            replay = type(projection).as_of(store, head)
            assert summary(projection) == summary(replay)
            assert projection.status == "live"
            assert projection.get_dead_letters() == []
            blob = msgspec.msgpack.encode(replay.snapshot_state())
            restored = type(projection).as_of(store, 0)
            restored.restore_state(
                msgspec.msgpack.decode(blob, type=type(projection).state_type)
            )
            assert summary(restored) == summary(replay)
