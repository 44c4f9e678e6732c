"""InFlightLimit: the count of appends in flight, the bound, and waiting
until the store is idle."""

from __future__ import annotations

import threading
import warnings

from swarmlog.actors.reply import InFlightLimit

TIMEOUT = 10.0


def test_count_follows_acquire_and_release() -> None:
    limit = InFlightLimit(3)
    assert limit.count == 0
    assert limit.acquire(blocking=False)
    assert limit.acquire(blocking=False)
    assert limit.count == 2
    limit.release()
    assert limit.count == 1
    assert limit.acquire(blocking=False)  # a given-back slot is reused
    assert limit.acquire(blocking=False)
    assert limit.count == 3
    assert not limit.acquire(blocking=False)  # at the bound
    assert limit.count == 3
    limit.release(3)
    assert limit.count == 0


def test_count_warns_about_nothing() -> None:
    """Reading the count never goes through itertools' pickling support
    (deprecated in Python 3.12, removed in 3.14)."""
    limit = InFlightLimit(2)
    limit.acquire()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert limit.count == 1
        limit.release()
        assert limit.count == 0


def test_wait_idle_wakes_on_the_last_release() -> None:
    limit = InFlightLimit(10)
    for _ in range(3):
        limit.acquire()
    limit.release()  # the idle flag is set and stays set while nobody waits
    done = threading.Event()

    def waiter() -> None:
        if limit.wait_idle(TIMEOUT):
            done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not done.wait(0.05)  # two still in flight
    limit.release(2)
    assert done.wait(TIMEOUT)
    thread.join(TIMEOUT)


def test_wait_idle_with_allowance_and_timeout() -> None:
    limit = InFlightLimit(10)
    limit.acquire()
    limit.acquire()
    assert not limit.wait_idle(0.01)
    assert not limit.wait_idle(0.01, allowance=1)
    assert limit.wait_idle(0.01, allowance=2)
