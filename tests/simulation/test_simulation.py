"""The seeded swarm simulation: determinism, live == rebuilt, coverage of
every event type, and the refusal to overwrite an existing store."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import msgspec
import pytest

from swarmlog import EventStore, create_agent_spawned_event
from swarmlog.actors.read_models import (
    AgentStateProjection,
    MemoryIndexProjection,
    SwarmProjection,
    TaskHistoryProjection,
)
from swarmlog.schema.errors import (
    IncompatibleStoreError,
    InvalidConfigError,
    StoreLockedError,
    SwarmlogError,
)
from swarmlog.schema.events import ALL_EVENT_TYPES
from swarmlog.simulation import (
    DatabaseExistsError,
    RoundProgress,
    SimulationReport,
    collect_read_models,
    fingerprint,
    run_simulation,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

AGENTS = 4
TASKS = 12
EVENT_TYPES = frozenset(cls.__struct_config__.tag for cls in ALL_EVENT_TYPES)


@pytest.fixture
def simulate(tmp_path: Path) -> Callable[..., SimulationReport]:
    """Run a small simulation into a fresh file of ``tmp_path``."""
    runs = iter(range(1_000))

    def run(**options: object) -> SimulationReport:
        options.setdefault("agents", AGENTS)
        options.setdefault("tasks", TASKS)
        path = tmp_path / f"run-{next(runs)}.db"
        return run_simulation(path, **options)  # type: ignore[arg-type]

    return run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> SimulationReport:
    """One small run shared by the read-only checks."""
    path = tmp_path_factory.mktemp("simulation") / "swarm.db"
    return run_simulation(path, agents=AGENTS, tasks=TASKS, seed=42)


class TestDeterminism:
    """The same seed gives the same final read models."""

    def test_same_seed_same_read_models(
        self, simulate: Callable[..., SimulationReport]
    ) -> None:
        """Two runs with one seed agree on the read models and every count."""
        first = simulate(seed=7)
        second = simulate(seed=7)
        assert first.read_models == second.read_models
        assert first.fingerprint == second.fingerprint
        assert first.events == second.events
        assert first.events_by_type == second.events_by_type
        assert (first.rounds, first.retries, first.agent_failures) == (
            second.rounds,
            second.retries,
            second.agent_failures,
        )

    def test_whatever_the_interleaving(
        self,
        simulate: Callable[..., SimulationReport],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Agents delayed at random before each append (so their events
        interleave differently in the log) still give the same outcome."""
        calm = simulate(seed=3)
        jitter = random.Random()  # deliberately unseeded: a different shuffle
        original = EventStore.append

        def jittery_append(self: EventStore, *args: object, **kwargs: object) -> object:
            if threading.current_thread().name.startswith("swarmlog-sim-"):
                time.sleep(jitter.random() / 2000)  # perturbs scheduling only
            return original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(EventStore, "append", jittery_append)
        shuffled = simulate(seed=3)
        assert shuffled.fingerprint == calm.fingerprint
        assert shuffled.read_models == calm.read_models

    def test_another_seed_another_outcome(
        self, simulate: Callable[..., SimulationReport]
    ) -> None:
        """A different seed gives different read models."""
        assert simulate(seed=1).fingerprint != simulate(seed=2).fingerprint

    def test_fingerprint_is_of_the_read_models(self, report: SimulationReport) -> None:
        """The fingerprint is recomputable from the reported read models."""
        assert fingerprint(report.read_models) == report.fingerprint
        assert len(report.fingerprint) == 16


class TestEngineProof:
    """Projections rebuilt from the log equal the live ones."""

    def test_live_equals_rebuilt(self, report: SimulationReport) -> None:
        """The run's own check passed."""
        assert report.rebuilt_matches

    def test_a_fresh_reader_rebuilds_the_same_models(
        self, report: SimulationReport
    ) -> None:
        """Another (read-only) store on the file, replaying from position 0
        and restoring from projection snapshots, reaches the same read models."""
        with EventStore(report.db_path, read_only=True) as store:
            memory_ids = {
                e.aggregate_id for e in store.get_events_by_type("memory:stored")
            }
            head = store.head_position
            replayed = collect_read_models(
                AgentStateProjection.as_of(store, head),
                TaskHistoryProjection.as_of(store, head),
                MemoryIndexProjection.as_of(store, head),
                SwarmProjection.as_of(store, head),
                now=report.read_models.now,
                memory_ids=memory_ids,
            )
            restored = collect_read_models(
                AgentStateProjection(store).initialize(),
                TaskHistoryProjection(store).initialize(),
                MemoryIndexProjection(store).initialize(),
                SwarmProjection(store).initialize(),
                now=report.read_models.now,
                memory_ids=memory_ids,
            )
        assert replayed == report.read_models
        assert restored == report.read_models

    def test_throughput_is_reported(self, report: SimulationReport) -> None:
        """Events and events/s are measured over the run."""
        assert report.events == sum(report.events_by_type.values())
        assert report.elapsed_seconds > 0
        assert report.events_per_second == pytest.approx(
            report.events / report.elapsed_seconds
        )


