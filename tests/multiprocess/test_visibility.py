"""Every process sees every process's events (``multi_process=True``).

Projections, listeners and ``wait_for`` in each process get all events in
position order, with no gap and no duplicate; a strong query made right
after an append returned in another process reflects that append
(read-your-writes across processes: the appending process's answer travels
through a pipe, the other queries at once).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from swarmlog import Event, EventStore, create_task_created_event

from .support import TIMEOUT, Worker
from .worker import Journal

if TYPE_CHECKING:
    from collections.abc import Callable


class Positions:
    """An ``event:appended`` listener that records positions; waitable."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.seen.append(event.position)
            self._cond.notify_all()

    def wait_for(self, position: int) -> list[int]:
        with self._cond:
            reached = self._cond.wait_for(
                lambda: bool(self.seen) and self.seen[-1] >= position, TIMEOUT
            )
            assert reached, f"listener stopped at {self.seen[-1:]} of {position}"
            return list(self.seen)


def test_read_your_writes_across_processes(workers: Callable[..., Worker]) -> None:
    """A strong query in B right after an append returned in A reflects it,
    every time, both ways."""
    a, b = workers(), workers()
    for i in range(40):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        position = writer.ask(op="append", agg=f"ryw-{i}")["position"]
        answer = reader.ask(op="sees", position=position)
        assert answer["seen"], (i, position, answer)


def test_strong_query_in_this_process_sees_other_processes(
    workers: Callable[..., Worker], db: str
) -> None:
    """Read-your-writes for a projection in the test's own process, which
    never appends itself (its writer is idle)."""
    with EventStore(db, multi_process=True) as store:
        journal = Journal(store).initialize()
        other = workers()
        for i in range(20):
            position = other.ask(op="append", agg=f"x-{i}")["position"]
            assert position in journal.positions()


def test_listeners_projections_and_wait_for_see_every_process(
    workers: Callable[..., Worker], db: str
) -> None:
    """A listener and a projection in this process get every event of three
    other processes and its own, in position order, no gap, no duplicate."""
    listener = Positions()
    with EventStore(db, multi_process=True) as store:
        store.on("event:appended", listener)
        journal = Journal(store).initialize()
        group = [workers() for _ in range(3)]
        results: list[Any] = [None] * len(group)

        def collect(index: int) -> None:
            results[index] = group[index].load_results()

        readers = [threading.Thread(target=collect, args=(i,)) for i in range(3)]
        for reader in readers:
            reader.start()
        for index, worker in enumerate(group):
            worker.send(op="load", threads=2, n=40, aggs=5, tag=f"v{index}")
        own = [
            store.append(create_task_created_event(f"own-{i}", "me", "T", "", "low"))
            for i in range(30)
        ]
        for reader in readers:
            reader.join(TIMEOUT * 4)
            assert not reader.is_alive()
        total = 3 * 2 * 40 + len(own)
        journal.wait_for(total, timeout=TIMEOUT)
        assert journal.positions() == list(range(1, total + 1))
        assert listener.wait_for(total) == list(range(1, total + 1))
        assert store.head_position == total
