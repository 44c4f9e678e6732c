"""Rich rendering of store-level views: statistics, event lists, and the
replay progress bar.

Rich is imported only when a table or progress bar is built. Runs on the
command's (main) thread.
"""

from __future__ import annotations

import contextlib
from datetime import UTC
from typing import TYPE_CHECKING, Any

from swarmlog.cli.format import (
    byte_size,
    event_summary,
    free_width,
    iso_time,
    new_table,
    status_markup,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from rich.console import Console

    from swarmlog.schema.envelope import Event
    from swarmlog.stats import EventStoreStats, SubscriptionStatus

__all__ = [
    "busiest_aggregates",
    "render_events",
    "render_stats",
    "render_subscriptions",
    "replay_progress",
]


def busiest_aggregates(counts: Mapping[str, int], top: int) -> list[tuple[str, int]]:
    """The ``top`` aggregates with the most events, most first (ties by id).

    What ``stats`` lists, in its table and in ``--json`` alike.
    """
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(top, 0)]


def render_stats(
    console: Console, path: str, result: EventStoreStats, top: int
) -> None:
    """Print totals, counts by type, the busiest aggregates and projections."""
    size = byte_size(result.database_size_bytes)
    console.print(f"[bold]{path}[/]")
    console.print(
        f"{result.total_events:,} events · head {result.head_position:,} · "
        f"{result.snapshot_count:,} snapshots · {size} · "
        f"{iso_time(result.oldest_event)} → {iso_time(result.newest_event)}"
    )
    from rich.markup import escape

    for origin in reversed(result.lineage):  # the direct source first
        console.print(
            f"forked from [bold]{escape(origin.source)}[/] at position "
            f"{origin.position:,} on {iso_time(origin.forked_at)}"
        )
    by_type = new_table("Events by type")
    by_type.add_column("type")
    by_type.add_column("count", justify="right")
    for name, n in sorted(
        result.events_by_type.items(), key=lambda kv: (-kv[1], kv[0])
    ):
        by_type.add_row(name, f"{n:,}")
    console.print(by_type)
    total = len(result.events_by_aggregate)
    busiest = busiest_aggregates(result.events_by_aggregate, top)
    if busiest:
        table = new_table(f"Busiest aggregates ({len(busiest)} of {total:,})")
        table.add_column("aggregate", min_width=24)
        table.add_column("events", justify="right")
        for name, n in busiest:
            table.add_row(name, f"{n:,}")
        console.print(table)
    if result.projections:
        table = new_table("Projections")
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
                status_markup(item.status),
                f"{item.position:,}",
                f"{item.lag:,}",
                f"{item.events_handled:,}",
                f"{item.snapshot_position:,}",
                str(item.dead_letters),
            )
        console.print(table)
    if result.subscriptions:
        render_subscriptions(console, result.subscriptions)


def render_subscriptions(
    console: Console, subscriptions: Mapping[str, SubscriptionStatus]
) -> None:
    """Print the durable subscriptions: position, lag, status, error."""
    from rich.markup import escape

    table = new_table("Subscriptions")
    for name in ("subscription", "status", "position", "lag", "error"):
        table.add_column(
            name, justify="right" if name in ("position", "lag") else "left"
        )
    for name, item in subscriptions.items():
        table.add_row(
            escape(name),
            status_markup(item.status),
            f"{item.position:,}",
            f"{item.lag:,}",
            escape(item.error or ""),
        )
    console.print(table)


def render_events(console: Console, found: Sequence[Event[Any]]) -> None:
    """Print events as a table, one line each, with a payload digest."""
    days = {event.timestamp.astimezone(UTC).date() for event in found}
    one_day = len(days) == 1
    rows = []
    for event in found:
        at = event.timestamp.astimezone(UTC)
        rows.append(
            [
                str(event.position),
                at.strftime("%H:%M:%S.%f")[:-3] if one_day else iso_time(at),
                event.type,
                event.aggregate_id,
                str(event.version),
            ]
        )
    headers = ["pos", "time (UTC)" if one_day else "time", "type", "aggregate", "v"]
    room = free_width(console, headers, rows)
    table = new_table(None)
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


@contextlib.contextmanager
def replay_progress(console: Console | None) -> Iterator[Any]:
    """A rich progress bar for replays (None without a console)."""
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
