"""``swarmlog agents``, ``tasks``, ``memory`` and ``swarm``: the built-in
read models of a store."""

from datetime import timedelta
from typing import Annotated

import typer

from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.cli.common import (
    UsageError,
    check_count,
    fail,
    help_text,
    make_console,
    now_option,
    open_read_only,
    user_errors,
    write_json,
)
from swarmlog.cli.options import DbArg, JsonOpt, NowOpt
from swarmlog.cli.render import (
    render_agents,
    render_entries,
    render_memory,
    render_swarm,
    render_tasks,
)
from swarmlog.cli.vocabulary import AGENT_STATUSES, TASK_STATUSES, check_values

__all__ = ["agents", "memory", "register", "swarm", "tasks"]


def agents(
    db: DbArg,
    status: Annotated[
        str | None,
        typer.Option(help="Only agents in this status (an unknown one is an error)."),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="Only agents of this domain.")
    ] = None,
    now: NowOpt = None,
    json: JsonOpt = False,
) -> None:
    """Agents: status, tasks, durations and health."""
    with user_errors(), open_read_only(db) as store:
        projection = AgentStateProjection(store).initialize()
        found = projection.get_all_agents()
        present = {a.status for a in found}
        check_values(
            "--status", [status] if status else None, {*AGENT_STATUSES, *present}
        )
        if status is not None:
            found = [a for a in found if a.status == status]
        if domain is not None:
            found = [a for a in found if a.domain == domain]
        at = now_option(store, now)
        health = [
            h
            for a in found
            if (h := projection.get_agent_health(a.id, now=at)) is not None
        ]
        if json:
            write_json(
                {
                    "now": at,
                    "agents": found,
                    "health": health,
                    "active_agent_count": projection.get_active_agent_count(),
                }
            )
            return
        render_agents(make_console(), found, health)


def tasks(
    db: DbArg,
    status: Annotated[
        str | None,
        typer.Option(help="Only tasks in this status (an unknown one is an error)."),
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="Only tasks assigned to this agent.")
    ] = None,
    task_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Only tasks of this type (one the store holds; else an error).",
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Tasks: status, agent, duration, retries; success and failure rates."""
    with user_errors(), open_read_only(db) as store:
        projection = TaskHistoryProjection(store).initialize()
        found = projection.get_all_tasks()
        statuses = {*TASK_STATUSES, *(t.status for t in found)}
        check_values("--status", [status] if status else None, statuses)
        if task_type is not None and found:
            check_values("--type", [task_type], {t.type for t in found})
        if status is not None:
            found = [t for t in found if t.status == status]
        if agent is not None:
            found = [t for t in found if t.assigned_agent == agent]
        if task_type is not None:
            found = [t for t in found if t.type == task_type]
        average = projection.get_average_task_duration()
        success = projection.get_success_rate(agent_id=agent, task_type=task_type)
        failure = projection.get_failure_rate(agent_id=agent, task_type=task_type)
        if json:
            by_status: dict[str, int] = {}
            for task in found:
                by_status[task.status] = by_status.get(task.status, 0) + 1
            write_json(
                {
                    "tasks": found,
                    "by_status": by_status,
                    "average_task_duration": average,
                    "success_rate": success,
                    "failure_rate": failure,
                }
            )
            return
        render_tasks(
            make_console(),
            found,
            average=average,
            success=success,
            failure=failure,
            detail=True,
        )


def memory(
    db: DbArg,
    namespace: Annotated[
        str | None, typer.Option(help="List this namespace's active entries.")
    ] = None,
    hot_within: Annotated[
        float, typer.Option(help="Hot: retrieved within this many seconds.")
    ] = 120.0,
    cold_after: Annotated[
        float, typer.Option(help="Cold: not retrieved for this many seconds.")
    ] = 90.0,
    limit: Annotated[int, typer.Option(help="Hot entries to list.")] = 10,
    now: NowOpt = None,
    json: JsonOpt = False,
) -> None:
    """Memory: usage by namespace, hot and cold entries."""
    with user_errors():
        check_count(limit, "--limit")
        if hot_within < 0 or cold_after < 0:
            msg = "--hot-within and --cold-after must be >= 0"
            raise UsageError(msg)
        window = timedelta(seconds=hot_within)
        idle = timedelta(seconds=cold_after)
        with open_read_only(db) as store:
            projection = MemoryIndexProjection(store).initialize()
            at = now_option(store, now)
            active = projection.get_active_memories()
            hot = projection.get_hot_memories(max(len(active), 1), window, now=at)
            hot.sort(key=lambda e: (-e.access_count, e.id))
            hot = hot[:limit]
            cold = projection.get_cold_memories(idle, now=at)
            usage = dict(sorted(projection.get_namespace_usage().items()))
            total = projection.get_total_memory_size()
            entries = (
                projection.get_memories_by_namespace(namespace)
                if namespace is not None
                else []
            )
            if json:
                write_json(
                    {
                        "now": at,
                        "namespaces": usage,
                        "total_size": total,
                        "hot": hot,
                        "cold": cold,
                        "entries": entries,
                    }
                )
                return
            console = make_console()
            render_memory(
                console,
                usage,
                total=total,
                hot=hot,
                cold=cold,
                now=at,
                hot_window=window,
                cold_after=idle,
            )
            if namespace is not None:
                render_entries(console, namespace, entries, at)


def swarm(
    db: DbArg,
    swarm_id: Annotated[str, typer.Option(help="The swarm's aggregate id.")] = "swarm",
    json: JsonOpt = False,
) -> None:
    """The swarm: topology, scaling, phase timeline, milestones, errors."""
    with user_errors(), open_read_only(db) as store:
        state = SwarmProjection(store).initialize().get_swarm(swarm_id)
        if state is None:
            fail(f"no swarm {swarm_id!r} in {store.path}")
        if json:
            write_json(state)
            return
        render_swarm(make_console(), state)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Agents: status, tasks, durations and health.",
            "swarmlog agents swarm.db",
            "swarmlog agents swarm.db --status error --json",
        )
    )(agents)
    app.command(
        **help_text(
            "Tasks: status, agent, duration, retries; success and failure rates.",
            "swarmlog tasks swarm.db",
            "swarmlog tasks swarm.db --status failed",
            "swarmlog tasks swarm.db --agent agent-03 --json",
        )
    )(tasks)
    app.command(
        **help_text(
            "Memory: usage by namespace, hot and cold entries.",
            "swarmlog memory swarm.db",
            "swarmlog memory swarm.db --namespace knowledge --hot-within 600",
            "swarmlog memory swarm.db --json | jq .namespaces",
        )
    )(memory)
    app.command(
        **help_text(
            "The swarm: topology, scaling, phase timeline, milestones, errors.",
            "swarmlog swarm swarm.db",
            "swarmlog swarm swarm.db --json | jq .phase_timeline",
        )
    )(swarm)
