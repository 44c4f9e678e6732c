"""Planning one group-commit round: versions and positions, before the write.

The committer plans queued requests in order into one :class:`Round`: each
event gets its aggregate's next version and the next global position. A
request is planned against the committed versions (the committer's cache)
plus the versions of the requests planned before it in the same round; those
are *tentative* until the round commits.

That is why planning never settles anything: a request that cannot be
planned (a version conflict, an aggregate of another type) is only
*refused* here, and the committer decides when that verdict may be given.
A verdict that leans on tentative versions would name state no reader can
see yet, and that may never exist if the round's write fails (issue 16), so
the committer only settles refusals planned against committed state alone
(see ``Committer._commit_round``). Runs with the committer's turn held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.schema.envelope import ANY, NO_STREAM, STREAM_EXISTS
from swarmlog.schema.errors import (
    ConcurrencyError,
    DuplicateEventError,
    InvalidEventError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog.actors.append_request import AppendRequest
    from swarmlog.actors.storage import EventRow, WriteStorage
    from swarmlog.schema.codec import PreparedEvent
    from swarmlog.schema.envelope import Event, ExpectedVersion
    from swarmlog.schema.errors import SwarmlogError

__all__ = ["Round", "plan_request", "same_content", "stored_copies"]

AggregateState = tuple[str, int]
"""An aggregate's type and version."""


class Round:
    """What one transaction will store, as it is planned."""

    __slots__ = (
        "ends",
        "events",
        "placed",
        "position",
        "published",
        "requests",
        "rows",
        "start",
        "tentative",
    )

    def __init__(self, head: int) -> None:
        self.start = head  # the head the round is planned after
        self.placed: int | None = None  # the head the storage stored it after
        self.position = head  # the last position planned so far
        self.rows: list[EventRow] = []
        self.events: list[Event[Any]] = []
        self.requests: list[AppendRequest] = []  # planned, in order
        self.ends: list[int] = []  # per planned request: its end in events
        self.tentative: dict[str, AggregateState] = {}  # aggregate versions
        self.published = False  # the page went to the dispatcher

    def values(self) -> Iterator[tuple[AppendRequest, Any]]:
        """Each planned request with what it settles to: its event (a
        single append) or its events, as stored."""
        events, start = self.events, 0
        for request, end in zip(self.requests, self.ends, strict=True):
            yield request, (events[end - 1] if request.single else events[start:end])
            start = end

    def shift(self, delta: int) -> None:
        """Move every planned position by ``delta`` (the storage placed the
        rows after other processes' commits)."""
        replace = msgspec.structs.replace
        self.events = [replace(e, position=e.position + delta) for e in self.events]
        self.position += delta
        self.start += delta


def _expected_ok(expected: ExpectedVersion, current: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return current == 0
    if expected is STREAM_EXISTS:
        return current > 0
    return current == expected


def _type_clash(aggregate_id: str, stored: str, given: str) -> InvalidEventError:
    msg = f"aggregate {aggregate_id!r} is a {stored!r}, not a {given!r}"
    return InvalidEventError(msg)


def same_content(stored: Event[Any], prepared: PreparedEvent) -> bool:
    """Whether a stored event is the same append as ``prepared`` (a retry)."""
    event = prepared.event
    return (
        stored.type == event.type
        and stored.aggregate_id == event.aggregate_id
        and stored.payload == event.payload
        and stored.metadata == event.metadata
    )


def stored_copies(
    storage: WriteStorage, request: AppendRequest
) -> list[Event[Any]] | None:
    """The stored events of a retried request, or None if not a retry
    (committed state only: the storage's own view).

    Raises:
        DuplicateEventError: An id is stored with different content, or
            only some of the request's ids are stored.
    """
    ids = [p.id_bytes for p in request.prepared]
    found = {e.id.bytes: e for e in storage.find_events(ids)}
    if not found:
        return None
    stored = []
    for p in request.prepared:
        copy = found.get(p.id_bytes)
        if copy is None or not same_content(copy, p):
            culprit = p.event.id if copy is None else copy.id
            raise DuplicateEventError(culprit)
        stored.append(copy)
    return stored


def plan_request(
    request: AppendRequest,
    round_: Round,
    committed: Callable[[str], AggregateState | None],
) -> SwarmlogError | None:
    """Add ``request`` to ``round_``, or say why it cannot be stored.

    Args:
        request: The append to plan.
        round_: The round planned so far (changed only on success).
        committed: An aggregate's committed state (None: no events).

    Returns:
        None when planned; otherwise the refusal (a ``ConcurrencyError`` or
        an ``InvalidEventError``), which is based on tentative state
        whenever ``round_`` already holds requests.
    """
    prepared = request.prepared
    if len(prepared) == 1 and request.expected is ANY:
        return _plan_one(request, prepared[0], round_, committed)
    expected = request.expected
    per_aggregate = isinstance(expected, Mapping)
    tentative = round_.tentative
    position = round_.position
    versions: dict[str, AggregateState] = {}
    rows: list[EventRow] = []
    events: list[Event[Any]] = []
    for item in prepared:
        event = item.event
        aggregate_id = event.aggregate_id
        state = versions.get(aggregate_id)
        if state is None:
            state = tentative.get(aggregate_id) or committed(aggregate_id)
            current = 0 if state is None else state[1]
            wanted = expected.get(aggregate_id, ANY) if per_aggregate else expected  # type: ignore[union-attr]
            if not _expected_ok(wanted, current):  # type: ignore[arg-type]
                return ConcurrencyError(aggregate_id, wanted, current)
        if state is not None and state[0] != event.aggregate_type:
            return _type_clash(aggregate_id, state[0], event.aggregate_type)
        version = (0 if state is None else state[1]) + 1
        position += 1
        versions[aggregate_id] = (event.aggregate_type, version)
        rows.append(item.row(version, position))
        events.append(
            msgspec.structs.replace(event, version=version, position=position)
        )
    tentative.update(versions)
    round_.position = position
    round_.rows += rows
    round_.events += events
    round_.requests.append(request)
    round_.ends.append(len(round_.events))
    return None


def _plan_one(
    request: AppendRequest,
    prepared: PreparedEvent,
    round_: Round,
    committed: Callable[[str], AggregateState | None],
) -> SwarmlogError | None:
    """The common case, kept short: one event, no expected version."""
    event = prepared.event
    aggregate_id = event.aggregate_id
    state = round_.tentative.get(aggregate_id) or committed(aggregate_id)
    if state is None:
        version = 1
    elif state[0] == event.aggregate_type:
        version = state[1] + 1
    else:
        return _type_clash(aggregate_id, state[0], event.aggregate_type)
    position = round_.position + 1
    round_.position = position
    round_.tentative[aggregate_id] = (event.aggregate_type, version)
    round_.rows.append(prepared.row(version, position))
    round_.events.append(
        msgspec.structs.replace(event, version=version, position=position)
    )
    round_.requests.append(request)
    round_.ends.append(len(round_.events))
    return None
