"""The simulated world: its clock, sizes, roster, task kinds and texts.

Constants only (plus one helper); every other simulation module reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
"""Simulated time at which every simulation starts."""

ROUND: Final = timedelta(seconds=30)
"""Simulated length of one execution round (every task fits in one)."""

ROUND_WORK: Final = timedelta(seconds=25)
"""Agents finish their round's work before this offset into the round."""

MAX_ATTEMPTS: Final = 2
"""Attempts per task: the first one and one retry."""

CONTEXT_TTL: Final = timedelta(minutes=2)
SCRATCH_TTL: Final = timedelta(seconds=90)
PLAN_DRAFT_TTL: Final = timedelta(seconds=5)

WORKER_TIMEOUT: Final = 60.0
"""Seconds the coordinator waits for an agent's report before giving up."""

ROSTER: Final = (
    ("coder", "core", ("python", "refactoring")),
    ("tester", "quality", ("unit-tests", "integration-tests")),
    ("reviewer", "quality", ("code-review", "static-analysis")),
    ("security-architect", "security", ("threat-modeling", "security-design")),
    ("core-architect", "core", ("ddd-design", "architecture")),
    ("memory-specialist", "memory", ("vector-search", "caching")),
    ("performance-engineer", "performance", ("profiling", "benchmarks")),
    ("devops-engineer", "infrastructure", ("ci", "deployment")),
)
"""(role, domain, capabilities) of the worker agents, dealt round-robin."""


# (task type, domain, verb, mean duration in ms, failure probability)
TASK_KINDS: Final = (
    ("implementation", "core", "Implement", 6000, 0.12),
    ("testing", "quality", "Test", 4000, 0.10),
    ("code-review", "quality", "Review", 3000, 0.08),
    ("security-audit", "security", "Audit", 7000, 0.20),
    ("architecture-design", "core", "Design", 8000, 0.10),
    ("memory-optimization", "memory", "Optimise", 5000, 0.15),
    ("benchmark", "performance", "Benchmark", 4500, 0.15),
    ("deployment", "infrastructure", "Deploy", 3500, 0.18),
)
SUBJECTS: Final = (
    "event store",
    "projection engine",
    "agent registry",
    "task queue",
    "memory index",
    "command line",
    "snapshot cadence",
    "writer actor",
    "dispatcher",
    "codec",
    "upcasters",
    "retry policy",
)
PRIORITIES: Final = ("critical", "high", "medium", "low")
PRIORITY_RANK: Final = {p: i for i, p in enumerate(PRIORITIES)}
KNOWLEDGE: Final = (
    "patterns/event-sourcing",
    "patterns/actor-model",
    "security/owasp-top-10",
    "style/python",
    "ops/runbook",
    "architecture/bounded-contexts",
)
TASK_ERRORS: Final = (
    "TimeoutError: tool call exceeded 30s",
    "AssertionError: 2 tests failed",
    "RuntimeError: merge conflict in src/core.py",
    "ValueError: schema validation failed",
    "ConnectionError: model endpoint unavailable",
)
CRASH_ERRORS: Final = (
    "MemoryError: context window exhausted",
    "RuntimeError: worker process killed (OOM)",
    "ConnectionResetError: lost the model endpoint",
)
CRASH_PROBABILITY: Final = 0.03
COORDINATOR: Final = "coordinator"
TOPOLOGY: Final = "hierarchical-mesh"


def ms(value: float) -> timedelta:
    """``value`` milliseconds."""
    return timedelta(milliseconds=value)


KIND_BY_TYPE: Final = {kind[0]: kind for kind in TASK_KINDS}
"""Task type -> its entry of :data:`TASK_KINDS`."""
