"""Child process of the PostgreSQL crash tests (killed with SIGKILL).

``append_child.py URL SCHEMA appends``: four threads append to a store
(shared and own aggregates, single events and batches) and report each
acknowledged event as one line ``ack POSITION ID_HEX`` on stdout (one
``os.write`` per line: atomic on a pipe) until killed.

``append_child.py URL SCHEMA hold``: take the head row in a write round,
report ``held``, and wait to be killed while holding it.

``append_child.py URL SCHEMA count N``: four threads append ``N`` times each
(contended aggregates shared by every process), report each
acknowledgement, then ``done``, shut down and exit.
"""

from __future__ import annotations

import os
import sys
import threading


def _say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def appends(url: str, schema: str, limit: int | None = None) -> None:
    """Append from four threads until killed (or ``limit`` times each)."""
    from swarmlog import EventStore, create_agent_started_event

    store = EventStore(url, pg_schema=schema).initialize()
    me = os.getpid()

    def work(worker: int) -> None:
        count = 0
        while limit is None or count < limit:
            count += 1
            if count % 5 == 0:
                stored = store.append_many(
                    [create_agent_started_event(f"w{me}-{worker}") for _ in range(3)]
                )
            else:
                aggregate = f"shared{count % 3}" if count % 2 else f"w{me}-{worker}"
                stored = [store.append(create_agent_started_event(aggregate))]
            for event in stored:
                _say(f"ack {event.position} {event.id.hex}")

    threads = [
        threading.Thread(target=work, args=(worker,), daemon=True)
        for worker in range(4)
    ]
    for thread in threads:
        thread.start()
    _say("ready")
    if limit is None:
        threading.Event().wait()
    for thread in threads:
        thread.join()
    store.shutdown()
    _say("done")


def hold(url: str, schema: str) -> None:
    """Hold the head row in an open round until killed."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage

    writer = PostgresWriteStorage(url, schema)
    writer.begin_round(10.0)
    _say("held")
    threading.Event().wait()


if __name__ == "__main__":
    url, schema, mode = sys.argv[1:4]
    if mode == "hold":
        hold(url, schema)
    else:
        appends(url, schema, int(sys.argv[4]) if mode == "count" else None)
