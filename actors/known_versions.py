"""KnownVersions: the committer's cache of committed aggregate versions.

Planning a round needs each aggregate's committed (type, version); the
cache answers from memory what this writer committed or read before, and
asks the writing connection only on a miss. It restarts (empties) when it
grows past a bound, and is emptied when a version clash shows it stale.

A cache that has seen every committed event (the writer opened an empty
store and folded in every commit since, its own and other processes') is
*complete*: a miss then means the aggregate has no events, with no read.
Emptying it ends that.

Runs with the :class:`~swarmlog.actors.committer.Committer`'s turn held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from swarmlog.actors.planning import AggregateState

__all__ = ["KnownVersions"]

_KNOWN_LIMIT = 262_144  # aggregate versions cached before the cache restarts


class KnownVersions:
    """Committed aggregate states, cached. Turn held.

    Args:
        load: Reads an aggregate's committed state from the writing
            connection (None: it has no events).
    """

    __slots__ = ("_known", "_load", "complete")

    def __init__(self, load: Callable[[str], AggregateState | None]) -> None:
        self._known: dict[str, AggregateState | None] = {}
        self._load = load
        self.complete = False
        """Whether every committed aggregate is in the cache (set by the
        committer when it opens an empty store)."""

    def state(self, aggregate_id: str) -> AggregateState | None:
        """The committed state of ``aggregate_id`` (None: no events)."""
        try:
            return self._known[aggregate_id]
        except KeyError:
            pass
        state = None if self.complete else self._load(aggregate_id)
        if len(self._known) >= _KNOWN_LIMIT:
            self.clear()
        self._known[aggregate_id] = state
        return state

    def update(self, committed: Mapping[str, AggregateState]) -> None:
        """Remember the states a round just committed."""
        if len(self._known) + len(committed) >= _KNOWN_LIMIT:
            self.clear()
        self._known.update(committed)

    def fold(self, committed: Mapping[str, AggregateState]) -> None:
        """Remember versions other processes committed, never lowering one
        already known: a planning read or this writer's own round placed
        after them may have cached a later version than they carry."""
        known = self._known
        if len(known) + len(committed) >= _KNOWN_LIMIT:
            self.clear()
        for aggregate_id, state in committed.items():
            cached = known.get(aggregate_id)
            if cached is None or cached[1] < state[1]:
                known[aggregate_id] = state

    def clear(self) -> None:
        """Forget everything (a clash showed the cache stale)."""
        self._known.clear()
        self.complete = False
