"""Run a recorded simulation again: an exact replay, or a what-if.

A simulation records every model answer in its store (recorded effects,
run :data:`~swarmlog.simulation.llm.RUN_ID`) and its parameters in the
``swarm:initialized`` event. From those:

- :func:`replay_simulation` runs the same simulation into a new store with
  every model answer replayed from the recording (the model is never
  called) and checks the read models' fingerprint equals the recorded
  run's.
- :func:`what_if` forks the recorded store at the start of a round, plays
  the rounds before it again on a scratch store (answers replayed, so the
  coordinator and agents reach exactly the recorded state), then continues
  in the fork with one parameter changed, recording the new answers there,
  and diffs the fork's read models against the recorded ones.

Runs on the calling thread (the agents on threads of their own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from swarmlog.diff import ReadModelsDiff, diff_read_models
from swarmlog.schema.errors import InvalidConfigError
from swarmlog.simulation.coordinator import LiveModels
from swarmlog.simulation.llm import RUN_ID
from swarmlog.simulation.results import SimulationError, SimulationReport
from swarmlog.simulation.runner import check_parameters, play, prepare_path
from swarmlog.store import EventStore
from swarmlog.summary import collect_read_models, fingerprint

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from swarmlog.effects import Effects
    from swarmlog.simulation.coordinator import Coordinator
    from swarmlog.simulation.results import RoundProgress

__all__ = [
    "KEEP",
    "RecordedRun",
    "RerunReport",
    "recorded_run",
    "replay_simulation",
    "round_starts",
    "what_if",
]


KEEP: Final = "keep"
"""``what_if(failure_rate=KEEP)``: keep the recorded run's failure rate."""


class RecordedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded simulation's parameters and final fingerprint.

    Attributes:
        path: Its store file.
        seed: The seed.
        agents: Worker agents at first.
        tasks: Tasks planned.
        failure_rate: The failure probability it ran with (None: each task
            type's own).
        fingerprint: Its final read models' fingerprint, recomputed from the
            store as the run computed it.
        events: Its head position.
    """

    path: str
    seed: int
    agents: int
    tasks: int
    failure_rate: float | None
    fingerprint: str
    events: int


class RerunReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`replay_simulation` and :func:`what_if` return.

    Attributes:
        kind: ``"replay"`` or ``"what-if"``.
        recorded: The recorded run.
        run: The new run's report (its store, counts, fingerprint, model
            calls really made).
        identical: Whether the new run's fingerprint equals the recorded one.
        at_position: The what-if's fork position (None for a replay).
        at_round: The round the what-if continued from (None for a replay).
        changed: The parameters the what-if changed, by name.
        diff: The recorded read models (A) against the new run's (B); None
            for a replay, which compares fingerprints.
    """

    kind: Literal["replay", "what-if"]
    recorded: RecordedRun
    run: SimulationReport
    identical: bool
    at_position: int | None = None
    at_round: int | None = None
    changed: dict[str, Any] = {}
    diff: ReadModelsDiff | None = None


def _parameters(store: EventStore) -> dict[str, Any]:
    found = store.query(event_types="swarm:initialized", limit=1)
    config = found[0].payload.config if found else None
    if not isinstance(config, Mapping) or not {"seed", "agents", "tasks"} <= set(
        config
    ):
        msg = f"{store.path!r} holds no recorded swarmlog simulation"
        raise SimulationError(msg)
    return dict(config)


def recorded_run(store: EventStore) -> RecordedRun:
    """The parameters and fingerprint of the simulation recorded in
    ``store`` (any thread; reads the whole log once).

    Raises:
        SimulationError: The store holds no recorded simulation.
    """
    config = _parameters(store)
    head = store.head_position
    last = store.query(from_position=head, limit=1)
    if not last:
        msg = f"{store.path!r} holds no recorded swarmlog simulation"
        raise SimulationError(msg)
    memory_ids = {e.aggregate_id for e in store.query(event_types="memory:stored")}
    models = collect_read_models(
        *LiveModels.as_of(store, head),
        now=last[0].timestamp,
        memory_ids=memory_ids,
    )
    rate = config.get("failureRate")
    return RecordedRun(
        path=store.path,
        seed=config["seed"],
        agents=config["agents"],
        tasks=config["tasks"],
        failure_rate=None if rate is None else float(rate),
        fingerprint=fingerprint(models),
        events=head,
    )


def round_starts(store: EventStore) -> dict[int, int]:
    """Round -> the position its first event takes, minus one (the head
    of the log when the round begins), for every execution round.

    Every simulation event carries its round in ``metadata["round"]``, and
    the coordinator starts a round only when every agent reported the last
    one, so the log is in round order.
    """
    starts: dict[int, int] = {}
    for event in store.replay():
        number = event.metadata.get("round")
        if isinstance(number, int) and number >= 1 and number not in starts:
            starts[number] = event.position - 1
    return starts


def _new_path(db_path: str | os.PathLike[str], recorded: EventStore) -> str:
    path = os.fspath(db_path)
    if path != ":memory:" and os.path.abspath(path) == recorded.path:
        msg = "the new run needs a store of its own, not the recorded one"
        raise InvalidConfigError(msg)
    return path


def replay_simulation(
    recorded_path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] = ":memory:",
    *,
    overwrite: bool = False,
    on_progress: Callable[[RoundProgress], None] | None = None,
) -> RerunReport:
    """Run the simulation recorded at ``recorded_path`` again into
    ``db_path``, every model answer replayed from the recording.

    The recorded store is opened read-only and never changed.

    Returns:
        The report; ``identical`` says the fingerprints are equal and
        ``run.llm_calls`` is 0 (the model was never called).

    Raises:
        SimulationError: No recorded simulation there, or the replay asked
            for an answer that was not recorded (``EffectNotRecordedError``
            and ``EffectMismatchError`` reach the caller as such).
    """
    with EventStore(recorded_path, read_only=True) as recorded:
        run = recorded_run(recorded)
        path = prepare_path(_new_path(db_path, recorded), overwrite)

        def effects(agent_id: str, clock: Callable[[], datetime]) -> Effects:
            return recorded.effects(RUN_ID, "replay", clock=clock, source=agent_id)

        with EventStore(path) as store:
            report = play(
                store,
                agents=run.agents,
                tasks=run.tasks,
                seed=run.seed,
                failure_rate=run.failure_rate,
                effects=effects,
                on_progress=on_progress,
            )
    report = msgspec.structs.replace(
        report,
        replayed_from=run.path,
        db_path=":memory:" if path == ":memory:" else report.db_path,
    )
    return RerunReport(
        kind="replay",
        recorded=run,
        run=report,
        identical=report.fingerprint == run.fingerprint,
    )


