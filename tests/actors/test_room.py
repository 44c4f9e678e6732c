"""Room: producers parked while a whole batch waits untaken."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from swarmlog.actors import reply
from swarmlog.actors.reply import Room

if TYPE_CHECKING:
    import pytest

TIMEOUT = 10.0


def test_make_wakes_a_parked_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reply, "_ROOM_WAIT", 60.0)  # only make() can wake it
    room = Room()
    full = threading.Event()
    full.set()
    parked = threading.Event()

    def still_full() -> bool:
        parked.set()
        return full.is_set()

    producer = threading.Thread(target=room.wait, args=(still_full,))
    producer.start()
    assert parked.wait(TIMEOUT)
    full.clear()
    room.make()
    producer.join(TIMEOUT)
    assert not producer.is_alive()


def test_a_wait_nested_on_the_same_thread_never_deadlocks() -> None:
    """A signal handler that appends runs on the thread it interrupts,
    possibly while that thread is parked here: its own wait must not need
    anything the suspended one holds."""
    room = Room()
    nested: list[bool] = []

    def outer_full() -> bool:
        if not nested:
            nested.append(True)
            room.wait(lambda: False)  # as the handler's append would
        return False

    producer = threading.Thread(target=room.wait, args=(outer_full,))
    producer.start()
    producer.join(TIMEOUT)
    assert not producer.is_alive()
    assert nested == [True]


def test_make_with_nobody_parked_is_harmless() -> None:
    room = Room()
    room.make()
    room.make(force=True)
    room.wait(lambda: False)
