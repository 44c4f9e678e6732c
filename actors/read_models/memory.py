"""MemoryIndexProjection: an index of memory entries, their use and size.

Transitions:

=====================  =======================================================
event                  effect on the entry
=====================  =======================================================
``memory:stored``      new entry (a second one for a known id replaces it,
                       keeping its place in store order)
``memory:retrieved``   ``access_count += 1`` (it counts retrieval events;
                       the payload's optional ``access_count`` is the
                       caller's own count, kept in the event for
                       auditing, not used here), ``last_accessed_at``
``memory:deleted``     ``is_deleted``, ``deleted_at`` (the first deletion's)
``memory:expired``     ``is_deleted``, ``deleted_at`` = ``expired_at``
=====================  =======================================================

Events about an entry that was never stored are ignored. Deleted entries
stay visible through :meth:`MemoryIndexProjection.get_memory`; every other
query counts active (not deleted) entries only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from swarmlog.actors.projection import Projection, handles, query
from swarmlog.schema.errors import InvalidQueryError
from swarmlog.schema.events import (
    MemoryDeleted,
    MemoryExpired,
    MemoryRetrieved,
    MemoryStored,
)
from swarmlog.schema.timeutil import query_now

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event

__all__ = ["MemoryEntry", "MemoryIndexProjection", "NamespaceUsage"]

_replace = msgspec.structs.replace


class MemoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One memory entry as the projection sees it.

    Attributes:
        id: The entry's id.
        namespace: Its namespace.
        key: Its key.
        type: Its memory type.
        size: Its size in bytes.
        access_count: Number of ``memory:retrieved`` events for it.
        stored_at: When it was stored.
        last_accessed_at: When it was last retrieved, or None.
        deleted_at: When it was deleted or expired, or None.
        is_deleted: Whether it was deleted or expired.
    """

    id: str
    namespace: str
    key: str
    type: str
    size: int
    access_count: int = 0
    stored_at: datetime
    last_accessed_at: datetime | None = None
    deleted_at: datetime | None = None
    is_deleted: bool = False


class NamespaceUsage(msgspec.Struct, frozen=True, kw_only=True):
    """What the active entries of one namespace use.

    Attributes:
        entries: Number of active entries.
        bytes: Their total size.
        accesses: Their total access count.
    """

    entries: int = 0
    bytes: int = 0
    accesses: int = 0


class _MemorySnapshot(msgspec.Struct, kw_only=True):
    """What MemoryIndexProjection snapshots: entries in store order."""

    entries: list[MemoryEntry]


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        msg = f"limit must be an int >= 0, got {limit!r}"
        raise InvalidQueryError(msg)
    return limit


def _check_span(value: object, name: str) -> timedelta:
    if not isinstance(value, timedelta):
        msg = f"{name} must be a timedelta, got {value!r}"
        raise InvalidQueryError(msg)
    return value


