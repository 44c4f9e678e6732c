"""Helpers shared by the reliability tests (fixtures live in conftest.py)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore

if TYPE_CHECKING:
    from swarmlog import Event, SwarmlogError

TIMEOUT = 10.0
"""Seconds a wait may take before the test is declared hung (never a delay)."""


def open_refused(
    path: str, error: type[SwarmlogError], match: str | None = None, **options: Any
) -> SwarmlogError:
    """Assert that opening ``path`` raises ``error``; return it.

    The store is shut down whatever happens, so that a store that opens by
    mistake cannot leave its (non-daemon) actor threads behind.
    """
    store = EventStore(path, **options)
    try:
        with pytest.raises(error, match=match) as info:
            store.initialize()
    finally:
        store.shutdown()
    return info.value


def assert_intact(store: EventStore, known: list[Event]) -> None:
    """Exactly the known events are stored: nothing lost, nothing added."""
    assert list(store.replay()) == known
    assert store.head_position == len(known)


class Recorder:
    """A listener callback that records its calls and can be waited on."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[Any]:
        """Block until at least ``count`` calls were recorded; return them."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= count, timeout)
            calls = list(self.calls)
        assert ok, f"only {len(calls)} of {count} listener calls within {timeout}s"
        return calls
