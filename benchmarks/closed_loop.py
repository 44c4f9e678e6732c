"""Closed-loop threads started together, timed as they saw themselves."""

from __future__ import annotations

import threading
from time import perf_counter_ns
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["run_closed_loop"]


def run_closed_loop(
    threads: int,
    work: Callable[[int, Callable[[], list[int]]], None],
    *,
    name: str,
) -> tuple[int, list[int]]:
    """Run ``work(index, begin)`` on ``threads`` threads and time them.

    Each thread does its untimed setup, then calls ``begin()``: that waits
    until every thread is ready, marks the thread's start and returns the
    list the thread appends its latency samples (ns) to. The thread's end is
    marked when ``work`` returns.

    Returns:
        Nanoseconds from the first thread's start to the last one's end, as
        the threads read them (the main thread may not get the GIL back in
        time), and every sample.
    """
    barrier = threading.Barrier(threads)
    samples: list[list[int]] = [[] for _ in range(threads)]
    spans = [[0, 0] for _ in range(threads)]  # per thread: start, end (ns)

    def run(index: int) -> None:
        def begin() -> list[int]:
            barrier.wait()
            spans[index][0] = perf_counter_ns()
            return samples[index]

        work(index, begin)
        spans[index][1] = perf_counter_ns()

    workers = [
        threading.Thread(target=run, args=(t,), name=f"{name}-{t}")
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return elapsed, [s for out in samples for s in out]
