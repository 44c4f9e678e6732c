"""Fork with a running subscription: the child's copy does nothing.

Run as ``sys.executable subscription_fork_child.py PATH``: subscribes, forks;
the child stops its inherited subscription (a no-op), tries to subscribe
again and exits; the parent's subscription goes on. Prints one JSON line.
"""

from __future__ import annotations

import os
import sys

import msgspec

from swarmlog import EventStore, create_agent_spawned_event


def _child(store: EventStore, sub: object) -> int:
    """Exit status: 0 when the inherited subscription did nothing."""
    sub.stop()  # type: ignore[attr-defined]
    if sub.status != "stopped":  # type: ignore[attr-defined]
        return 3
    try:
        store.subscribe("other", lambda event: None)
    except Exception as error:  # expected: ForkedStoreError
        return 0 if type(error).__name__ == "ForkedStoreError" else 4
    return 5


def main() -> None:
    """Subscribe, fork, report."""
    handled: list[int] = []
    with EventStore(sys.argv[1]) as store:
        sub = store.subscribe("s", lambda event: handled.append(event.position))
        store.append(create_agent_spawned_event("a1", "coder", "core"))
        sub.wait_for(1, timeout=30)
        pid = os.fork()
        if pid == 0:
            os._exit(_child(store, sub))
        _, status = os.waitpid(pid, 0)
        store.append(create_agent_spawned_event("a2", "coder", "core"))
        sub.wait_for(2, timeout=30)
        report = {
            "child": os.waitstatus_to_exitcode(status),
            "handled": handled,
            "parent_status": sub.status,
        }
    print(msgspec.json.encode(report).decode())


if __name__ == "__main__":
    main()
