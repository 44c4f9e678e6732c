"""``swarmlog events`` and ``swarmlog tail``: list and follow the log."""

import sys
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from swarmlog.cli.common import (
    UsageError,
    check_count,
    help_text,
    make_console,
    open_read_only,
    parse_instant,
    user_errors,
    write_json,
)
from swarmlog.cli.format import event_line
from swarmlog.cli.options import DbArg, EventsJsonOpt
from swarmlog.cli.render_store import render_events
from swarmlog.cli.vocabulary import check_aggregate_types, check_event_types
from swarmlog.schema.envelope import Event
from swarmlog.store import EventStore

__all__ = ["events", "register", "tail"]


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
            help=(
                "Event type, e.g. task:failed (repeatable; an unknown type is "
                "an error)."
            ),
            metavar="TYPE",
        ),
    ] = None,
    aggregate_type: Annotated[
        list[str] | None,
        typer.Option(
            "--aggregate-type",
            help=(
                "agent, task, memory, swarm or a registered type (repeatable; "
                "an unknown type is an error)."
            ),
            metavar="TYPE",
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            help=(
                "Only events strictly after this ISO 8601 instant, with a "
                "timezone (Z or +02:00; a naive time is refused)."
            ),
            metavar="ISO",
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            help=(
                "Only events strictly before this ISO 8601 instant, with a "
                "timezone (Z or +02:00; a naive time is refused)."
            ),
            metavar="ISO",
        ),
    ] = None,
    from_position: Annotated[
        int | None, typer.Option(help="First position to show (inclusive).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Show at most this many.")] = None,
    correlation: Annotated[
        str | None,
        typer.Option(
            "--correlation",
            "-c",
            help="Only events with this correlation id (indexed).",
            metavar="ID",
        ),
    ] = None,
    json: EventsJsonOpt = False,
) -> None:
    """List events, filtered, as a table or JSON lines."""
    with user_errors():
        check_count(from_position, "--from-position")
        check_count(limit, "--limit")
        after_at = parse_instant(after, "--after")
        before_at = parse_instant(before, "--before")
        with open_read_only(db) as store:
            check_event_types(store, "--type", event_type)
            check_aggregate_types(store, "--aggregate-type", aggregate_type)
            if correlation is not None:
                found = _filtered(
                    store.get_correlated(correlation),
                    aggregate,
                    event_type,
                    aggregate_type,
                    after_at,
                    before_at,
                    from_position,
                )[:limit]
            else:
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
                    write_json(event)
                return
            render_events(make_console(), found)


def _filtered(
    found: list[Event[Any]],
    aggregates: list[str] | None,
    event_types: list[str] | None,
    aggregate_types: list[str] | None,
    after: datetime | None,
    before: datetime | None,
    from_position: int | None,
) -> list[Event[Any]]:
    """The other filters of ``events``, applied to a correlation's events
    (few: they are read by the correlation index first)."""
    return [
        e
        for e in found
        if (not aggregates or e.aggregate_id in aggregates)
        and (not event_types or e.type in event_types)
        and (not aggregate_types or e.aggregate_type in aggregate_types)
        and (after is None or e.timestamp > after)
        and (before is None or e.timestamp < before)
        and (from_position is None or e.position >= from_position)
    ]


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
            "--type",
            "-t",
            help="Only this type (repeatable; an unknown type is an error).",
            metavar="TYPE",
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option(help="Stop after printing this many events.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.2,
    json: EventsJsonOpt = False,
) -> None:
    """Follow new events as another process appends them."""
    with user_errors():
        check_count(lines, "--lines")
        check_count(from_position, "--from-position")
        check_count(count, "--count", 1)
        if interval <= 0 or (timeout is not None and timeout < 0):
            msg = "--interval must be > 0 and --timeout >= 0"
            raise UsageError(msg)
        with open_read_only(db) as store:
            check_event_types(store, "--type", event_type)
            follow(
                store,
                lines,
                from_position,
                event_type,
                count,
                timeout,
                interval,
                json,
            )


def follow(
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
                    write_json(event)
                else:
                    sys.stdout.write(event_line(event) + "\n")
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command(
        **help_text(
            "List events, filtered, as a table or JSON lines.",
            "swarmlog events swarm.db --limit 20",
            "swarmlog events swarm.db --type task:failed --type agent:failed",
            "swarmlog events swarm.db --aggregate task-007 --json",
            "swarmlog events swarm.db --aggregate-type swarm --after 2025-01-06T09:01Z",
            "swarmlog events swarm.db --correlation task-007 --json",
        )
    )(events)
    app.command(
        **help_text(
            "Follow new events as another process appends them (read-only).",
            "swarmlog tail swarm.db",
            "swarmlog tail swarm.db --lines 0 --json --type task:completed",
            "swarmlog tail swarm.db --count 100 --timeout 30",
        )
    )(tail)
