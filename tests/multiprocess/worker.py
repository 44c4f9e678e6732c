"""One writing process of a multi-process test, driven over stdin/stdout.

Run as ``sys.executable worker.py PATH [OPTIONS_JSON]``. It opens
``EventStore(PATH, multi_process=True, **OPTIONS)`` with a live
:class:`Journal` projection and reports ``{"open": "ok", "pid": P}`` or
``{"open": "error", "t": ..., "m": ...}`` (then exits). Then it answers one
JSON command per stdin line:

- ``{"op": "load", "threads": T, "n": N, "aggs": K, "tag": S}``: T threads
  each make N appends to aggregates ``agg-0..K-1`` (picked at random), each
  with the exact ``expected_version`` read just before (a
  ``ConcurrencyError`` is retried with the version it names). Every
  acknowledged append is reported at once as ``{"ack": [id, position,
  aggregate, version]}``; at the end ``{"done": count, "conflicts": c,
  "wrong_actual": w, "lock_waits": n, "lock_wait_max": seconds}``.
- ``{"op": "append", "agg": A}`` -> ``{"position": P, "id": I}``
- ``{"op": "sees", "position": P}`` -> ``{"seen": bool, "max": M}``: a strong
  query of the journal, made at once (read-your-writes across processes).
- ``{"op": "check"}`` -> ``{"head": H, "journal_ok": bool}``: waits for the
  journal to reach the store's head and compares it with a rebuild (every
  task event's position, in order, from ``replay``).
- ``{"op": "snapshot", "agg": A, "version": V}`` -> ``{"ok": true}``
- ``{"op": "hold_lock"}`` / ``{"op": "hold_sqlite"}`` -> ``{"held": true}``:
  take the store-wide write lock (or SQLite's own write lock) and keep it
  until ``{"op": "release"}`` -> ``{"released": true}``.
- ``{"op": "exit"}`` -> ``{"closed": true}`` after a clean shutdown.

Run as ``sys.executable worker.py PATH fork``: the fork scenario (see
:func:`fork_scenario`), one JSON line at the end.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
from typing import Any

import msgspec

from swarmlog import (
    ConcurrencyError,
    Event,
    EventStore,
    Projection,
    Snapshot,
    SwarmlogError,
    TaskCreated,
    create_task_created_event,
    handles,
    query,
)
from swarmlog.actors.sqlite.write_lock import WriteLock
from swarmlog.schema.timeutil import utc_now

TIMEOUT = 60.0
_out = threading.Lock()


def say(record: dict[str, Any]) -> None:
    """One JSON line to the parent (any thread)."""
    line = msgspec.json.encode(record).decode() + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def event(aggregate: str, tag: str = "w") -> Any:
    """A task event of ``aggregate``."""
    return create_task_created_event(aggregate, tag, "T", "", "low")


class Journal(Projection):
    """Every task event's position, in the order applied."""

    name = "journal"
    state_version = 1
    state_type = list[int]

    def reset_state(self) -> None:
        self._positions: list[int] = []

    @handles(TaskCreated)
    def _on_task(self, event: Event) -> None:
        self._positions.append(event.position)

    def snapshot_state(self) -> list[int]:
        return self._positions

    def restore_state(self, state: list[int]) -> None:
        self._positions = list(state)

    @query
    def positions(self) -> list[int]:
        return list(self._positions)

    @query
    def has(self, position: int) -> tuple[bool, int]:
        last = self._positions[-1] if self._positions else 0
        return position in self._positions, last


