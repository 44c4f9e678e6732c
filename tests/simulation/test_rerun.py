"""The simulation's model calls go through recorded effects: an exact replay
without calling the model, and a what-if continued from a fork."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import EventStore, InvalidConfigError, create_agent_spawned_event
from swarmlog.simulation import (
    SimulationError,
    SimulationReport,
    recorded_run,
    replay_simulation,
    run_simulation,
    what_if,
)
from swarmlog.simulation.llm import RUN_ID
from swarmlog.simulation.rerun import round_starts

if TYPE_CHECKING:
    from pathlib import Path

AGENTS = 3
TASKS = 8


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> SimulationReport:
    """One small recorded run shared by the tests (never written to)."""
    path = tmp_path_factory.mktemp("rerun") / "recorded.db"
    return run_simulation(path, agents=AGENTS, tasks=TASKS, seed=11)


@pytest.fixture(scope="module")
def run() -> Any:
    """Invoke the ``swarmlog`` CLI in-process; returns the typer Result."""
    from typer.testing import CliRunner

    from swarmlog.cli import build_app

    app = build_app()
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def _head(path: str) -> int:
    with EventStore(path, read_only=True) as store:
        return store.head_position


class TestRecording:
    """A run records every model answer."""

    def test_every_model_call_is_recorded(self, recorded: SimulationReport) -> None:
        """One effect:recorded event per model call, on the run aggregate."""
        assert recorded.llm_calls > 0
        assert recorded.events_by_type["effect:recorded"] == recorded.llm_calls
        with EventStore(recorded.db_path, read_only=True) as store:
            effects = store.get_events(RUN_ID)
            assert {e.type for e in effects} == {"effect:recorded"}
            assert {e.payload.key for e in effects} <= {
                f"llm.agent-{i:02d}" for i in range(1, 10)
            }

    def test_the_recorded_fingerprint_is_recomputed_from_the_store(
        self, recorded: SimulationReport
    ) -> None:
        """recorded_run finds the parameters and the run's own fingerprint."""
        with EventStore(recorded.db_path, read_only=True) as store:
            run = recorded_run(store)
        assert (run.seed, run.agents, run.tasks) == (11, AGENTS, TASKS)
        assert run.fingerprint == recorded.fingerprint

    def test_a_store_without_a_simulation(self, tmp_path: Path) -> None:
        """SimulationError, not a crash."""
        path = tmp_path / "plain.db"
        with EventStore(path) as store:
            store.append(create_agent_spawned_event("a1", "coder", "core"))
        with pytest.raises(SimulationError, match="no recorded swarmlog simulation"):
            replay_simulation(path)


