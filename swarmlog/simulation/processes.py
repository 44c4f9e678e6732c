"""The process crew: the worker agents in N processes, one file.

:class:`ProcessCrew` starts ``N`` worker processes (``multiprocessing``,
spawn by default). Each opens its own ``EventStore(path,
multi_process=True)`` on the simulation's file and runs its share of the
agents (agent ``k``, in spawn order, lives in process ``k mod N``) on a
:class:`~swarmlog.simulation.crew.ThreadCrew` of its own, so agents append
from several processes at once while the coordinator, in the parent, appends
through its own multi-process store and follows every process's events in
its live projections.

Each process talks to the parent over a pipe of its own (never a shared
``multiprocessing.Queue``: a process killed while putting to one can leave
its cross-process lock taken, and every other process then blocks). The
parent sends ``("spawn", agent_id)``, ``("order", agent_id, Order)`` and
finally ``None`` (stop); a process answers ``("ready", index)`` once its
store is open, the agents' :class:`~swarmlog.simulation.messages.Report`\\ s
as they come, and ``("done", index, model_calls)`` after its agents
stopped (or ``("failed", index, error)``). The parent waits on the pipes and
the processes' sentinels together, so a process that dies is noticed at
once. A process never receives a store from the parent: a store does not
survive ``fork()`` (and cannot be pickled), so each opens its own.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import queue
import threading
import time
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any, Final, Literal

from swarmlog.simulation.crew import ThreadCrew
from swarmlog.simulation.llm import RUN_ID
from swarmlog.simulation.messages import Report
from swarmlog.simulation.results import SimulationError
from swarmlog.simulation.world import WORKER_TIMEOUT
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from swarmlog.effects import Effects
    from swarmlog.simulation.messages import Order

__all__ = ["START_METHODS", "ProcessCrew", "StartMethod", "serve"]

StartMethod = Literal["spawn", "fork", "forkserver"]
"""How the worker processes start (``multiprocessing`` start methods)."""

START_METHODS: Final = ("spawn", "fork", "forkserver")

_PARENT_CHECK: Final = 0.25  # seconds between a worker's looks at its parent


class _PipeSink:
    """The agents' reports, sent up the process's pipe (any thread)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # one message at a time on the pipe

    def put(self, item: Any, /) -> None:
        """Send ``item`` to the parent."""
        with self._lock:
            self._conn.send(item)


