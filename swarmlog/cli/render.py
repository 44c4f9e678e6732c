"""Rich rendering of the read models and of a finished simulation.

Every function prints to a given rich ``Console``; rich itself is imported
only when a table or progress bar is built (``import swarmlog.cli`` must
work without the ``cli`` extra). Runs on the command's (main) thread.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from swarmlog.cli.format import (
    ago,
    byte_size,
    clock_time,
    free_width,
    milliseconds,
    new_table,
    percent,
    span,
    status_markup,
)
from swarmlog.summary import COLD_AFTER, HOT_WINDOW

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import timedelta

    from rich.console import Console

    from swarmlog.actors.read_models import (
        AgentHealth,
        AgentState,
        MemoryEntry,
        NamespaceUsage,
        SwarmState,
        TaskState,
    )
    from swarmlog.simulation import RoundProgress, SimulationReport
    from swarmlog.summary import ReadModels

__all__ = [
    "render_agents",
    "render_entries",
    "render_memory",
    "render_read_models",
    "render_simulation",
    "render_swarm",
    "render_tasks",
    "simulation_progress",
]


# -- rendering (rich) ---------------------------------------------------------


def render_agents(
    console: Console,
    agents: Sequence[AgentState],
    health: Sequence[AgentHealth] = (),
    *,
    title: str = "Agents",
) -> None:
    """Print agents as a table (with health columns when given)."""
    by_id = {h.agent_id: h for h in health}
    wide = console.width >= 110
    busy = any(agent.current_task for agent in agents)
    table = new_table(title)
    table.add_column("agent", no_wrap=True)
    table.add_column("role", no_wrap=True, max_width=18, overflow="ellipsis")
    if wide:
        table.add_column("domain", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if busy:
        table.add_column("task", no_wrap=True)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("fail", justify="right", no_wrap=True)
    table.add_column("avg ms", justify="right", no_wrap=True)
    table.add_column("err", justify="right", no_wrap=True)
    if by_id:
        table.add_column("success", justify="right", no_wrap=True)
        if wide:
            table.add_column("last seen", justify="right", no_wrap=True)
    for agent in agents:
        average = (
            agent.total_task_duration / agent.task_count if agent.task_count else None
        )
        row = [agent.id, agent.role]
        if wide:
            row.append(agent.domain)
        row.append(status_markup(agent.status))
        if busy:
            row.append(agent.current_task or "-")
        row += [
            str(agent.task_count),
            str(len(agent.failed_tasks)),
            milliseconds(average),
            str(agent.error_count)
            if agent.error_count == 0
            else f"[red]{agent.error_count}[/]",
        ]
        if by_id:
            item = by_id.get(agent.id)
            finished = item is not None and item.completed_count + item.failed_count > 0
            row.append(
                percent(item.success_rate) if item is not None and finished else "-"
            )
            if wide:
                row.append(clock_time(agent.last_activity_at))
        table.add_row(*row)
    console.print(table)


def render_tasks(
    console: Console,
    tasks: Sequence[TaskState],
    *,
    average: float,
    success: float,
    failure: float,
    detail: bool = False,
) -> None:
    """Print tasks by status (and, with ``detail``, every task)."""
    if detail:
        wide = console.width >= 100
        headers = ["task", "type", "priority", "status", "agent", "ms", "retries"]
        if not wide:
            headers.remove("type")
        rows = [
            [
                task.id,
                *([task.type] if wide else []),
                task.priority,
                task.status,
                task.assigned_agent or "-",
                milliseconds(task.duration),
                str(task.retry_count),
            ]
            for task in tasks
        ]
        room = free_width(console, headers, rows)
        status_at = headers.index("status")
        table = new_table("Tasks")
        for header in headers:
            right = header in ("ms", "retries")
            table.add_column(header, no_wrap=True, justify="right" if right else "left")
        table.add_column("title", no_wrap=True, overflow="ellipsis")
        for row, task in zip(rows, tasks, strict=True):
            row[status_at] = status_markup(task.status)
            title = (
                task.title if len(task.title) <= room else task.title[: room - 1] + "…"
            )
            table.add_row(*row, title)
        console.print(table)
    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(task.status, []).append(task.id)
    summary = new_table("Tasks by status")
    summary.add_column("status")
    summary.add_column("count", justify="right")
    summary.add_column("tasks", overflow="fold")
    for status, ids in sorted(groups.items()):
        shown = ", ".join(ids[:8]) + (f", … (+{len(ids) - 8})" if len(ids) > 8 else "")
        summary.add_row(status_markup(status), str(len(ids)), shown)
    console.print(summary)
    console.print(
        f"average duration [bold]{average:,.0f} ms[/] · "
        f"success rate [green]{percent(success)}[/] · "
        f"failure rate [red]{percent(failure)}[/]"
    )


def render_memory(
    console: Console,
    usage: Mapping[str, NamespaceUsage],
    *,
    total: int,
    hot: Sequence[MemoryEntry] = (),
    cold: Sequence[MemoryEntry] = (),
    now: datetime | None = None,
    hot_window: timedelta | None = None,
    cold_after: timedelta | None = None,
) -> None:
    """Print memory usage by namespace, then the hot and cold entries."""
    table = new_table("Memory by namespace")
    table.add_column("namespace")
    table.add_column("entries", justify="right")
    table.add_column("size", justify="right")
    table.add_column("accesses", justify="right")
    for namespace, item in usage.items():
        table.add_row(
            namespace, str(item.entries), byte_size(item.bytes), str(item.accesses)
        )
    table.add_section()
    table.add_row(
        "[bold]total[/]",
        str(sum(u.entries for u in usage.values())),
        f"[bold]{byte_size(total)}[/]",
        str(sum(u.accesses for u in usage.values())),
    )
    console.print(table)
    at = now or datetime.now(UTC)
    if hot:
        window = f" (retrieved within {span(hot_window)})" if hot_window else ""
        hot_table = new_table(f"Hot entries{window}")
        hot_table.add_column("entry")
        hot_table.add_column("namespace")
        hot_table.add_column("key")
        hot_table.add_column("accesses", justify="right")
        hot_table.add_column("last access", justify="right")
        for entry in hot:
            hot_table.add_row(
                entry.id,
                entry.namespace,
                entry.key,
                f"[bold]{entry.access_count}[/]",
                ago(at, entry.last_accessed_at),
            )
        console.print(hot_table)
    if cold_after is not None:
        by_namespace: dict[str, int] = {}
        for entry in cold:
            by_namespace[entry.namespace] = by_namespace.get(entry.namespace, 0) + 1
        parts = (
            ", ".join(f"{ns} {n}" for ns, n in sorted(by_namespace.items())) or "none"
        )
        size = sum(e.size for e in cold)
        console.print(
            f"cold entries (idle > {span(cold_after)}): [bold]{len(cold)}[/] "
            f"({byte_size(size)}) · {parts}"
        )


def render_swarm(console: Console, swarm: SwarmState | None) -> None:
    """Print the swarm's shape and its timeline (phases, scaling,
    milestones, errors, termination)."""
    if swarm is None:
        console.print("[dim]no swarm initialised[/]")
        return
    state = (
        f"[blue]terminated[/] ({swarm.termination_reason})"
        if swarm.terminated
        else f"phase [bold]{swarm.phase or '-'}[/]"
    )
    console.print(
        f"[bold]Swarm {swarm.id}[/] · {swarm.topology} · "
        f"max {swarm.max_agents} agents · "
        f"{swarm.agent_count} now · {len(swarm.milestones)} milestones · "
        f"{len(swarm.errors)} errors · {state}"
    )
    rows: list[tuple[datetime, int, str, str]] = [
        (swarm.initialized_at, 0, "initialized", "")
    ]
    for i, phase in enumerate(swarm.phase_timeline):
        rows.append(
            (
                phase.changed_at,
                i,
                "[bold]phase[/]",
                f"{phase.previous_phase} → [bold]{phase.new_phase}[/]",
            )
        )
    for i, scale in enumerate(swarm.scale_history):
        rows.append(
            (
                scale.scaled_at,
                i,
                "scaled",
                f"{scale.previous_agent_count} → {scale.new_agent_count} "
                f"({scale.reason})",
            )
        )
    for i, milestone in enumerate(swarm.milestones):
        rows.append((milestone.reached_at, i, "[green]milestone[/]", milestone.name))
    for i, error in enumerate(swarm.errors):
        rows.append((error.error_at, i, "[red]error[/]", error.error))
    if swarm.terminated and swarm.terminated_at is not None:
        rows.append(
            (
                swarm.terminated_at,
                0,
                "[blue]terminated[/]",
                swarm.termination_reason or "",
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    table = new_table("Swarm timeline")
    table.add_column("time")
    table.add_column("what")
    table.add_column("detail", overflow="fold")
    for at, _, kind, detail in rows:
        table.add_row(clock_time(at), kind, detail)
    console.print(table)
    if swarm.metrics:
        metrics = " · ".join(f"{k} {v}" for k, v in dict(swarm.metrics).items())
        console.print(f"metrics: {metrics}")


def render_read_models(
    console: Console, models: ReadModels, *, detail: bool = False
) -> None:
    """Print every read model of a :class:`~swarmlog.simulation.ReadModels`."""
    render_agents(console, models.agents, models.health)
    console.print()
    render_tasks(
        console,
        models.tasks,
        average=models.average_task_duration,
        success=models.success_rate,
        failure=models.failure_rate,
        detail=detail,
    )
    console.print()
    render_memory(
        console,
        models.namespace_usage,
        total=models.total_memory_size,
        hot=models.hot_memories,
        cold=models.cold_memories,
        now=models.now,
        hot_window=HOT_WINDOW,
        cold_after=COLD_AFTER,
    )
    console.print()
    render_swarm(console, models.swarm)


def render_simulation(console: Console, report: SimulationReport) -> None:
    """Print a finished simulation: read models, then the engine's proof."""
    console.print()
    console.rule(f"[bold]swarm simulation[/] · seed {report.seed}")
    render_read_models(console, report.read_models)
    console.print()
    console.rule("[bold]engine[/]")
    console.print(
        f"[bold]{report.events:,}[/] events in {report.elapsed_seconds:.2f} s → "
        f"[bold]{report.events_per_second:,.0f} events/s[/] "
        f"({_where_agents_ran(report)}, 4 projections live)"
    )
    console.print(
        f"{report.rounds} rounds · {report.tasks_completed} tasks completed · "
        f"{report.tasks_failed} failed · {report.retries} retries · "
        f"{report.agent_failures} agent crashes · "
        f"{len(report.events_by_type)} event types · "
        f"{report.simulated_seconds:,.0f} s simulated"
    )
    verdict = (
        "[bold green]identical to the live read models ✓[/]"
        if report.rebuilt_matches
        else "[bold red]DIFFERENT from the live read models ✗[/]"
    )
    console.print(
        f"rebuilt 4 projections from the log in "
        f"{report.rebuild_seconds * 1000:,.0f} ms: {verdict}"
    )
    console.print(
        f"read-model fingerprint [bold]{report.fingerprint}[/] "
        f"(same seed → same fingerprint) · store [bold]{report.db_path}[/]"
    )
    if report.threaded_fingerprint is not None:
        console.print(
            "fingerprint matches the threaded run of this seed "
            f"({report.threaded_fingerprint}) [bold green]✓[/]"
            if report.matches_threaded
            else "[bold red]fingerprint DIFFERS from the threaded run of this "
            f"seed ({report.threaded_fingerprint}) ✗[/]"
        )
    console.print(
        f"{report.llm_calls} simulated model calls recorded as effects: "
        "replay them with [bold]swarmlog simulate --replay[/] "
        f"{report.db_path}"
    )