class TestSwarmBehaviour:
    """What the simulated swarm does."""

    def test_every_event_type_occurs(self, report: SimulationReport) -> None:
        """All 23 built-in event types appear in a run, and the recorded
        model answers (effect:recorded)."""
        assert set(report.events_by_type) == EVENT_TYPES | {"effect:recorded"}
        assert len(EVENT_TYPES) == 23

    def test_every_event_type_occurs_in_a_default_run(
        self, simulate: Callable[..., SimulationReport]
    ) -> None:
        """The default sizes (8 agents, 40 tasks) cover every type too."""
        default = simulate(agents=8, tasks=40)
        assert set(default.events_by_type) == EVENT_TYPES | {"effect:recorded"}

    def test_every_task_finishes(self, report: SimulationReport) -> None:
        """Each task ends completed or failed; the counts add up."""
        models = report.read_models
        assert len(models.tasks) == TASKS
        assert {t.status for t in models.tasks} <= {"completed", "failed"}
        assert report.tasks_completed + report.tasks_failed == TASKS
        assert models.success_rate + models.failure_rate == pytest.approx(1.0)
        completed = [t for t in models.tasks if t.status == "completed"]
        assert all(t.duration is not None and t.duration > 0 for t in completed)

    def test_agents_and_swarm_end_stopped(self, report: SimulationReport) -> None:
        """Every agent stops, the swarm scales to 0 and terminates after
        passing through its phases."""
        models = report.read_models
        assert {a.status for a in models.agents} == {"completed"}
        assert models.agents[0].id == "coordinator"
        swarm = models.swarm
        assert swarm is not None
        assert swarm.terminated
        assert swarm.agent_count == 0
        phases = [p.new_phase for p in swarm.phase_timeline]
        assert phases == [
            "initialization",
            "planning",
            "execution",
            "review",
            "completion",
        ]
        assert swarm.scale_history[0].new_agent_count == AGENTS
        assert [m.milestone_id for m in swarm.milestones][-1] == "tasks-100"

    def test_memory_namespaces(self, report: SimulationReport) -> None:
        """Shared memory is used across namespaces; scratch memory is gone."""
        models = report.read_models
        assert {"knowledge", "task-results"} <= set(models.namespace_usage)
        assert "working-memory" not in models.namespace_usage
        assert models.total_memory_size == sum(
            u.bytes for u in models.namespace_usage.values()
        )
        assert models.hot_memories
        assert all(e.access_count > 0 for e in models.hot_memories)
        assert any(e.is_deleted for e in models.memories)

    def test_agent_threads_are_joined(self, report: SimulationReport) -> None:
        """No simulation thread outlives the run."""
        assert report.agents_spawned >= AGENTS
        alive = [
            t.name for t in threading.enumerate() if t.name.startswith("swarmlog-sim-")
        ]
        assert alive == []

    def test_snapshots_are_saved(self, report: SimulationReport) -> None:
        """Each agent and the swarm get a snapshot of their final state."""
        with EventStore(report.db_path, read_only=True) as store:
            swarm = store.get_snapshot("swarm")
            agent = store.get_snapshot("agent-01")
            stream = store.get_events("agent-01")
        assert swarm is not None
        assert swarm.state["terminated"] is True
        assert agent is not None
        assert agent.version == stream[-1].version

    def test_simulated_clock(self, report: SimulationReport) -> None:
        """Timestamps come from the simulated clock, not the wall clock."""
        with EventStore(report.db_path, read_only=True) as store:
            events = list(store.replay())
        assert events[0].timestamp.year == 2025
        assert max(e.timestamp for e in events) == report.read_models.now

    def test_progress_callback(self, tmp_path: Path) -> None:
        """``on_progress`` hears every phase on the calling thread, with
        finished tasks that never go down and reach the total."""
        steps: list[RoundProgress] = []
        threads: set[str] = set()

        def record(step: RoundProgress) -> None:
            steps.append(step)
            threads.add(threading.current_thread().name)

        run_simulation(tmp_path / "progress.db", agents=3, tasks=6, on_progress=record)
        phases = list(dict.fromkeys(step.phase for step in steps))
        assert phases == [
            "initialization",
            "planning",
            "execution",
            "review",
            "completion",
        ]
        finished = [step.finished for step in steps]
        assert finished == sorted(finished)
        assert steps[-1].finished == steps[-1].total == 6
        assert threads == {threading.current_thread().name}

    def test_a_failing_callback_stops_the_run_cleanly(self, tmp_path: Path) -> None:
        """An exception from ``on_progress`` reaches the caller and every
        agent thread is stopped."""

        class StopError(Exception):
            pass

        def fail(step: RoundProgress) -> None:
            if step.round == 1:
                raise StopError

        with pytest.raises(StopError):
            run_simulation(tmp_path / "stop.db", agents=3, tasks=6, on_progress=fail)
        alive = [
            t.name for t in threading.enumerate() if t.name.startswith("swarmlog-sim-")
        ]
        assert alive == []

    def test_never_imports_the_cli_or_rich(self, tmp_path: Path) -> None:
        """Running a simulation imports neither swarmlog.cli, rich nor typer."""
        code = (
            "import sys; from swarmlog.simulation import run_simulation; "
            f"run_simulation({str(tmp_path / 'alone.db')!r}, agents=2, tasks=3); "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('rich', 'typer') or m.startswith('swarmlog.cli')))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[]"


