"""An in-flight slot leaked by an interrupt never holds shutdown up.

A signal can land inside taking a slot (after the slot was taken, before
the append knew it): that slot is never given back. Shutdown must not wait
its whole bound (60 s) for it once the writer has nothing left to do.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from swarmlog import EventStore, create_agent_spawned_event

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 20.0
"""A guard against a hang (the drain's own bound is 60 s), not a timing."""


def test_shutdown_ends_despite_a_leaked_slot(tmp_path: Path) -> None:
    store = EventStore(str(tmp_path / "s.db")).initialize()
    stored = store.append(create_agent_spawned_event("a", "coder", "x"))
    assert store._appends.in_flight.acquire(blocking=False)  # the leak
    done = threading.Event()

    def shut() -> None:
        store.shutdown()
        done.set()

    thread = threading.Thread(target=shut, daemon=True)
    thread.start()
    assert done.wait(TIMEOUT)
    assert store.closed
    with EventStore(str(tmp_path / "s.db"), read_only=True) as reopened:
        assert reopened.get_event(stored.id) == stored
