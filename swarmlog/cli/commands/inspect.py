"""``swarmlog stats``, ``replay`` and ``snapshot``: the store as a whole."""

from typing import Annotated, Any

import msgspec
import typer

from swarmlog.cli.common import (
    BUILTIN_PROJECTIONS,
    UsageError,
    check_count,
    fail,
    help_text,
    instant_at,
    make_console,
    open_read_only,
    settle,
    user_errors,
    write_json,
)
from swarmlog.cli.format import iso_time
from swarmlog.cli.options import DbArg, JsonOpt
from swarmlog.cli.render import render_read_models
from swarmlog.cli.render_store import (
    busiest_aggregates,
    render_stats,
    replay_progress,
)
from swarmlog.store import EventStore

__all__ = ["register", "replay", "snapshot", "stats"]


def stats(
    db: DbArg,
    json: JsonOpt = False,
    top: Annotated[
        int,
        typer.Option(
            help=(
                "Busiest aggregates to list, in the table and in --json's "
                "events_by_aggregate."
            )
        ),
    ] = 10,
    projections: Annotated[
        bool,
        typer.Option(
            "--projections/--no-projections",
            help="Run the built-in projections (restored from their snapshots).",
        ),
    ] = True,
) -> None:
    """Store statistics, with each built-in projection's status and lag."""
    with user_errors():
        check_count(top, "--top")
        with open_read_only(db) as store:
            if projections:
                settle([cls(store).initialize() for cls in BUILTIN_PROJECTIONS])
            result = store.get_stats()
            if json:
                busiest = busiest_aggregates(result.events_by_aggregate, top)
                write_json(
                    msgspec.structs.replace(result, events_by_aggregate=dict(busiest))
                )
                return
            render_stats(make_console(), store.path, result, top)


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
    """Replay the log into the built-in projections and print them."""
    with user_errors():
        check_count(at, "--at")
        with open_read_only(db) as store:
            replay_into_projections(store, at, json)


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
    """Show an aggregate's latest snapshot."""
    with user_errors(), open_read_only(db) as store:
        found = store.get_snapshot(aggregate)
        if found is None:
            fail(f"no snapshot of aggregate {aggregate!r} in {store.path}")
            return
        if json:
            write_json(found)
            return
        from rich.json import JSON

        console = make_console()
        console.print(
            f"[bold]{found.aggregate_id}[/] ({found.aggregate_type}) · version "
            f"[bold]{found.version}[/] · taken {iso_time(found.timestamp)}"
        )
        console.print(JSON(msgspec.json.encode(found.state).decode()))


def replay_into_projections(store: EventStore, at: int | None, json: bool) -> None:
    """Replay into the four built-in projections, with a progress bar."""
    from swarmlog.simulation import collect_read_models

    head = store.head_position
    if at is not None and at > head:
        msg = f"--at {at} is beyond the head of {store.path} ({head})"
        raise UsageError(msg)
    position = head if at is None else at
    console = make_console() if not json else None
    if at is None:
        # Full replay: the live projections rebuild from position 0.
        models = [cls(store).initialize() for cls in BUILTIN_PROJECTIONS]
        with replay_progress(console) as bar:
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
        with replay_progress(console) as bar:
            for cls in BUILTIN_PROJECTIONS:
                task = bar.add_task(cls.name, total=max(position, 1)) if bar else None
                models.append(cls.as_of(store, position))
                if bar is not None:
                    bar.update(task, completed=max(position, 1))
    position = min(model.position for model in models)
    now = instant_at(store, position)
    read_models = collect_read_models(*models, now=now)  # type: ignore[arg-type]
    if json:
        write_json({"position": position, "head": head, "read_models": read_models})
        return
    assert console is not None
    console.rule(f"[bold]read models as of position {position:,}[/] (head {head:,})")
    render_read_models(console, read_models, detail=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "Store statistics, with each built-in projection's status and lag.",
            "swarmlog stats swarm.db",
            "swarmlog stats swarm.db --json | jq .events_by_type",
        )
    )(stats)
    app.command(
        **help_text(
            "Replay the log into the built-in projections and print them.",
            "swarmlog replay swarm.db",
            "swarmlog replay swarm.db --at 250",
            "swarmlog replay swarm.db --at 250 --json | jq .read_models.swarm.phase",
        )
    )(replay)
    app.command(
        **help_text(
            "Show an aggregate's latest snapshot.",
            "swarmlog snapshot swarm.db agent-01",
            "swarmlog snapshot swarm.db swarm --json",
        )
    )(snapshot)
