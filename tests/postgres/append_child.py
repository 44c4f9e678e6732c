"""Child process of the PostgreSQL crash tests (killed with SIGKILL).

``append_child.py URL SCHEMA appends``: four threads append to a store
(shared and own aggregates, single events and batches) and report each
acknowledged event as one line ``ack POSITION ID_HEX`` on stdout (one
``os.write`` per line: atomic on a pipe) until killed.

``append_child.py URL SCHEMA hold``: take the head row in a write round,
report ``held``, and wait to be killed while holding it.
"""

from __future__ import annotations

import os
import sys
import threading


def _say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def appends(url: str, schema: str) -> None:
    """Append from four threads until killed."""
    from swarmlog import EventStore, create_agent_started_event

    store = EventStore(url, pg_schema=schema).initialize()

    def work(worker: int) -> None:
        count = 0
        while True:
            count += 1
            if count % 5 == 0:
                stored = store.append_many(
                    [create_agent_started_event(f"w{worker}") for _ in range(3)]
                )
            else:
                aggregate = "shared" if count % 2 else f"w{worker}"
                stored = [store.append(create_agent_started_event(aggregate))]
            for event in stored:
                _say(f"ack {event.position} {event.id.hex}")

    for worker in range(4):
        threading.Thread(target=work, args=(worker,), daemon=True).start()
    _say("ready")
    threading.Event().wait()


def hold(url: str, schema: str) -> None:
    """Hold the head row in an open round until killed."""
    from swarmlog.actors.postgres.write import PostgresWriteStorage

    writer = PostgresWriteStorage(url, schema)
    writer.begin_round(10.0)
    _say("held")
    threading.Event().wait()


if __name__ == "__main__":
    url, schema, mode = sys.argv[1:4]
    (appends if mode == "appends" else hold)(url, schema)
