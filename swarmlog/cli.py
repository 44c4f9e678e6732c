"""The ``swarmlog`` command line: simulate a swarm, look inside a store file.

Needs the ``cli`` extra (``pip install 'swarmlog[cli]'``: rich for tables
and progress bars, typer for the command line). Both are imported lazily,
so ``import swarmlog`` never needs them, and without them ``swarmlog``
prints a one-line hint.

Every command that only reads opens the store with ``read_only=True``: it
never writes, migrates or locks a store another process is writing. User
mistakes (a missing file, a file that is not a swarmlog store, a store of a
newer format, a bad option value) end with one ``swarmlog: error: ...`` line
on stderr and a non-zero exit status, never a traceback.

Exit status: 0 success, 1 an error about the store or the run, 2 a bad
command line, 130 interrupted.

This module deliberately does not use ``from __future__ import annotations``:
typer reads the commands' annotations at runtime, and it is imported inside
:func:`build_app`, so they must be evaluated where typer is in scope.
"""

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from swarmlog.actors.read_models import (
    AgentHealth,
    AgentState,
    AgentStateProjection,
    MemoryEntry,
    MemoryIndexProjection,
    NamespaceUsage,
    SwarmProjection,
    SwarmState,
    TaskHistoryProjection,
    TaskState,
)
from swarmlog.schema.errors import SwarmlogError
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from rich.console import Console

    from swarmlog.schema.envelope import Event
    from swarmlog.simulation import ReadModels, RoundProgress, SimulationReport

__all__ = [
    "INSTALL_HINT",
    "build_app",
    "main",
    "render_agents",
    "render_memory",
    "render_simulation",
    "render_swarm",
    "render_tasks",
    "simulation_progress",
]

