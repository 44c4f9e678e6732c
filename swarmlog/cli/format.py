"""Text for terminals: times, sizes, durations, status colours, one-line
event digests, and rich tables in the house style.

Imports rich only inside :func:`table` (``import swarmlog.cli`` must work
without the ``cli`` extra).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from swarmlog.schema.envelope import Event

__all__ = [
    "ago",
    "byte_size",
    "clock_time",
    "event_line",
    "event_summary",
    "free_width",
    "iso_time",
    "milliseconds",
    "new_table",
    "percent",
    "plain",
    "span",
    "status_markup",
]

STATUS_STYLE: Final = {
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


def status_markup(status: str) -> str:
    """``status`` in its colour (rich markup)."""
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def iso_time(value: datetime | None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (``-`` for None)."""
    if value is None:
        return "-"
    return (
        value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def clock_time(value: datetime | None) -> str:
    """``HH:MM:SS`` in UTC (``-`` for None)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%H:%M:%S")


def milliseconds(value: float | None) -> str:
    """A duration in ms with thousands separators (``-`` for None)."""
    return "-" if value is None else f"{value:,.0f}"


def percent(value: float) -> str:
    """A rate as a percentage with one decimal."""
    return f"{value:.1%}"


def byte_size(value: int) -> str:
    """Bytes in B, KiB, MiB or GiB."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{value} B"  # pragma: no cover - unreachable


def ago(now: datetime, then: datetime | None) -> str:
    """How long before ``now`` ``then`` was (``never`` for None)."""
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "-"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s ago" if minutes else f"{seconds}s ago"


def plain(payload: Any) -> Any:
    """A payload as plain data (Structs to builtins)."""
    return (
        msgspec.to_builtins(payload) if isinstance(payload, msgspec.Struct) else payload
    )


def event_summary(event: Event[Any], width: int = 80) -> str:
    """A one-line digest of an event's payload (instants, tracebacks and the
    aggregate id left out)."""
    data = plain(event.payload)
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


def event_line(event: Event[Any]) -> str:
    """One line per event, as ``tail`` prints it."""
    return (
        f"#{event.position} {iso_time(event.timestamp)} {event.type} "
        f"{event.aggregate_id} v{event.version}  {event_summary(event)}"
    )


def new_table(title: str | None) -> Any:
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


def free_width(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]
) -> int:
    """Characters left for one last, free-text column after these columns."""
    fixed = sum(
        max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(headers)
    )
    return max(console.width - fixed - 2, 10)


def span(value: timedelta | None) -> str:
    """A window in ``s`` or ``min``."""
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
