"""Filter values the commands know, and the error for a misspelled one.

A filter that matches nothing because it is misspelled (``--type
task:faild``) must not look like an honest empty answer. Each check accepts
a value the registry or the read models know, or one the store holds; any
other value is a :class:`UnknownValueError` (exit 2) naming the known values
and the closest one. Runs on the command's (main) thread.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Final

from swarmlog.cli.common import UsageError
from swarmlog.schema.registry import BUILTIN_AGGREGATE_TYPES, registered_types

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from swarmlog.store import EventStore

__all__ = [
    "AGENT_STATUSES",
    "TASK_STATUSES",
    "UnknownValueError",
    "check_aggregate_types",
    "check_event_types",
    "check_values",
]

AGENT_STATUSES: Final = ("idle", "active", "completed", "error")
"""Statuses the agent read model sets itself (``agent:status-changed`` may
set others; those count once the store holds them)."""

TASK_STATUSES: Final = (
    "pending",
    "queued",
    "in-progress",
    "completed",
    "failed",
    "blocked",
)
"""Statuses the task read model sets."""


class UnknownValueError(UsageError):
    """A filter value nothing known matches (exit 2).

    Attributes:
        option: The option, e.g. ``--type``.
        value: The value given.
        known: Every known value, sorted.
        suggestion: The closest known value, or None.
    """

    def __init__(self, option: str, value: str, known: Iterable[str]) -> None:
        self.option = option
        self.value = value
        self.known = tuple(sorted(set(known)))
        close = difflib.get_close_matches(value, self.known, n=1)
        self.suggestion = close[0] if close else None
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        listed = ", ".join(self.known) if self.known else "none"
        msg = f"unknown {option} {value!r}{hint} (known: {listed})"
        super().__init__(msg)


def check_values(
    option: str, values: Sequence[str] | None, known: Iterable[str]
) -> None:
    """Refuse the first of ``values`` that is not in ``known``.

    Raises:
        UnknownValueError: A value is not known.
    """
    known = set(known)
    for value in values or ():
        if value not in known:
            raise UnknownValueError(option, value, known)


def check_event_types(
    store: EventStore, option: str, values: Sequence[str] | None
) -> None:
    """Accept registered event types and those the store holds.

    Raises:
        UnknownValueError: A value is neither registered nor stored.
    """
    registered = set(registered_types())
    for value in values or ():
        if value in registered or store.query(event_types=[value], limit=1):
            continue
        stored = store.get_stats().events_by_type
        raise UnknownValueError(option, value, registered | set(stored))


def check_aggregate_types(
    store: EventStore, option: str, values: Sequence[str] | None
) -> None:
    """Accept built-in and registered aggregate types and those the store
    holds.

    Raises:
        UnknownValueError: A value is neither known nor stored.
    """
    registry = registered_types()
    known = set(BUILTIN_AGGREGATE_TYPES)
    known |= {info.aggregate_type for info in registry.values()}
    for value in values or ():
        if value in known or store.query(aggregate_types=[value], limit=1):
            continue
        stored = set()
        for event_type in store.get_stats().events_by_type:
            info = registry.get(event_type)
            if info is not None:
                stored.add(info.aggregate_type)
                continue
            found = store.query(event_types=[event_type], limit=1)
            stored |= {event.aggregate_type for event in found}
        raise UnknownValueError(option, value, known | stored)
