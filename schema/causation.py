"""How causation is stored: the ``cause`` column, decided once per event.

An event's ``causation_id`` is free text (a UUID string when another event
caused it, any id when a command or a request did). The store keeps it a
second time, in the indexed ``cause`` column, in the form the why-queries
look it up by: the cause's 16 id bytes when it is a UUID (so it joins the
``id`` column, whatever the spelling: upper case, no hyphens, braces), the
text as given otherwise (so the consequences of an outside command can be
looked up by its id too). SQLite compares a BLOB only with a BLOB, so a
text cause never matches an event id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

__all__ = ["cause_key", "event_key"]


def cause_key(causation_id: str | None) -> bytes | str | None:
    """The ``cause`` column value of an event with this ``causation_id``.

    Runs on the appending thread (and once per stored event in the format 2
    migration). Costs one UUID parse per event that has a cause.
    """
    if causation_id is None:
        return None
    try:
        return UUID(causation_id).bytes
    except (ValueError, TypeError, AttributeError):
        return causation_id


def event_key(event_id: Any) -> bytes | str | None:
    """What an event id given to a why-query looks up: its 16 bytes (a
    ``UUID`` or a UUID string), any other string as text, None otherwise."""
    if isinstance(event_id, UUID):
        return event_id.bytes
    if isinstance(event_id, str):
        return cause_key(event_id)
    return None