def _next_order(conn: Connection) -> Any:
    """The parent's next message; None (stop) once the parent is gone (a
    killed coordinator never leaves its worker processes behind)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            if conn.poll(_PARENT_CHECK):
                return conn.recv()
        except (EOFError, OSError):
            return None
        if parent is not None and not parent.is_alive():
            return None


def serve(path: str, seed: int, index: int, conn: Connection) -> None:
    """Run one worker process's agents until told to stop (its main thread).

    Opens ``EventStore(path, multi_process=True)``, says ``ready``, then
    spawns agents and forwards orders until ``None`` arrives (or the parent
    is gone); the agents send their reports up ``conn``. Any failure is
    reported as ``("failed", index, error)``, never raised into
    ``multiprocessing``.
    """
    sink = _PipeSink(conn)
    try:
        store = EventStore(path, multi_process=True)
        store.initialize()
    except BaseException as e:  # reported to the coordinator, which raises
        sink.put(("failed", index, f"{type(e).__name__}: {e}"))
        return
    try:

        def effects(agent_id: str, clock: Callable[[], datetime]) -> Effects:
            return store.effects(RUN_ID, "record", clock=clock, source=agent_id)

        crew = ThreadCrew(store, effects, seed=seed, outbox=sink)
        sink.put(("ready", index))
        try:
            while (message := _next_order(conn)) is not None:
                if message[0] == "spawn":
                    crew.spawn(message[1])
                else:
                    crew.send(message[1], message[2])
        finally:
            crew.stop()
        sink.put(("done", index, crew.llm_calls()))
    except BaseException as e:
        with contextlib.suppress(OSError):
            sink.put(("failed", index, f"{type(e).__name__}: {e}"))
    finally:
        store.shutdown()


class ProcessCrew:
    """The agents in ``processes`` worker processes on the file ``path``.

    Every method runs on the coordinator's thread. Start it before the
    coordinator's own store opens when ``start_method`` is ``"fork"``
    (a child forked from a process whose store threads run inherits their
    locks in whatever state they were); :func:`run_simulation
    <swarmlog.simulation.run_simulation>` does.
    """

    def __init__(
        self,
        path: str,
        processes: int,
        *,
        seed: int,
        start_method: StartMethod = "spawn",
    ) -> None:
        """Start the processes; return once each has its store open.

        Raises:
            SimulationError: A process could not open the store, or did not
                say ready within the agents' timeout.
        """
        context = multiprocessing.get_context(start_method)
        self._conns: list[Connection] = []
        self._processes: list[BaseProcess] = []
        ends: list[Connection] = []  # the processes' ends of the pipes
        for index in range(processes):
            mine, theirs = context.Pipe()
            self._conns.append(mine)
            ends.append(theirs)
            self._processes.append(
                context.Process(  # type: ignore[attr-defined]
                    target=serve,
                    args=(path, seed, index, theirs),
                    name=f"swarmlog-sim-process-{index}",
                    daemon=True,
                )
            )
        self._home: dict[str, int] = {}
        self._calls: dict[int, int] = {}
        self._ready: set[int] = set()
        self._closed: set[int] = set()  # pipes at their end
        self._dead: set[int] = set()  # exited without "done" (reported)
        self._inbox: collections.deque[Any] = collections.deque()
        self._stopped = False
        try:
            for process, end in zip(self._processes, ends, strict=True):
                process.start()
                end.close()  # lives on in the child only: EOF once it exits
            deadline = time.monotonic() + WORKER_TIMEOUT
            while len(self._ready) < processes:
                try:
                    self._receive(deadline, "say it is ready")
                except queue.Empty:
                    late = sorted(set(range(processes)) - self._ready)
                    msg = (
                        f"agent processes {late} did not open the store "
                        f"within {WORKER_TIMEOUT:.0f}s"
                    )
                    raise SimulationError(msg) from None
        except BaseException:
            self.stop()
            raise

    @property
    def processes(self) -> int:
        """How many worker processes run the agents."""
        return len(self._processes)

    @property
    def pids(self) -> tuple[int | None, ...]:
        """The worker processes' ids, in start order."""
        return tuple(process.pid for process in self._processes)

    def spawn(self, agent_id: str) -> None:
        """Start ``agent_id`` in the next process, round-robin."""
        index = len(self._home) % len(self._processes)
        self._home[agent_id] = index
        self._send(index, ("spawn", agent_id))

    def send(self, agent_id: str, order: Order) -> None:
        """Queue ``order`` for ``agent_id`` in its process."""
        self._send(self._home[agent_id], ("order", agent_id, order))

    def next_report(self, timeout: float) -> Report:
        """The next report of any process's agent.

        Raises:
            queue.Empty: None came within ``timeout`` seconds.
            SimulationError: A process failed or died.
        """
        deadline = time.monotonic() + timeout
        while True:
            item = self._receive(deadline, "report")
            if isinstance(item, Report):
                return item

    def move_to(self, store: EventStore) -> None:
        """Refused: a what-if moves its agents to a fork, on threads only.

        Raises:
            SimulationError: Always.
        """
        msg = "agents in worker processes cannot move to another store"
        raise SimulationError(msg)

    def stop(self) -> None:
        """Stop every process: its agents stop, its store shuts down; a
        process that does not finish within the agents' timeout is killed."""
        if self._stopped:
            return
        self._stopped = True
        for index, process in enumerate(self._processes):
            if process.is_alive():
                with contextlib.suppress(OSError):
                    self._conns[index].send(None)
        deadline = time.monotonic() + WORKER_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            alive = [p.sentinel for p in self._processes if p.is_alive()]
            if not alive:
                break
            pipes = [c for i, c in enumerate(self._conns) if i not in self._closed]
            for conn in wait([*pipes, *alive], timeout=left):
                if conn in pipes:
                    self._read(conn)
        for conn in self._conns:
            self._read(conn)
        while self._inbox:  # their "done" and model calls
            with contextlib.suppress(SimulationError):
                self._take(self._inbox.popleft())
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join(WORKER_TIMEOUT)
        for conn in self._conns:
            conn.close()

    def llm_calls(self) -> int:
        """Model calls the processes reported when they finished."""
        return sum(self._calls.values())

    # -- receiving ---------------------------------------------------------------

    def _send(self, index: int, message: Any) -> None:
        try:
            self._conns[index].send(message)
        except OSError as e:
            process = self._processes[index]
            process.join(WORKER_TIMEOUT)  # its pipe broke: it is exiting
            msg = (
                f"agent process {index} exited with code {process.exitcode} "
                f"before it got its orders ({type(e).__name__}: {e})"
            )
            raise SimulationError(msg) from e

    def _receive(self, deadline: float, waiting_for: str) -> Any:
        """The next message from any process, by ``deadline``.

        Raises:
            queue.Empty: Nothing came in time.
            SimulationError: A process said it failed, or exited before it
                said ``done``.
        """
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                raise queue.Empty
            open_pipes = [c for i, c in enumerate(self._conns) if i not in self._closed]
            sentinels = {
                p.sentinel: i
                for i, p in enumerate(self._processes)
                if i not in self._calls and i not in self._dead and p.pid is not None
            }
            ready = wait([*open_pipes, *sentinels], timeout=left)
            for conn in self._conns:
                if conn in ready:
                    self._read(conn)
            for sentinel, index in sentinels.items():
                if sentinel in ready:
                    self._read(self._conns[index])  # its last words first
                    if index not in self._calls and not self._inbox:
                        self._dead.add(index)
                        self._processes[index].join(WORKER_TIMEOUT)  # reaped
                        exitcode = self._processes[index].exitcode
                        msg = (
                            f"agent process {index} exited with code {exitcode} "
                            f"while the coordinator waited for it to {waiting_for}"
                        )
                        raise SimulationError(msg)
        return self._take(self._inbox.popleft())

    def _read(self, conn: Connection) -> None:
        """Everything ``conn`` holds now, onto the inbox."""
        index = self._conns.index(conn)
        try:
            while index not in self._closed and conn.poll(0):
                self._inbox.append(conn.recv())
        except (EOFError, OSError):
            self._closed.add(index)

    def _take(self, item: Any) -> Any:
        if isinstance(item, Report):
            return item
        kind, index = item[0], item[1]
        if kind == "ready":
            self._ready.add(index)
        elif kind == "done":
            self._calls[index] = item[2]
        elif kind == "failed":
            msg = f"agent process {index} failed: {item[2]}"
            raise SimulationError(msg)
        return item