class TestReplay:
    """Replay: the same run, the model never called."""

    def test_replay_is_identical_without_calling_the_model(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """Same fingerprint, zero model calls, the recorded store untouched."""
        head = _head(recorded.db_path)
        result = replay_simulation(recorded.db_path, tmp_path / "replay.db")
        assert result.kind == "replay"
        assert result.identical
        assert result.run.fingerprint == recorded.fingerprint
        assert result.run.read_models == recorded.read_models
        assert result.run.llm_calls == 0
        assert result.run.replayed_from == recorded.db_path
        assert "effect:recorded" not in result.run.events_by_type
        assert _head(recorded.db_path) == head

    def test_replay_without_the_recordings_fails_loudly(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """A store whose recordings stop early (a fork) cannot be replayed:
        the run stops with the missing recording named."""
        with EventStore(recorded.db_path, read_only=True) as store:
            cut = round_starts(store)[2]
            store.fork(tmp_path / "cut.db", at_position=cut).shutdown()
        with pytest.raises(SimulationError, match="EffectNotRecordedError"):
            replay_simulation(tmp_path / "cut.db")

    def test_replay_refuses_its_own_store(self, recorded: SimulationReport) -> None:
        """The new run needs a store of its own."""
        with pytest.raises(InvalidConfigError, match="store of its own"):
            replay_simulation(recorded.db_path, recorded.db_path)


class TestWhatIf:
    """Fork at a round, continue with a parameter changed, diff."""

    def test_unchanged_parameters_reproduce_the_recording(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """Continuing the fork with the same parameters ends where the
        recorded run ended: identical fingerprint, an empty diff."""
        with EventStore(recorded.db_path, read_only=True) as store:
            at = round_starts(store)[2] + 1
        result = what_if(recorded.db_path, tmp_path / "same.db", at_position=at)
        assert result.changed == {}
        assert result.identical
        assert result.diff is not None
        assert result.diff.equal
        assert result.at_round == 2
        assert result.at_position == at - 1

    def test_a_changed_failure_rate_changes_the_outcome(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """Every attempt from the fork on fails: more failed tasks, the
        difference shows in the diff, and the fork keeps the recorded prefix
        and names its source."""
        with EventStore(recorded.db_path, read_only=True) as store:
            start = round_starts(store)[2]
            prefix = [e for e in store.replay() if e.position <= start]
        path = tmp_path / "failing.db"
        result = what_if(recorded.db_path, path, at_position=start, failure_rate=1.0)
        assert not result.identical
        assert result.diff is not None
        assert not result.diff.equal
        assert result.diff.tasks.changed
        assert result.run.tasks_failed > recorded.tasks_failed
        assert result.run.llm_calls > 0
        assert result.changed == {"failure_rate": 1.0}
        with EventStore(path, read_only=True) as forked:
            assert list(forked.replay())[: len(prefix)] == prefix
            (origin,) = forked.get_stats().lineage
            assert (origin.source, origin.position) == (recorded.db_path, start)
            new = [e for e in forked.get_events(RUN_ID) if e.position > start]
            assert len(new) == result.run.llm_calls

    def test_more_agents_from_the_fork_on(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """agents=N scales the swarm to N when the fork's first round starts:
        the new agents show as added, and the fork records the scaling."""
        with EventStore(recorded.db_path, read_only=True) as store:
            start = round_starts(store)[2]
        path = tmp_path / "bigger.db"
        result = what_if(recorded.db_path, path, at_position=start, agents=AGENTS + 3)
        assert result.changed == {"agents": AGENTS + 3}
        assert result.diff is not None
        assert result.diff.agents.added  # agents the recorded run never had
        assert result.run.agents_spawned > recorded.agents_spawned
        with EventStore(path, read_only=True) as forked:
            scaled = [
                e.payload
                for e in forked.get_events_by_type("swarm:scaled")
                if e.position > start
            ]
            assert scaled[0].new_agent_count == AGENTS + 3
            assert "what-if" in scaled[0].reason

    def test_fewer_agents_from_the_fork_on(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """agents=1 stops the newest agents at the fork; every task still
        finishes."""
        with EventStore(recorded.db_path, read_only=True) as store:
            start = round_starts(store)[2]
        result = what_if(
            recorded.db_path, tmp_path / "smaller.db", at_position=start, agents=1
        )
        assert result.run.tasks_completed + result.run.tasks_failed == TASKS
        assert result.run.rebuilt_matches
        assert result.diff is not None
        assert not result.diff.equal

    def test_a_position_before_the_first_round(
        self, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """InvalidConfigError naming where the first round starts; nothing
        is created."""
        with pytest.raises(InvalidConfigError, match="before the first round"):
            what_if(recorded.db_path, tmp_path / "early.db", at_position=3)
        assert not (tmp_path / "early.db").exists()

    @pytest.mark.parametrize("rate", [-0.1, 1.5, True])
    def test_a_failure_rate_that_is_no_probability(
        self, recorded: SimulationReport, tmp_path: Path, rate: Any
    ) -> None:
        """InvalidConfigError before anything is forked."""
        with pytest.raises(InvalidConfigError, match="failure_rate"):
            what_if(
                recorded.db_path, tmp_path / "x.db", at_position=100, failure_rate=rate
            )
        assert not (tmp_path / "x.db").exists()


class TestCommandLine:
    """swarmlog simulate --replay / --what-if."""

    def test_replay(self, run: Any, recorded: SimulationReport) -> None:
        """Exit 0, and the verdict printed."""
        result = run("simulate", "--replay", recorded.db_path)
        assert result.exit_code == 0, result.output
        assert "model calls made: 0" in result.output
        assert f"{recorded.fingerprint}: identical" in result.output

    def test_what_if_json(
        self, run: Any, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """--json: the fork, the changed parameter and the diff."""
        with EventStore(recorded.db_path, read_only=True) as store:
            start = round_starts(store)[2]
        path = tmp_path / "wi.db"
        result = run(
            "simulate",
            "--what-if",
            recorded.db_path,
            "--at",
            str(start),
            "--failure-rate",
            "1",
            "--db",
            str(path),
            "--json",
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["kind"] == "what-if"
        assert data["at_position"] == start
        assert data["changed"] == {"failure_rate": 1.0}
        assert data["diff"]["tasks"]["changed"]
        assert data["run"]["db_path"] == str(path)

    def test_what_if_text(
        self, run: Any, recorded: SimulationReport, tmp_path: Path
    ) -> None:
        """The text form names the fork point and prints the diff."""
        with EventStore(recorded.db_path, read_only=True) as store:
            start = round_starts(store)[3]
        result = run(
            "simulate",
            "--what-if",
            recorded.db_path,
            "--at",
            str(start + 2),
            "--failure-rate",
            "0",
            "--db",
            str(tmp_path / "wi.db"),
        )
        assert result.exit_code == 0, result.output
        assert f"forked at position {start:,} (start of round 3)" in result.output
        assert "read models:" in result.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--at", "5"), "--at goes with --what-if"),
            (("--what-if", "x.db"), "needs --at"),
            (("--replay", "a.db", "--what-if", "b.db", "--at", "1"), "cannot be"),
            (("--failure-rate", "2"), "--failure-rate must be"),
            (("--agents", "0"), "--agents must be"),
        ],
    )
    def test_usage_errors(self, run: Any, args: tuple[str, ...], message: str) -> None:
        """Exit 2 with one error line."""
        result = run("simulate", *args)
        assert result.exit_code == 2
        assert message in result.stderr