def what_if(
    recorded_path: str | os.PathLike[str],
    db_path: str | os.PathLike[str],
    *,
    at_position: int,
    failure_rate: float | Literal["keep"] | None = KEEP,
    agents: int | None = None,
    overwrite: bool = False,
    on_progress: Callable[[RoundProgress], None] | None = None,
) -> RerunReport:
    """Fork the recorded simulation at ``at_position`` into ``db_path`` and
    continue it there with a parameter changed; diff the read models.

    The fork is cut at the start of the round ``at_position`` falls in (a
    round is the unit the coordinator decides in); the report says which.
    The rounds before it are played again on a scratch store with the
    recorded answers, then the coordinator and its agents move to the fork
    and play on with the new parameters, recording the new answers there.

    Args:
        recorded_path: The recorded simulation's store (opened read-only).
        db_path: The fork to create.
        at_position: Where to fork (rounded down to a round's start).
        failure_rate: The failure probability from the fork on (None: each
            task type's own; default :data:`KEEP`, the recorded one).
        agents: Scale the swarm to this many worker agents when the fork's
            first round starts (default: keep the recorded swarm).
        overwrite: Replace an existing swarmlog store at ``db_path``.
        on_progress: Called on the calling thread after each step.

    Raises:
        InvalidConfigError: ``at_position`` is before the first round or
            beyond the head, ``failure_rate`` is not a probability or
            ``agents`` is below 1.
        SimulationError: No recorded simulation there, or the run failed.
    """
    with EventStore(recorded_path, read_only=True) as recorded:
        run = recorded_run(recorded)
        rate = run.failure_rate if failure_rate == KEEP else failure_rate
        if isinstance(rate, str):
            msg = f"failure_rate must be a probability or KEEP, got {rate!r}"
            raise InvalidConfigError(msg)
        check_parameters(
            run.agents if agents is None else agents, run.tasks, run.seed, rate
        )
        changed: dict[str, Any] = {}
        if failure_rate != KEEP:
            changed["failure_rate"] = rate
        if agents is not None:
            changed["agents"] = agents
        at_round, position = _fork_point(recorded, at_position)
        path = prepare_path(_new_path(db_path, recorded), overwrite)
        with (
            recorded.fork(path, at_position=position) as forked,
            EventStore(":memory:") as scratch,
        ):

            def effects(agent_id: str, clock: Callable[[], datetime]) -> Effects:
                return forked.effects(RUN_ID, "auto", clock=clock, source=agent_id)

            def switch(c: Coordinator) -> None:
                if c.round + 1 == at_round:
                    c.move_to(forked, LiveModels.start(forked))
                    c.failure_rate = None if rate is None else float(rate)
                    c.target_agents = agents

            report = play(
                scratch,
                agents=run.agents,
                tasks=run.tasks,
                seed=run.seed,
                failure_rate=run.failure_rate,
                effects=effects,
                on_progress=on_progress,
                before_round=switch,
            )
            if report.db_path != forked.path:
                msg = f"the recorded run ended before round {at_round}"
                raise SimulationError(msg)
            diff = diff_read_models(recorded, forked)
    report = msgspec.structs.replace(report, failure_rate=rate, replayed_from=run.path)
    return RerunReport(
        kind="what-if",
        recorded=run,
        run=report,
        identical=report.fingerprint == run.fingerprint,
        at_position=position,
        at_round=at_round,
        changed=changed,
        diff=diff,
    )


def _fork_point(store: EventStore, at_position: int) -> tuple[int, int]:
    """(round, position): the start of the round ``at_position`` is in."""
    head = store.head_position
    if (
        isinstance(at_position, bool)
        or not isinstance(at_position, int)
        or not 0 <= at_position <= head
    ):
        msg = (
            f"at_position must be an int from 0 to the head ({head}), "
            f"got {at_position!r}"
        )
        raise InvalidConfigError(msg)
    starts = round_starts(store)
    rounds = [r for r, start in sorted(starts.items()) if start <= at_position]
    if not rounds:
        first = starts.get(1, head)
        msg = (
            f"position {at_position} is before the first round, which starts "
            f"at position {first}; fork at {first} or later"
        )
        raise InvalidConfigError(msg)
    return rounds[-1], starts[rounds[-1]]
