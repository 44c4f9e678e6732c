"""Subscription crash child: handles events until the parent kills it.

Run as ``sys.executable subscription_child.py PATH BLOCK_AT [PG_SCHEMA]``
(``PATH``: a SQLite file, or a PostgreSQL URL and the schema): it opens the
store, subscribes ``"consumer"`` and appends ``APPENDED`` more events on
another thread while the handler runs. The handler reports each event it
starts, ``h POSITION``, as one line on stdout (``os.write``: atomic on a
pipe); on the event at ``BLOCK_AT`` (0: none) it reports and then blocks
until killed, so the kill lands in the middle of that event.
"""

from __future__ import annotations

import os
import sys
import threading

from swarmlog import EventStore, create_agent_spawned_event

APPENDED = 100
"""Events the child appends while its subscription runs."""


def main() -> None:
    """Open, subscribe, append; wait to be killed (stdin closing ends it)."""
    path, block_at = sys.argv[1], int(sys.argv[2])
    options = {"pg_schema": sys.argv[3]} if len(sys.argv) > 3 else {}
    forever = threading.Event()

    def handler(event: object) -> None:
        position = event.position  # type: ignore[attr-defined]
        os.write(1, f"h {position}\n".encode())
        if position == block_at:
            forever.wait()

    store = EventStore(path, **options).initialize()
    store.subscribe("consumer", handler)
    for i in range(APPENDED):
        store.append(create_agent_spawned_event(f"child-{i}", "coder", "core"))
    os.write(1, b"appended\n")
    sys.stdin.read()  # the parent kills us first; EOF means it went away
    os._exit(0)


if __name__ == "__main__":
    main()