class TestDatabaseFile:
    """An existing file is refused unless overwrite is given."""

    def test_refuses_an_existing_db(self, report: SimulationReport) -> None:
        """The existing store is refused and left untouched."""
        before = _content(report.db_path)
        with pytest.raises(DatabaseExistsError) as caught:
            run_simulation(report.db_path, agents=AGENTS, tasks=TASKS)
        assert caught.value.path == report.db_path
        assert "--overwrite" in str(caught.value)
        assert isinstance(caught.value, SwarmlogError)
        assert _content(report.db_path) == before

    def test_overwrite_replaces_a_store(self, tmp_path: Path) -> None:
        """With overwrite the old store is replaced, not appended to."""
        path = tmp_path / "again.db"
        first = run_simulation(path, agents=2, tasks=3, seed=5)
        second = run_simulation(path, agents=2, tasks=3, seed=5, overwrite=True)
        assert second.events == first.events
        assert second.fingerprint == first.fingerprint

    def test_overwrite_refuses_a_foreign_file(self, tmp_path: Path) -> None:
        """A file that is not a swarmlog store is never deleted."""
        path = tmp_path / "notes.db"
        path.write_text("my precious notes\n")
        with pytest.raises(IncompatibleStoreError):
            run_simulation(path, agents=2, tasks=2, overwrite=True)
        assert path.read_text() == "my precious notes\n"

    def test_overwrite_refuses_a_store_in_use(self, tmp_path: Path) -> None:
        """A store another writer holds open is not replaced."""
        path = tmp_path / "busy.db"
        with EventStore(path) as store:
            store.append(create_agent_spawned_event("a1", "coder", "core"))
            with pytest.raises(StoreLockedError):
                run_simulation(path, agents=2, tasks=2, overwrite=True)
            assert store.head_position == 1

    @pytest.mark.parametrize(("agents", "tasks"), [(0, 5), (3, 0), (-1, 5)])
    def test_rejects_empty_swarms(
        self, tmp_path: Path, agents: int, tasks: int
    ) -> None:
        """At least one agent and one task are needed."""
        with pytest.raises(InvalidConfigError):
            run_simulation(tmp_path / "x.db", agents=agents, tasks=tasks)
        assert not (tmp_path / "x.db").exists()

    def test_report_is_frozen_and_encodable(self, report: SimulationReport) -> None:
        """The report is an immutable msgspec Struct that encodes to JSON."""
        with pytest.raises(AttributeError):
            report.events = 0  # type: ignore[misc]
        decoded = msgspec.json.decode(msgspec.json.encode(report))
        assert decoded["fingerprint"] == report.fingerprint
        assert decoded["rebuilt_matches"] is True


def _content(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
