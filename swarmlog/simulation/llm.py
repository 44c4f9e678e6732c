"""The swarm's simulated LLM: the one call whose answer decides a task
attempt, made through recorded effects.

An agent asks the model how an attempt goes (its outcome, how long it
takes, the error or the result). The call goes through
:meth:`swarmlog.EventStore.effects`: recorded as an ``effect:recorded``
event on the run :data:`RUN_ID` when the simulation runs, answered from
that recording (the model is never called) when a recorded run is
replayed or continued in a what-if.

The model draws from a ``random.Random`` of its own per call, seeded by
the seed, the agent, the task and the attempt: whether it is called or
replayed never shifts the agent's own random draws, so a replayed run
makes every other choice exactly as the recorded one did.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Final

from swarmlog.simulation.world import (
    CRASH_ERRORS,
    CRASH_PROBABILITY,
    KIND_BY_TYPE,
    TASK_ERRORS,
)

__all__ = ["RUN_ID", "SimulatedLLM", "llm_key", "task_result"]

RUN_ID: Final = "simulation"
"""The aggregate id (type ``run``) of a simulation's recorded effects."""


def llm_key(agent_id: str) -> str:
    """The effect key of one agent's model calls (one key per agent: agents
    call concurrently, and sequence numbers count per key)."""
    return f"llm.{agent_id}"


class SimulatedLLM:
    """The simulated model; counts the calls it really answers.

    Thread-safe: every agent thread calls the same instance.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(
        self,
        seed: int,
        agent_id: str,
        task_id: str,
        task_type: str,
        attempt: int,
        inject: str | None,
        failure_rate: float | None,
    ) -> dict[str, Any]:
        """How one attempt goes: ``{"outcome", "elapsed", "error",
        "result"}`` (outcome ``complete``, ``fail`` or ``crash``; elapsed in
        ms). Runs on the calling agent's thread.

        Args:
            seed: The simulation's seed.
            agent_id: The agent asking.
            task_id: The task.
            task_type: Its type (mean duration and failure probability).
            attempt: The attempt (1-based).
            inject: A forced outcome (``fail``, ``crash``) or None.
            failure_rate: The probability of a failure, for every task type
                (None: each type's own, from ``TASK_KINDS``).
        """
        with self._lock:
            self.calls += 1
        rng = random.Random(f"{seed}/{agent_id}/{task_id}/{attempt}")
        _, _, _, mean, fail_p = KIND_BY_TYPE[task_type]
        if failure_rate is not None:
            fail_p = failure_rate
        duration = int(mean * rng.uniform(0.5, 1.8))
        roll = rng.random()
        if inject is not None:
            outcome = inject
        elif roll < CRASH_PROBABILITY:
            outcome = "crash"
        elif roll < CRASH_PROBABILITY + fail_p:
            outcome = "fail"
        else:
            outcome = "complete"
        if outcome == "crash":
            elapsed = rng.randint(duration // 4, duration)
            return _answer(outcome, elapsed, error=rng.choice(CRASH_ERRORS))
        if outcome == "fail":
            elapsed = rng.randint(duration // 3, duration)
            return _answer(outcome, elapsed, error=rng.choice(TASK_ERRORS))
        return _answer(outcome, duration, result=task_result(rng, task_type))


def _answer(
    outcome: str,
    elapsed: int,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"outcome": outcome, "elapsed": elapsed, "error": error, "result": result}


def task_result(rng: random.Random, task_type: str) -> dict[str, Any]:
    """A completed task's result payload, drawn from ``rng``."""
    result: dict[str, Any] = {
        "artifacts": rng.randint(1, 6),
        "linesChanged": rng.randint(10, 800),
        "quality": round(rng.uniform(0.7, 1.0), 2),
    }
    if task_type == "security-audit":
        result["vulnerabilitiesFixed"] = rng.randint(0, 5)
        result["severity"] = rng.choice(("low", "medium", "high"))
    elif task_type == "testing":
        result["testsPassed"] = rng.randint(20, 400)
    elif task_type == "benchmark":
        result["eventsPerSecond"] = rng.randint(50_000, 400_000)
    return result