class MemoryIndexProjection(Projection):
    """Live index of memory entries (name ``"memory"``).

    Start it with ``MemoryIndexProjection(store).initialize()``; queries are
    synchronous, callable from any thread, and run on the projection's
    thread. They return frozen :class:`MemoryEntry` /
    :class:`NamespaceUsage` Structs or new containers of them; lists keep
    store order unless a query sorts. Events for entries never stored are
    ignored.
    """

    name = "memory"
    state_version = 1
    state_type = _MemorySnapshot

    _entries: dict[str, MemoryEntry]

    # -- state (projection thread) ----------------------------------------------

    def reset_state(self) -> None:
        """Start with no entries."""
        self._entries = {}

    def snapshot_state(self) -> _MemorySnapshot:
        """The entries in store order."""
        return _MemorySnapshot(entries=list(self._entries.values()))

    def restore_state(self, state: _MemorySnapshot) -> None:
        """Load a snapshot made by :meth:`snapshot_state`."""
        self._entries = {entry.id: entry for entry in state.entries}

    # -- handlers (projection thread) ---------------------------------------------

    @handles(MemoryStored)
    def _on_stored(self, event: Event[MemoryStored]) -> None:
        payload = event.payload
        self._entries[payload.memory_id] = MemoryEntry(
            id=payload.memory_id,
            namespace=payload.namespace,
            key=payload.key,
            type=payload.memory_type,
            size=payload.size,
            stored_at=payload.stored_at,
        )

    @handles(MemoryRetrieved)
    def _on_retrieved(self, event: Event[MemoryRetrieved]) -> None:
        payload = event.payload
        entry = self._entries.get(payload.memory_id)
        if entry is None:
            return
        last = entry.last_accessed_at
        at = payload.retrieved_at
        self._entries[entry.id] = _replace(
            entry,
            access_count=entry.access_count + 1,
            last_accessed_at=at if last is None or at > last else last,
        )

    @handles(MemoryDeleted)
    def _on_deleted(self, event: Event[MemoryDeleted]) -> None:
        payload = event.payload
        self._mark_deleted(payload.memory_id, payload.deleted_at)

    @handles(MemoryExpired)
    def _on_expired(self, event: Event[MemoryExpired]) -> None:
        payload = event.payload
        self._mark_deleted(payload.memory_id, payload.expired_at)

    def _mark_deleted(self, memory_id: str, at: datetime) -> None:
        entry = self._entries.get(memory_id)
        if entry is None or entry.is_deleted:
            return
        self._entries[memory_id] = _replace(entry, is_deleted=True, deleted_at=at)

    def _active(self) -> list[MemoryEntry]:
        return [e for e in self._entries.values() if not e.is_deleted]

    # -- queries (any thread; bodies run on the projection thread) ----------------

    @query
    def get_memory(self, memory_id: str) -> MemoryEntry | None:
        """The entry (deleted ones included), or None if never stored."""
        return self._entries.get(memory_id)

    @query
    def get_active_memories(self) -> list[MemoryEntry]:
        """Entries not deleted, in store order."""
        return self._active()

    @query
    def get_memories_by_namespace(self, namespace: str) -> list[MemoryEntry]:
        """Active entries of ``namespace``, in store order."""
        return [e for e in self._active() if e.namespace == namespace]

    @query
    def get_most_accessed_memories(self, limit: int = 10) -> list[MemoryEntry]:
        """Up to ``limit`` active entries by access count, highest first
        (ties in store order).

        Raises:
            InvalidQueryError: ``limit`` is not an int >= 0.
        """
        count = _check_limit(limit)
        ranked = sorted(self._active(), key=lambda e: -e.access_count)
        return ranked[:count]

    @query
    def get_total_size_by_namespace(self, namespace: str) -> int:
        """Bytes of the active entries of ``namespace``."""
        return sum(e.size for e in self._active() if e.namespace == namespace)

    @query
    def get_total_memory_size(self) -> int:
        """Bytes of all active entries."""
        return sum(e.size for e in self._active())

    @query
    def get_namespace_usage(self) -> dict[str, NamespaceUsage]:
        """Per namespace with active entries (in order of first use): their
        number, bytes and accesses."""
        totals: dict[str, list[int]] = {}
        for entry in self._active():
            item = totals.setdefault(entry.namespace, [0, 0, 0])
            item[0] += 1
            item[1] += entry.size
            item[2] += entry.access_count
        return {
            namespace: NamespaceUsage(entries=n, bytes=size, accesses=accesses)
            for namespace, (n, size, accesses) in totals.items()
        }

    @query
    def get_hot_memories(
        self,
        limit: int = 10,
        within: timedelta | None = None,
        *,
        now: datetime | None = None,
    ) -> list[MemoryEntry]:
        """Up to ``limit`` active entries that were retrieved at least once,
        most accessed first (ties in store order); with ``within``, only
        those retrieved within that span before ``now`` (default: the
        current time).

        Raises:
            InvalidQueryError: A wrongly typed or negative argument.
        """
        count = _check_limit(limit)
        at = query_now(now)
        candidates = [e for e in self._active() if e.access_count > 0]
        if within is not None:
            since = at - _check_span(within, "within")
            candidates = [
                e
                for e in candidates
                if e.last_accessed_at is not None and e.last_accessed_at >= since
            ]
        candidates.sort(key=lambda e: -e.access_count)
        return candidates[:count]

    @query
    def get_cold_memories(
        self, idle_for: timedelta, *, now: datetime | None = None
    ) -> list[MemoryEntry]:
        """Active entries not retrieved (or, if never retrieved, stored) for
        longer than ``idle_for`` before ``now`` (default: the current time),
        in store order.

        Raises:
            InvalidQueryError: A wrongly typed argument.
        """
        since = query_now(now) - _check_span(idle_for, "idle_for")
        cold = []
        for entry in self._active():
            last = entry.last_accessed_at or entry.stored_at
            if last < since:
                cold.append(entry)
        return cold