INSTALL_HINT = (
    "swarmlog: the command line needs rich and typer; "
    "install them with: pip install 'swarmlog[cli]'"
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_STATUS_STYLE = {
    "active": "green",
    "idle": "cyan",
    "completed": "blue",
    "error": "bold red",
    "failed": "red",
    "in-progress": "yellow",
    "queued": "magenta",
    "blocked": "dim",
    "pending": "dim",
}

# -- errors -------------------------------------------------------------------


class _UsageError(Exception):
    """A bad option value, reported like a store error but with exit 2."""


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"swarmlog: error: {first}\n")
    sys.stderr.flush()
    raise SystemExit(code)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn user mistakes into one stderr line and an exit status."""
    try:
        yield
    except _UsageError as e:
        _fail(str(e), EXIT_USAGE)
    except SwarmlogError as e:
        _fail(str(e))
    except UnicodeError as e:  # undecodable bytes in an argument (surrogates)
        _fail(f"an argument is not valid text: {e}", EXIT_USAGE)
    except BrokenPipeError:
        # The reader went away (`swarmlog events db | head`): stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - never closed on purpose
        raise SystemExit(0) from None
    except OSError as e:
        _fail(f"{e.filename or ''}: {e.strerror or e}" if e.filename else str(e))
    except KeyboardInterrupt:
        sys.stderr.write("swarmlog: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def _open_read_only(db: str) -> Iterator[EventStore]:
    """A read-only store on ``db`` (never created, migrated or locked)."""
    store = EventStore(db, read_only=True)
    try:
        store.initialize()
        yield store
    finally:
        store.shutdown()


def _parse_instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{option}: {value!r} is not an ISO 8601 date/time"
        msg += " (e.g. 2025-01-06T09:00:00Z)"
        raise _UsageError(msg) from None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def _check_count(value: int | None, option: str, minimum: int = 0) -> None:
    if value is not None and value < minimum:
        msg = f"{option} must be >= {minimum}, got {value}"
        raise _UsageError(msg)


# -- output helpers -----------------------------------------------------------


def _write_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


def _console() -> "Console":
    from rich.console import Console

    return Console(highlight=False)


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return (
        value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _clock(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%H:%M:%S")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _percent(value: float) -> str:
    return f"{value:.1%}"


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover - unreachable


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "-"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s ago" if minutes else f"{seconds}s ago"


def _plain(payload: Any) -> Any:
    return (
        msgspec.to_builtins(payload) if isinstance(payload, msgspec.Struct) else payload
    )


def event_summary(event: "Event[Any]", width: int = 80) -> str:
    """A one-line digest of an event's payload (instants, tracebacks and the
    aggregate id left out)."""
    data = _plain(event.payload)
    if isinstance(data, dict):
        parts = []
        for key, value in data.items():
            if key in ("type", "stack") or key.endswith("_at"):
                continue
            if value == event.aggregate_id:
                continue
            text = (
                msgspec.json.encode(value).decode()
                if not isinstance(value, str)
                else value
            )
            parts.append(f"{key}={text}")
        text = " ".join(parts)
    else:
        text = msgspec.json.encode(data).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _event_line(event: "Event[Any]") -> str:
    return (
        f"#{event.position} {_time(event.timestamp)} {event.type} "
        f"{event.aggregate_id} v{event.version}  {event_summary(event)}"
    )


def _table(title: str | None) -> Any:
    """A rich table in the house style (light rules, bold header)."""
    from rich import box
    from rich.table import Table

    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )


def _room(
    console: "Console", headers: Sequence[str], rows: Sequence[Sequence[str]]
) -> int:
    """Characters left for one last, free-text column after these columns."""
    fixed = sum(
        max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(headers)
    )
    return max(console.width - fixed - 2, 10)


# -- rendering (rich) ---------------------------------------------------------


def render_agents(
    console: "Console",
    agents: Sequence[AgentState],
    health: Sequence[AgentHealth] = (),
    *,
    title: str = "Agents",
) -> None:
    """Print agents as a table (with health columns when given)."""
    by_id = {h.agent_id: h for h in health}
    wide = console.width >= 110
    busy = any(agent.current_task for agent in agents)
    table = _table(title)
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
        row.append(_status(agent.status))
        if busy:
            row.append(agent.current_task or "-")
        row += [
            str(agent.task_count),
            str(len(agent.failed_tasks)),
            _ms(average),
            str(agent.error_count)
            if agent.error_count == 0
            else f"[red]{agent.error_count}[/]",
        ]
        if by_id:
            item = by_id.get(agent.id)
            finished = item is not None and item.completed_count + item.failed_count > 0
            row.append(
                _percent(item.success_rate) if item is not None and finished else "-"
            )
            if wide:
                row.append(_clock(agent.last_activity_at))
        table.add_row(*row)
    console.print(table)


def render_tasks(
    console: "Console",
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
                _ms(task.duration),
                str(task.retry_count),
            ]
            for task in tasks
        ]
        room = _room(console, headers, rows)
        status_at = headers.index("status")
        table = _table("Tasks")
        for header in headers:
            right = header in ("ms", "retries")
            table.add_column(header, no_wrap=True, justify="right" if right else "left")
        table.add_column("title", no_wrap=True, overflow="ellipsis")
        for row, task in zip(rows, tasks, strict=True):
            row[status_at] = _status(task.status)
            title = (
                task.title if len(task.title) <= room else task.title[: room - 1] + "…"
            )
            table.add_row(*row, title)
        console.print(table)
    groups: dict[str, list[str]] = {}
    for task in tasks:
        groups.setdefault(task.status, []).append(task.id)
    summary = _table("Tasks by status")
    summary.add_column("status")
    summary.add_column("count", justify="right")
    summary.add_column("tasks", overflow="fold")
    for status, ids in sorted(groups.items()):
        shown = ", ".join(ids[:8]) + (f", … (+{len(ids) - 8})" if len(ids) > 8 else "")
        summary.add_row(_status(status), str(len(ids)), shown)
    console.print(summary)
    console.print(
        f"average duration [bold]{average:,.0f} ms[/] · "
        f"success rate [green]{_percent(success)}[/] · "
        f"failure rate [red]{_percent(failure)}[/]"
    )


def render_memory(
    console: "Console",
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
    table = _table("Memory by namespace")
    table.add_column("namespace")
    table.add_column("entries", justify="right")
    table.add_column("size", justify="right")
    table.add_column("accesses", justify="right")
    for namespace, item in usage.items():
        table.add_row(
            namespace, str(item.entries), _size(item.bytes), str(item.accesses)
        )
    table.add_section()
    table.add_row(
        "[bold]total[/]",
        str(sum(u.entries for u in usage.values())),
        f"[bold]{_size(total)}[/]",
        str(sum(u.accesses for u in usage.values())),
    )
    console.print(table)
    at = now or datetime.now(UTC)
    if hot:
        window = f" (retrieved within {_span(hot_window)})" if hot_window else ""
        hot_table = _table(f"Hot entries{window}")
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
                _ago(at, entry.last_accessed_at),
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
            f"cold entries (idle > {_span(cold_after)}): [bold]{len(cold)}[/] "
            f"({_size(size)}) · {parts}"
        )


def _span(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def render_swarm(console: "Console", swarm: SwarmState | None) -> None:
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
    table = _table("Swarm timeline")
    table.add_column("time")
    table.add_column("what")
    table.add_column("detail", overflow="fold")
    for at, _, kind, detail in rows:
        table.add_row(_clock(at), kind, detail)
    console.print(table)
    if swarm.metrics:
        metrics = " · ".join(f"{k} {v}" for k, v in dict(swarm.metrics).items())
        console.print(f"metrics: {metrics}")


def render_read_models(
    console: "Console", models: "ReadModels", *, detail: bool = False
) -> None:
    """Print every read model of a :class:`~swarmlog.simulation.ReadModels`."""
    from swarmlog.simulation import COLD_AFTER, HOT_WINDOW

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


def render_simulation(console: "Console", report: "SimulationReport") -> None:
    """Print a finished simulation: read models, then the engine's proof."""
    console.print()
    console.rule(f"[bold]swarm simulation[/] · seed {report.seed}")
    render_read_models(console, report.read_models)
    console.print()
    console.rule("[bold]engine[/]")
    console.print(
        f"[bold]{report.events:,}[/] events in {report.elapsed_seconds:.2f} s → "
        f"[bold]{report.events_per_second:,.0f} events/s[/] "
        f"({report.agents_spawned} agent threads appending concurrently, "
        f"4 projections live)"
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


@contextlib.contextmanager
def simulation_progress(
    console: "Console", total: int
) -> Iterator[Callable[["RoundProgress"], None]]:
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

    def show(step: "RoundProgress") -> None:
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


# -- commands -----------------------------------------------------------------


def _last_instant(store: EventStore) -> datetime:
    """The newest event's timestamp (or now, for an empty store)."""
    head = store.head_position
    if head:
        events = store.query(from_position=head, limit=1)
        if events:
            return events[0].timestamp
    return datetime.now(UTC)


def _now_option(store: EventStore, now: str | None) -> datetime:
    return _parse_instant(now, "--now") or _last_instant(store)


def _help(summary: str, *examples: str) -> dict[str, Any]:
    """Command help with an Examples epilog (kept line by line)."""
    lines = "\n\n".join(f"  $ {e}" for e in examples)
    return {"help": summary, "epilog": f"Examples:\n\n{lines}"}


def build_app() -> Any:  # noqa: PLR0915 - one nested definition per command
    """The typer application (imports typer; raises ImportError without it)."""
    import typer

    app = typer.Typer(
        name="swarmlog",
        help=(
            "swarmlog: an embedded event store for agent swarms. Simulate a "
            "swarm, or look inside a store file (read-only) without writing code."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    DbArg = Annotated[  # noqa: N806 - a type alias
        str,
        typer.Argument(
            help="The store file (opened read-only).", metavar="DB", show_default=False
        ),
    ]
    JsonOpt = Annotated[  # noqa: N806 - a type alias
        bool, typer.Option("--json", help="Print JSON instead of tables.")
    ]
    NowOpt = Annotated[  # noqa: N806 - a type alias
        str | None,
        typer.Option(
            "--now",
            help="Instant for health and idle figures (default: the newest event).",
            metavar="ISO",
        ),
    ]

    @app.command(
        **_help(
            "Run the seeded, deterministic swarm simulation into a new store.",
            "swarmlog simulate",
            "swarmlog simulate --agents 16 --tasks 100 --seed 7 --db big.db",
            "swarmlog simulate --overwrite",
            "swarmlog simulate --db run.db --json | jq .fingerprint",
        )
    )
    def simulate(
        agents: Annotated[
            int, typer.Option(help="Worker agents to spawn at first.")
        ] = 8,
        tasks: Annotated[int, typer.Option(help="Tasks to plan.")] = 40,
        seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 42,
        db: Annotated[str, typer.Option(help="Store file to create.")] = "swarm.db",
        overwrite: Annotated[
            bool,
            typer.Option(
                "--overwrite", help="Replace an existing swarmlog store at --db."
            ),
        ] = False,
        json: JsonOpt = False,
    ) -> None:
        from swarmlog.simulation import run_simulation

        with _user_errors():
            _check_count(agents, "--agents", 1)
            _check_count(tasks, "--tasks", 1)
            console = None if json else _console()
            report = run_simulation(
                db,
                agents=agents,
                tasks=tasks,
                seed=seed,
                overwrite=overwrite,
                console=console,
            )
            if json:
                _write_json(report)
            if not report.rebuilt_matches:
                _fail("projections rebuilt from the log differ from the live ones")

    @app.command(
        **_help(
            "Store statistics, with each built-in projection's status and lag.",
            "swarmlog stats swarm.db",
            "swarmlog stats swarm.db --json | jq .events_by_type",
        )
    )
    def stats(
        db: DbArg,
        json: JsonOpt = False,
        top: Annotated[int, typer.Option(help="Aggregates to list in the table.")] = 10,
        projections: Annotated[
            bool,
            typer.Option(
                "--projections/--no-projections",
                help="Run the built-in projections (restored from their checkpoints).",
            ),
        ] = True,
    ) -> None:
        with _user_errors(), _open_read_only(db) as store:
            if projections:
                _settle([cls(store).initialize() for cls in _PROJECTIONS])
            result = store.get_stats()
            if json:
                _write_json(result)
                return
            _render_stats(_console(), store.path, result, top)

    @app.command(
        **_help(
            "List events, filtered, as a table or JSON lines.",
            "swarmlog events swarm.db --limit 20",
            "swarmlog events swarm.db --type task:failed --type agent:failed",
            "swarmlog events swarm.db --aggregate task-007 --json",
            "swarmlog events swarm.db --aggregate-type swarm --after 2025-01-06T09:01Z",
        )
    )
    def events(
        db: DbArg,
        aggregate: Annotated[
            list[str] | None,
            typer.Option(
                "--aggregate", "-a", help="Aggregate id (repeatable).", metavar="ID"
            ),
        ] = None,
        event_type: Annotated[
            list[str] | None,
            typer.Option(
                "--type",
                "-t",
                help="Event type, e.g. task:failed (repeatable).",
                metavar="TYPE",
            ),
        ] = None,
        aggregate_type: Annotated[
            list[str] | None,
            typer.Option(
                "--aggregate-type",
                help="agent, task, memory or swarm (repeatable).",
                metavar="TYPE",
            ),
        ] = None,
        after: Annotated[
            str | None,
            typer.Option(
                help="Only events strictly after this ISO 8601 instant.", metavar="ISO"
            ),
        ] = None,
        before: Annotated[
            str | None,
            typer.Option(
                help="Only events strictly before this ISO 8601 instant.", metavar="ISO"
            ),
        ] = None,
        from_position: Annotated[
            int | None, typer.Option(help="First position to show (inclusive).")
        ] = None,
        limit: Annotated[
            int | None, typer.Option(help="Show at most this many.")
        ] = None,
        json: Annotated[
            bool,
            typer.Option("--json", help="One JSON object per line (Event fields)."),
        ] = False,
    ) -> None:
        with _user_errors():
            _check_count(from_position, "--from-position")
            _check_count(limit, "--limit")
            after_at = _parse_instant(after, "--after")
            before_at = _parse_instant(before, "--before")
            with _open_read_only(db) as store:
                found = store.query(
                    aggregate_ids=aggregate or None,
                    aggregate_types=aggregate_type or None,
                    event_types=event_type or None,
                    after_timestamp=after_at,
                    before_timestamp=before_at,
                    from_position=from_position,
                    limit=limit,
                )
                if json:
                    for event in found:
                        _write_json(event)
                    return
                _render_events(_console(), found)

    @app.command(
        **_help(
            "Follow new events as another process appends them (read-only).",
            "swarmlog tail swarm.db",
            "swarmlog tail swarm.db --lines 0 --json --type task:completed",
            "swarmlog tail swarm.db --count 100 --timeout 30",
        )
    )
    def tail(
        db: DbArg,
        lines: Annotated[
            int, typer.Option("--lines", "-n", help="Existing events to show first.")
        ] = 10,
        from_position: Annotated[
            int | None,
            typer.Option(help="Start at this position instead of the last --lines."),
        ] = None,
        event_type: Annotated[
            list[str] | None,
            typer.Option(
                "--type", "-t", help="Only this type (repeatable).", metavar="TYPE"
            ),
        ] = None,
        count: Annotated[
            int | None, typer.Option(help="Stop after printing this many events.")
        ] = None,
        timeout: Annotated[
            float | None, typer.Option(help="Stop after this many seconds.")
        ] = None,
        interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.2,
        json: Annotated[
            bool,
            typer.Option("--json", help="One JSON object per line (Event fields)."),
        ] = False,
    ) -> None:
        with _user_errors():
            _check_count(lines, "--lines")
            _check_count(from_position, "--from-position")
            _check_count(count, "--count", 1)
            if interval <= 0 or (timeout is not None and timeout < 0):
                msg = "--interval must be > 0 and --timeout >= 0"
                raise _UsageError(msg)
            with _open_read_only(db) as store:
                _follow(
                    store,
                    lines,
                    from_position,
                    event_type,
                    count,
                    timeout,
                    interval,
                    json,
                )

    @app.command(
        **_help(
            "Replay the log into the built-in projections and print them.",
            "swarmlog replay swarm.db",
            "swarmlog replay swarm.db --at 250",
            "swarmlog replay swarm.db --at 250 --json | jq .read_models.swarm.phase",
        )
    )
    def replay(
        db: DbArg,
        at: Annotated[
            int | None,
            typer.Option(
                "--at", help="Show the state as of this position (default: the head)."
            ),
        ] = None,
        json: JsonOpt = False,
    ) -> None:
        with _user_errors():
            _check_count(at, "--at")
            with _open_read_only(db) as store:
                _replay(store, at, json)

    @app.command(
        **_help(
            "Agents: status, tasks, durations and health.",
            "swarmlog agents swarm.db",
            "swarmlog agents swarm.db --status error --json",
        )
    )
    def agents(
        db: DbArg,
        status: Annotated[
            str | None, typer.Option(help="Only agents in this status.")
        ] = None,
        domain: Annotated[
            str | None, typer.Option(help="Only agents of this domain.")
        ] = None,
        now: NowOpt = None,
        json: JsonOpt = False,
    ) -> None:
        with _user_errors(), _open_read_only(db) as store:
            projection = AgentStateProjection(store).initialize()
            found = projection.get_all_agents()
            if status is not None:
                found = [a for a in found if a.status == status]
            if domain is not None:
                found = [a for a in found if a.domain == domain]
            at = _now_option(store, now)
            health = [
                h
                for a in found
                if (h := projection.get_agent_health(a.id, now=at)) is not None
            ]
            if json:
                _write_json(
                    {
                        "now": at,
                        "agents": found,
                        "health": health,
                        "active_agent_count": projection.get_active_agent_count(),
                    }
                )
                return
            render_agents(_console(), found, health)

    @app.command(
        **_help(
            "Tasks: status, agent, duration, retries; success and failure rates.",
            "swarmlog tasks swarm.db",
            "swarmlog tasks swarm.db --status failed",
            "swarmlog tasks swarm.db --agent agent-03 --json",
        )
    )
    def tasks(
        db: DbArg,
        status: Annotated[
            str | None, typer.Option(help="Only tasks in this status.")
        ] = None,
        agent: Annotated[
            str | None, typer.Option(help="Only tasks assigned to this agent.")
        ] = None,
        task_type: Annotated[
            str | None, typer.Option("--type", help="Only tasks of this type.")
        ] = None,
        json: JsonOpt = False,
    ) -> None:
        with _user_errors(), _open_read_only(db) as store:
            projection = TaskHistoryProjection(store).initialize()
            found = projection.get_all_tasks()
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
                _write_json(
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
                _console(),
                found,
                average=average,
                success=success,
                failure=failure,
                detail=True,
            )

    @app.command(
        **_help(
            "Memory: usage by namespace, hot and cold entries.",
            "swarmlog memory swarm.db",
            "swarmlog memory swarm.db --namespace knowledge --hot-within 600",
            "swarmlog memory swarm.db --json | jq .namespaces",
        )
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
        with _user_errors():
            _check_count(limit, "--limit")
            if hot_within < 0 or cold_after < 0:
                msg = "--hot-within and --cold-after must be >= 0"
                raise _UsageError(msg)
            window = timedelta(seconds=hot_within)
            idle = timedelta(seconds=cold_after)
            with _open_read_only(db) as store:
                projection = MemoryIndexProjection(store).initialize()
                at = _now_option(store, now)
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
                    _write_json(
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
                console = _console()
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
                    _render_entries(console, namespace, entries, at)

    @app.command(
        **_help(
            "The swarm: topology, scaling, phase timeline, milestones, errors.",
            "swarmlog swarm swarm.db",
            "swarmlog swarm swarm.db --json | jq .phase_timeline",
        )
    )
    def swarm(
        db: DbArg,
        swarm_id: Annotated[
            str, typer.Option(help="The swarm's aggregate id.")
        ] = "swarm",
        json: JsonOpt = False,
    ) -> None:
        with _user_errors(), _open_read_only(db) as store:
            state = SwarmProjection(store).initialize().get_swarm(swarm_id)
            if state is None:
                _fail(f"no swarm {swarm_id!r} in {store.path}")
            if json:
                _write_json(state)
                return
            render_swarm(_console(), state)

    @app.command(
        **_help(
            "Show an aggregate's latest snapshot.",
            "swarmlog snapshot swarm.db agent-01",
            "swarmlog snapshot swarm.db swarm --json",
        )
    )
    def snapshot(
        db: DbArg,
        aggregate: Annotated[
            str,
            typer.Argument(
                help="The aggregate id.", metavar="AGGREGATE", show_default=False
            ),
        ],
        json: JsonOpt = False,
    ) -> None:
        with _user_errors(), _open_read_only(db) as store:
            found = store.get_snapshot(aggregate)
            if found is None:
                _fail(f"no snapshot of aggregate {aggregate!r} in {store.path}")
                return
            if json:
                _write_json(found)
                return
            from rich.json import JSON

            console = _console()
            console.print(
                f"[bold]{found.aggregate_id}[/] ({found.aggregate_type}) · version "
                f"[bold]{found.version}[/] · taken {_time(found.timestamp)}"
            )
            console.print(JSON(msgspec.json.encode(found.state).decode()))

    return app


_PROJECTIONS = (
    AgentStateProjection,
    TaskHistoryProjection,
    MemoryIndexProjection,
    SwarmProjection,
)


def _settle(projections: Sequence[Any], timeout: float = 30.0) -> None:
    """Wait (bounded) until each projection is ``live`` or ``failed``.

    On a read-only store a projection catches up to the head as of the
    store's opening and then goes ``live``; its position can reach that
    head (from a checkpoint) a moment before its status says so. Waiting
    for ``store.head_position`` instead could wait in vain: that reads the
    file's head, which another process may keep moving.
    """
    deadline = time.monotonic() + timeout
    for projection in projections:
        while projection.status not in ("live", "failed"):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)


def _render_stats(console: "Console", path: str, result: Any, top: int) -> None:
    console.print(f"[bold]{path}[/]")
    console.print(
        f"{result.total_events:,} events · head {result.head_position:,} · "
        f"{result.snapshot_count:,} snapshots · {_size(result.database_size_bytes)} · "
        f"{_time(result.oldest_event)} → {_time(result.newest_event)}"
    )
    by_type = _table("Events by type")
    by_type.add_column("type")
    by_type.add_column("count", justify="right")
    for name, n in sorted(
        result.events_by_type.items(), key=lambda kv: (-kv[1], kv[0])
    ):
        by_type.add_row(name, f"{n:,}")
    console.print(by_type)
    aggregates = sorted(
        result.events_by_aggregate.items(), key=lambda kv: (-kv[1], kv[0])
    )
    if top > 0 and aggregates:
        table = _table(
            f"Busiest aggregates ({min(top, len(aggregates))} of {len(aggregates):,})"
        )
        table.add_column("aggregate", min_width=24)
        table.add_column("events", justify="right")
        for name, n in aggregates[:top]:
            table.add_row(name, f"{n:,}")
        console.print(table)
    if result.projections:
        table = _table("Projections")
        for name in (
            "projection",
            "status",
            "position",
            "lag",
            "handled",
            "snapshot at",
        ):
            table.add_column(
                name, justify="left" if name in ("projection", "status") else "right"
            )
        table.add_column("dead letters", justify="right")
        for name, item in result.projections.items():
            table.add_row(
                name,
                _status(item.status),
                f"{item.position:,}",
                f"{item.lag:,}",
                f"{item.events_handled:,}",
                f"{item.snapshot_position:,}",
                str(item.dead_letters),
            )
        console.print(table)


def _render_events(console: "Console", found: Sequence["Event[Any]"]) -> None:
    days = {event.timestamp.astimezone(UTC).date() for event in found}
    one_day = len(days) == 1
    rows = []
    for event in found:
        at = event.timestamp.astimezone(UTC)
        rows.append(
            [
                str(event.position),
                at.strftime("%H:%M:%S.%f")[:-3] if one_day else _time(at),
                event.type,
                event.aggregate_id,
                str(event.version),
            ]
        )
    headers = ["pos", "time (UTC)" if one_day else "time", "type", "aggregate", "v"]
    room = _room(console, headers, rows)
    table = _table(None)
    for header in headers:
        table.add_column(
            header, no_wrap=True, justify="right" if header in ("pos", "v") else "left"
        )
    table.add_column("payload", no_wrap=True, overflow="ellipsis")
    for row, event in zip(rows, found, strict=True):
        table.add_row(*row, event_summary(event, room))
    console.print(table)
    day = f" on {next(iter(days)).isoformat()}" if one_day else ""
    console.print(f"[dim]{len(found):,} events{day}[/]")


def _render_entries(
    console: "Console", namespace: str, entries: Sequence[MemoryEntry], now: datetime
) -> None:
    table = _table(f"Entries in {namespace}")
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
            _size(entry.size),
            str(entry.access_count),
            _ago(now, entry.last_accessed_at),
        )
    console.print(table)


def _follow(
    store: EventStore,
    lines: int,
    from_position: int | None,
    event_types: list[str] | None,
    count: int | None,
    timeout: float | None,
    interval: float,
    json: bool,
) -> None:
    """Print events from a start position on, then poll for new ones."""
    head = store.head_position
    start = from_position if from_position is not None else max(head - lines + 1, 1)
    wanted = set(event_types) if event_types else None
    sys.stderr.write(
        f"swarmlog: following {store.path} from position {start} (head {head}); "
        "Ctrl-C to stop\n"
    )
    sys.stderr.flush()
    deadline = None if timeout is None else time.monotonic() + timeout
    last = start - 1
    printed = 0
    while True:
        if store.head_position > last:
            for event in store.replay(last + 1):
                last = event.position
                if wanted is not None and event.type not in wanted:
                    continue
                if json:
                    _write_json(event)
                else:
                    sys.stdout.write(_event_line(event) + "\n")
                    sys.stdout.flush()
                printed += 1
                if count is not None and printed >= count:
                    return
        if deadline is not None and time.monotonic() >= deadline:
            return
        pause = (
            interval if deadline is None else min(interval, deadline - time.monotonic())
        )
        if pause > 0:
            time.sleep(pause)


def _replay(store: EventStore, at: int | None, json: bool) -> None:
    """Replay into the four built-in projections, with a progress bar."""
    from swarmlog.simulation import collect_read_models

    head = store.head_position
    if at is not None and at > head:
        msg = f"--at {at} is beyond the head of {store.path} ({head})"
        raise _UsageError(msg)
    position = head if at is None else at
    console = _console() if not json else None
    if at is None:
        # Full replay: the live projections rebuild from position 0.
        models = [cls(store).initialize() for cls in _PROJECTIONS]
        with _progress(console) as bar:
            for model in models:
                task = bar.add_task(model.name, total=max(head, 1)) if bar else None

                def step(done: int, total: int, task: Any = task) -> None:
                    if bar is not None:
                        bar.update(task, completed=done, total=max(total, 1))

                model.rebuild(on_progress=step)
                if bar is not None:
                    bar.update(task, completed=max(head, 1))
    else:
        models = []
        with _progress(console) as bar:
            for cls in _PROJECTIONS:
                task = bar.add_task(cls.name, total=max(position, 1)) if bar else None
                models.append(cls.as_of(store, position))
                if bar is not None:
                    bar.update(task, completed=max(position, 1))
    position = min(model.position for model in models)
    now = _instant_at(store, position)
    read_models = collect_read_models(*models, now=now)  # type: ignore[arg-type]
    if json:
        _write_json({"position": position, "head": head, "read_models": read_models})
        return
    assert console is not None
    console.rule(f"[bold]read models as of position {position:,}[/] (head {head:,})")
    render_read_models(console, read_models, detail=False)


def _instant_at(store: EventStore, position: int) -> datetime:
    if position > 0:
        events = store.query(from_position=position, limit=1)
        if events:
            return events[0].timestamp
    return datetime.now(UTC)


@contextlib.contextmanager
def _progress(console: "Console | None") -> Iterator[Any]:
    if console is None:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(
        TextColumn("replaying [bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        console=console,
    )
    with progress:
        yield progress


# -- entry point --------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``swarmlog`` command line; return its exit status.

    Prints :data:`INSTALL_HINT` (exit 1) when rich or typer is missing.
    """
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        sys.stderr.write(INSTALL_HINT + "\n")
        return EXIT_ERROR
    app = build_app()
    try:
        app(args=list(argv) if argv is not None else None, prog_name="swarmlog")
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