def load(store: EventStore, command: dict[str, Any]) -> None:
    """The contended closed loop (see the module docstring)."""
    threads, n, aggs, tag = (
        command["threads"],
        command["n"],
        command["aggs"],
        command["tag"],
    )
    counts = {"done": 0, "conflicts": 0, "wrong_actual": 0}
    lock = threading.Lock()

    def run(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(n):
            aggregate = f"agg-{rng.randrange(aggs)}"
            expected = store.get_version(aggregate)
            while True:
                try:
                    stored = store.append(
                        event(aggregate, tag), expected_version=expected
                    )
                except ConcurrencyError as error:
                    with lock:
                        counts["conflicts"] += 1
                        if error.actual <= expected:  # never an older version
                            counts["wrong_actual"] += 1
                    expected = error.actual
                    continue
                break
            say(
                {
                    "ack": [
                        stored.id.hex,
                        stored.position,
                        stored.aggregate_id,
                        stored.version,
                    ]
                }
            )
            with lock:
                counts["done"] += 1

    workers = [
        threading.Thread(target=run, args=(hash((tag, i)),)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT * 4)
    stats = store.get_stats()
    say(
        {**counts, "lock_waits": stats.lock_waits, "lock_wait_max": stats.lock_wait_max}
    )


def serve(path: str, options: dict[str, Any]) -> None:
    """Open the store and answer commands until ``exit``."""
    store = EventStore(path, multi_process=True, **options)
    try:
        store.initialize()
    except SwarmlogError as error:
        say({"open": "error", "t": type(error).__name__, "m": str(error)})
        return
    journal = Journal(store).initialize()
    say({"open": "ok", "pid": os.getpid()})
    held: Any = None
    for line in sys.stdin:
        command = msgspec.json.decode(line)
        op = command["op"]
        if op == "load":
            load(store, command)
        elif op == "append":
            stored = store.append(event(command["agg"]))
            say({"position": stored.position, "id": stored.id.hex})
        elif op == "sees":
            seen, last = journal.has(command["position"])
            say({"seen": seen, "max": last})
        elif op == "check":
            head = store.get_stats().head_position  # the file's, any process's
            journal.wait_for(head, timeout=TIMEOUT)
            rebuilt = [
                e.position
                for e in store.replay()
                if e.type == "task:created" and e.position <= head
            ]
            say({"head": head, "journal_ok": journal.positions() == rebuilt})
        elif op == "snapshot":
            store.save_snapshot(
                Snapshot(
                    command["agg"],
                    "task",
                    command["version"],
                    {"v": command["version"]},
                    utc_now(),
                )
            )
            say({"ok": True})
        elif op == "hold_lock":
            held = WriteLock(os.path.realpath(path))
            held.acquire(TIMEOUT)
            say({"held": True})
        elif op == "hold_sqlite":
            held = sqlite3.connect(path, isolation_level=None)
            held.execute("BEGIN IMMEDIATE")
            say({"held": True})
        elif op == "release":
            held.close()
            held = None
            say({"released": True})
        elif op == "exit":
            store.shutdown()
            say({"closed": True})
            return


def fork_scenario(path: str) -> None:
    """Open a store, fork: the child finds the inherited store fenced,
    opens its own beside the parent's (both ``multi_process``) and appends;
    the parent appends meanwhile and then sees the child's event."""
    store = EventStore(path, multi_process=True).initialize()
    journal = Journal(store).initialize()
    store.append(event("before-fork"))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            store.append(event("inherited"))
            inherited = "ok"
        except BaseException as error:
            inherited = type(error).__name__
        with EventStore(path, multi_process=True) as own:
            position = own.append(event("child")).position
        os.write(write_end, msgspec.json.encode([inherited, position]) + b"\n")
        os._exit(0)
    os.close(write_end)
    store.append(event("parent"))
    with os.fdopen(read_end, "rb") as pipe:
        inherited, position = msgspec.json.decode(pipe.readline())
    _, status = os.waitpid(pid, 0)
    seen = position in journal.positions()  # strong: reads the file's head
    ids = sorted(e.aggregate_id for e in store.replay())
    store.shutdown()
    say(
        {
            "inherited": inherited,
            "status": os.waitstatus_to_exitcode(status),
            "seen": seen,
            "ids": ids,
        }
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "fork":
        fork_scenario(sys.argv[1])
    else:
        serve(
            sys.argv[1], msgspec.json.decode(sys.argv[2]) if len(sys.argv) > 2 else {}
        )
