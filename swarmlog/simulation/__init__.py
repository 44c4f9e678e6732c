"""A seeded, deterministic simulation of an agent swarm, recorded in swarmlog.

:func:`run_simulation` (what ``swarmlog simulate`` runs) plays a whole swarm
into a store file while the four built-in projections follow it live:

1. **initialization**: the coordinator initialises the swarm, spawns ``N``
   worker agents (coder, tester, reviewer, security-architect, ...), each
   running in **its own thread** and appending its own events.
2. **planning**: it seeds a shared knowledge base in memory and creates
   ``M`` tasks with dependencies: a task with unfinished dependencies is
   ``blocked``, the others are ``queued``.
3. **execution**, in rounds of 30 simulated seconds: the coordinator
   expires memory past its TTL, re-queues failed tasks (one retry),
   unblocks tasks whose dependencies completed (and fails those whose
   dependencies failed for good), scales the swarm up on a backlog and down
   when demand drops, restarts crashed agents and **assigns** queued tasks
   to idle agents. The agents then work concurrently: start the task, read
   their inputs and the knowledge base, keep scratch notes, and complete
   it, fail it, or crash. Milestones mark each quarter of the work.
4. **review**: the coordinator reads the key results and deletes leftover
   scratch memory.
5. **completion**: every agent stops, the swarm scales to 0 and terminates.

**Determinism.** Every timestamp and duration comes from a simulated clock
(never the wall clock), every agent draws from its own ``random.Random``
derived from the seed, and only the coordinator decides (from reports it
sorts by agent) what happens next. Threads interleave differently on every
run, so positions differ, but the business outcome does not: the same seed
gives the same final read models, which :attr:`SimulationReport.fingerprint`
summarises.

At the end the simulation proves the engine: it rebuilds every projection
from the log (:meth:`~swarmlog.Projection.as_of` at the head) and checks the
result equals the live read models.

**Several processes.** ``run_simulation(path, processes=N)`` (``swarmlog
simulate --processes N``) runs the agents in ``N`` worker processes, each
appending through its own ``EventStore(path, multi_process=True)``, while
the coordinator appends and follows its live projections through another
one. The agents, their draws and the model's answers do not depend on where
they run, so the fingerprint equals the threaded run's; the report carries
both (the same seed is run again on threads, into ``:memory:``).

Modules: :mod:`~swarmlog.simulation.world` (constants),
:mod:`~swarmlog.simulation.messages` (orders and reports),
:mod:`~swarmlog.simulation.agent` (the worker thread),
:mod:`~swarmlog.simulation.crew` (where the agents run: threads) and
:mod:`~swarmlog.simulation.processes` (or worker processes),
:mod:`~swarmlog.simulation.coordinator` (state and shared moves), the phases
(:mod:`~swarmlog.simulation.opening`, :mod:`~swarmlog.simulation.execution`,
:mod:`~swarmlog.simulation.closing`), :mod:`~swarmlog.simulation.runner`
(:func:`run_simulation`) and :mod:`~swarmlog.simulation.results`. The read
models summary (:func:`collect_read_models`, :func:`fingerprint`) lives in
:mod:`swarmlog.summary`, shared with the command line. This package never
imports the command line or rich: progress goes to a plain callback.
"""

from __future__ import annotations

from swarmlog.simulation.rerun import (
    KEEP,
    RecordedRun,
    RerunReport,
    recorded_run,
    replay_simulation,
    what_if,
)
from swarmlog.simulation.results import (
    DatabaseExistsError,
    RoundProgress,
    SimulationError,
    SimulationReport,
)
from swarmlog.simulation.runner import run_simulation
from swarmlog.summary import (
    COLD_AFTER,
    HOT_WINDOW,
    ReadModels,
    collect_read_models,
    fingerprint,
)

__all__ = [
    "COLD_AFTER",
    "HOT_WINDOW",
    "KEEP",
    "DatabaseExistsError",
    "ReadModels",
    "RecordedRun",
    "RerunReport",
    "RoundProgress",
    "SimulationError",
    "SimulationReport",
    "collect_read_models",
    "fingerprint",
    "recorded_run",
    "replay_simulation",
    "run_simulation",
    "what_if",
]
