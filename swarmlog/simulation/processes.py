"""The process crew: the worker agents in N processes, one file.

:class:`ProcessCrew` starts ``N`` worker processes (``multiprocessing``,
spawn by default). Each opens its own ``EventStore(path,
multi_process=True)`` on the simulation's file and runs its share of the
agents (agent ``k``, in spawn order, lives in process ``k mod N``) on a
:class:`~swarmlog.simulation.crew.ThreadCrew` of its own, so agents append
from several processes at once while the coordinator, in the parent, appends
through its own multi-process store and follows every process's events in
its live projections.

Messages, all pickled through ``multiprocessing`` queues: the parent sends
each process ``("spawn", agent_id)``, ``("order", agent_id, Order)`` and
finally ``None`` (stop); a process answers ``("ready", index)`` once its
store is open, the agents' :class:`~swarmlog.simulation.messages.Report`\\ s
as they come, and ``("done", index, model_calls)`` after its agents
stopped (or ``("failed", index, error)``). A process never receives a store
from the parent: a store does not survive ``fork()`` (and cannot be
pickled), so each opens its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import time
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
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue

    from swarmlog.effects import Effects
    from swarmlog.simulation.messages import Order

__all__ = ["START_METHODS", "ProcessCrew", "StartMethod", "serve"]

StartMethod = Literal["spawn", "fork", "forkserver"]
"""How the worker processes start (``multiprocessing`` start methods)."""

START_METHODS: Final = ("spawn", "fork", "forkserver")

_LIVENESS_CHECK = 0.25  # seconds between looks at the processes while waiting


def serve(
    path: str, seed: int, index: int, inbox: Queue[Any], outbox: Queue[Any]
) -> None:
    """Run one worker process's agents until told to stop (its main thread).

    Opens ``EventStore(path, multi_process=True)``, says ``ready``, then
    spawns agents and forwards orders until ``None`` arrives; the agents put
    their reports straight on ``outbox``. Any failure is reported as
    ``("failed", index, error)``, never raised into ``multiprocessing``.
    """
    try:
        store = EventStore(path, multi_process=True)
        store.initialize()
    except BaseException as e:  # reported to the coordinator, which raises
        outbox.put(("failed", index, f"{type(e).__name__}: {e}"))
        return
    try:

        def effects(agent_id: str, clock: Callable[[], datetime]) -> Effects:
            return store.effects(RUN_ID, "record", clock=clock, source=agent_id)

        crew = ThreadCrew(store, effects, seed=seed, outbox=outbox)
        outbox.put(("ready", index))
        try:
            while (message := inbox.get()) is not None:
                if message[0] == "spawn":
                    crew.spawn(message[1])
                else:
                    crew.send(message[1], message[2])
        finally:
            crew.stop()
        outbox.put(("done", index, crew.llm_calls()))
    except BaseException as e:
        outbox.put(("failed", index, f"{type(e).__name__}: {e}"))
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
        context: BaseContext = multiprocessing.get_context(start_method)
        self._reports: Queue[Any] = context.Queue()
        self._inboxes: list[Queue[Any]] = [context.Queue() for _ in range(processes)]
        self._processes: list[BaseProcess] = [
            context.Process(  # type: ignore[attr-defined]
                target=serve,
                args=(path, seed, index, inbox, self._reports),
                name=f"swarmlog-sim-process-{index}",
                daemon=True,
            )
            for index, inbox in enumerate(self._inboxes)
        ]
        self._home: dict[str, int] = {}
        self._calls: dict[int, int] = {}
        self._ready: set[int] = set()
        self._stopped = False
        for process in self._processes:
            process.start()
        try:
            while len(self._ready) < processes:
                self._receive(WORKER_TIMEOUT, "say it is ready")
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
        self._inboxes[index].put(("spawn", agent_id))

    def send(self, agent_id: str, order: Order) -> None:
        """Queue ``order`` for ``agent_id`` in its process."""
        self._inboxes[self._home[agent_id]].put(("order", agent_id, order))

    def next_report(self, timeout: float) -> Report:
        """The next report of any process's agent.

        Raises:
            queue.Empty: None came within ``timeout`` seconds.
            SimulationError: A process failed or died.
        """
        while True:
            item = self._receive(timeout, "report")
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
        for index, inbox in enumerate(self._inboxes):
            if self._processes[index].is_alive():
                inbox.put(None)
        deadline = time.monotonic() + WORKER_TIMEOUT
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.kill()
                process.join(WORKER_TIMEOUT)
        # Whatever the processes said last ("done" and its model calls).
        with contextlib.suppress(queue.Empty, SimulationError):
            while True:
                self._take(self._reports.get_nowait())
        for channel in (*self._inboxes, self._reports):
            channel.cancel_join_thread()  # a dead reader never blocks our exit
            channel.close()

    def llm_calls(self) -> int:
        """Model calls the processes reported when they finished."""
        return sum(self._calls.values())

    # -- receiving -----------------------------------------------------------------

    def _receive(self, timeout: float, waiting_for: str) -> Any:
        """The next message, looking at the processes' health meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise queue.Empty
            try:
                item = self._reports.get(timeout=min(left, _LIVENESS_CHECK))
            except queue.Empty:
                self._check_alive(waiting_for)
                continue
            return self._take(item)

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

    def _check_alive(self, waiting_for: str) -> None:
        for index, process in enumerate(self._processes):
            if process.exitcode is not None and index not in self._calls:
                # It may have said why just before it exited.
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._take(self._reports.get_nowait())
                msg = (
                    f"agent process {index} exited with code {process.exitcode} "
                    f"while the coordinator waited for it to {waiting_for}"
                )
                raise SimulationError(msg)
