"""Where the worker agents run: the :class:`Crew` seam and its thread crew.

The coordinator never touches an agent: it asks its crew to spawn one,
sends it orders and collects the reports, in whatever order they come (it
sorts them itself). :class:`ThreadCrew` runs every agent on a thread of
this process, on the coordinator's store; the process crew
(:mod:`swarmlog.simulation.processes`) runs them in worker processes, each
with its own multi-process store on the same file. The agents, their
random draws and the model answers are the same either way, so is the
outcome.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Protocol

from swarmlog.simulation.agent import Agent
from swarmlog.simulation.llm import SimulatedLLM
from swarmlog.simulation.messages import MemoryBackend, Report
from swarmlog.simulation.world import WORKER_TIMEOUT

if TYPE_CHECKING:
    from swarmlog.simulation.messages import EffectsFactory, Order, ReportSink
    from swarmlog.store import EventStore

__all__ = ["Crew", "ThreadCrew"]


class Crew(Protocol):
    """The coordinator's side of its agents (calling thread only)."""

    def spawn(self, agent_id: str) -> None:
        """Start agent ``agent_id``; it waits for its first order."""
        ...

    def send(self, agent_id: str, order: Order) -> None:
        """Queue ``order`` for agent ``agent_id``."""
        ...

    def next_report(self, timeout: float) -> Report:
        """The next report of any agent.

        Raises:
            queue.Empty: None came within ``timeout`` seconds.
            SimulationError: The place the agents run in failed.
        """
        ...

    def move_to(self, store: EventStore) -> None:
        """Append to ``store`` from now on (between two rounds).

        Raises:
            SimulationError: This crew cannot change stores.
        """
        ...

    def stop(self) -> None:
        """Stop every agent still running, whatever the outcome (bounded)."""
        ...

    def llm_calls(self) -> int:
        """Model calls the agents really made so far (complete once
        stopped)."""
        ...


class ThreadCrew:
    """Every agent on a thread of this process, on one store.

    Thread-safe where it has to be: the agents' threads only put reports on
    the shared queue; everything else runs on the coordinator's thread.
    """

    def __init__(
        self,
        store: EventStore,
        effects: EffectsFactory,
        *,
        seed: int,
        outbox: ReportSink | None = None,
    ) -> None:
        """Args:
        store: The store the agents append to.
        effects: Makes each agent's recorded effects.
        seed: The simulation's seed.
        outbox: Where the agents put their reports (default: a queue of
            this crew's own, read by :meth:`next_report`).
        """
        self._store = store
        self._effects = effects
        self._seed = seed
        self._queue: queue.Queue[Report] = queue.Queue()
        self._outbox: ReportSink = self._queue if outbox is None else outbox
        self._backend = MemoryBackend()
        self._llm = SimulatedLLM()
        self._agents: dict[str, Agent] = {}

    def spawn(self, agent_id: str) -> None:
        """Start agent ``agent_id`` on a thread of its own."""
        agent = Agent(
            self._store,
            self._backend,
            self._outbox,
            agent_id=agent_id,
            seed=self._seed,
            effects=self._effects,
            llm=self._llm,
        )
        self._agents[agent_id] = agent
        agent.thread.start()

    def send(self, agent_id: str, order: Order) -> None:
        """Queue ``order`` on agent ``agent_id``'s inbox."""
        self._agents[agent_id].inbox.put(order)

    def next_report(self, timeout: float) -> Report:
        """The next report on this crew's queue (``queue.Empty`` after
        ``timeout``)."""
        return self._queue.get(timeout=timeout)

    def move_to(self, store: EventStore) -> None:
        """Every agent appends to ``store`` from now on."""
        self._store = store
        for agent in self._agents.values():
            agent.move_to(store)

    def stop(self) -> None:
        """Tell every live agent thread to stop; join each (bounded)."""
        for agent in self._agents.values():
            if agent.thread.is_alive():
                agent.inbox.put(None)
        for agent in self._agents.values():
            agent.thread.join(WORKER_TIMEOUT)

    def llm_calls(self) -> int:
        """Model calls answered by this crew's model."""
        return self._llm.calls
