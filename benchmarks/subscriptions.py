"""S1: how fast a durable subscription delivers, and what its position
writes cost.

A store holds ``n`` events; a subscription with a no-op handler catches up
over them (each position is written through the writer and acknowledged
before the next event: one commit per event), then follows ``n`` more
events appended while it runs. Compared with awaited single appends on the
same store (one commit each, the same durability), the anchor a position
write cannot beat. Per ``synchronous`` level.

Run alone: ``python -m benchmarks.subscriptions [n]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmlog import EventStore, create_agent_spawned_event

if TYPE_CHECKING:
    from swarmlog import Event


def _events(count: int, prefix: str) -> list[Event[Any]]:
    return [
        create_agent_spawned_event(f"{prefix}{i}", "coder", "core")
        for i in range(count)
    ]


def measure(n: int, synchronous: str) -> dict[str, float]:
    """Events per second: catch-up, live, and awaited appends (anchor)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.db"
        with EventStore(path, synchronous=synchronous) as store:
            store.append_many(_events(n, "pre-"))
            start = time.perf_counter()
            sub = store.subscribe("bench", lambda event: None)
            sub.wait_for(n, timeout=600)
            catch_up = n / (time.perf_counter() - start)
            start = time.perf_counter()
            for event in _events(n, "live-"):
                store.append(event)
            appends = n / (time.perf_counter() - start)
            sub.wait_for(2 * n, timeout=600)
            live = n / (time.perf_counter() - start)
            sub.stop()
    return {"catch_up": catch_up, "live": live, "appends": appends}


def main() -> None:
    """Print S1 for both durability levels."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for synchronous in ("full", "normal"):
        r = measure(n, synchronous)
        print(
            f"S1 {synchronous:6} n={n}: catch-up {r['catch_up']:,.0f} ev/s, "
            f"live (while appending) {r['live']:,.0f} ev/s, "
            f"anchor awaited append {r['appends']:,.0f}/s"
        )


if __name__ == "__main__":
    main()