def _where_agents_ran(report: SimulationReport) -> str:
    if not report.processes:
        return f"{report.agents_spawned} agent threads appending concurrently"
    plural = "es" if report.processes != 1 else ""
    return (
        f"{report.agents_spawned} agents in {report.processes} "
        f"{report.start_method} process{plural} + the coordinator, appending "
        "concurrently to one multi-process file"
    )


@contextlib.contextmanager
def simulation_progress(
    console: Console, total: int
) -> Iterator[Callable[[RoundProgress], None]]:
    """A live progress bar; yields the callback that advances it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        TextColumn("[dim]{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("initialization", total=total, detail="")

    def show(step: RoundProgress) -> None:
        where = f"round {step.round}" if step.round else step.phase
        progress.update(
            task,
            description=f"{step.phase:<14}",
            completed=step.finished,
            total=step.total,
            detail=f"{where} · {step.events:,} events · {step.active_agents} active",
        )

    with progress:
        yield show


def render_entries(
    console: Console, namespace: str, entries: Sequence[MemoryEntry], now: datetime
) -> None:
    """Print one namespace's entries with their access figures."""
    table = new_table(f"Entries in {namespace}")
    table.add_column("entry", no_wrap=True)
    table.add_column("key", overflow="ellipsis")
    table.add_column("type", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("accesses", justify="right", no_wrap=True)
    table.add_column("last access", no_wrap=True)
    for entry in entries:
        table.add_row(
            entry.id,
            entry.key,
            entry.type,
            byte_size(entry.size),
            str(entry.access_count),
            ago(now, entry.last_accessed_at),
        )
    console.print(table)
