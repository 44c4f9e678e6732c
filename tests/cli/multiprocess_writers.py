"""Several processes writing one file through multi-process stores, driven
over stdin/stdout (for the command-line tests).

Run as ``sys.executable multiprocess_writers.py PATH PROCESSES HALF``. It
spawns ``PROCESSES`` writer processes; each opens ``EventStore(PATH,
multi_process=True)``, appends ``HALF`` ``agent:spawned`` events (agent ids
``p{k}-agent-{i}``, one at a time), and waits. Once every process did, this
script prints ``half`` and waits for a line on stdin; then each process
appends ``HALF`` more, shuts its store down and exits, and the script prints
``done`` and exits 0 (1 if a process failed).
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import TYPE_CHECKING

from swarmlog import EventStore, create_agent_spawned_event

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier
    from multiprocessing.synchronize import Event as Signal

TIMEOUT = 120.0  # seconds; guards against a hang only


def write(path: str, index: int, half: int, halfway: Barrier, go: Signal) -> None:
    """One writer process: half, wait for ``go``, the other half."""
    with EventStore(path, multi_process=True) as store:
        for i in range(half):
            store.append(
                create_agent_spawned_event(f"p{index}-agent-{i}", "coder", "core")
            )
        halfway.wait(TIMEOUT)
        if not go.wait(TIMEOUT):
            raise TimeoutError("no go")
        for i in range(half, 2 * half):
            store.append(
                create_agent_spawned_event(f"p{index}-agent-{i}", "coder", "core")
            )


def main(path: str, processes: int, half: int) -> int:
    """Run the writers; ``half``, wait for stdin, ``done``."""
    context = multiprocessing.get_context("spawn")
    halfway = context.Barrier(processes + 1)
    go = context.Event()
    writers = [
        context.Process(target=write, args=(path, k, half, halfway, go))
        for k in range(processes)
    ]
    for writer in writers:
        writer.start()
    try:
        halfway.wait(TIMEOUT)
        print("half", flush=True)
        sys.stdin.readline()
        go.set()
    finally:
        go.set()
        for writer in writers:
            writer.join(TIMEOUT)
    print("done", flush=True)
    return 0 if all(w.exitcode == 0 for w in writers) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
