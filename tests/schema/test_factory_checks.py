"""Factory arguments: causation as UUID or str and ``caused_by=``, strings
refused where a sequence is expected, negative numbers refused, and the
optional ``access_count``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog.schema.codec import DEFAULT_MAX_PAYLOAD_BYTES, decode_row, prepare_event
from swarmlog.schema.errors import InvalidEventError
from swarmlog.schema.events import ALL_EVENT_TYPES, MemoryRetrieved
from swarmlog.schema.factories import (
    create_agent_spawned_event,
    create_agent_started_event,
    create_agent_task_completed_event,
    create_event,
    create_memory_retrieved_event,
    create_memory_stored_event,
    create_swarm_initialized_event,
    create_swarm_phase_changed_event,
    create_swarm_scaled_event,
    create_task_blocked_event,
    create_task_completed_event,
    create_task_created_event,
    create_task_failed_event,
)
from swarmlog.store import EventStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.schema.envelope import Event

MAX = DEFAULT_MAX_PAYLOAD_BYTES
T0 = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)


def _round_trip(event: Event[Any]) -> Event[Any]:
    prepared = prepare_event(event, MAX)
    return decode_row((1, event.type, event.schema_version, prepared.row(1, 1)[8]))


class TestCausation:
    """causation_id / correlation_id take a UUID or a str; caused_by fills
    both from an event."""

    def test_uuid_is_stored_as_its_string(self) -> None:
        """The natural call from the issue: a previous event's id."""
        previous = create_agent_spawned_event("a", "coder", "core")
        corr = uuid.uuid4()
        event = create_agent_started_event(
            "a", causation_id=previous.id, correlation_id=corr
        )
        assert event.causation_id == str(previous.id)
        assert event.correlation_id == str(corr)
        back = _round_trip(event)
        assert (back.causation_id, back.correlation_id) == (str(previous.id), str(corr))

    def test_strings_are_kept(self) -> None:
        """A string id is stored as given."""
        event = create_agent_started_event("a", causation_id="cmd-1")
        assert _round_trip(event).causation_id == "cmd-1"

    def test_uuid_in_a_hand_built_event(self) -> None:
        """An Event built directly with UUID ids is stored with strings."""
        base = create_agent_started_event("a", timestamp=T0)
        cause, corr = uuid.uuid4(), uuid.uuid4()
        event = msgspec.structs.replace(
            base,
            causation_id=cause,  # type: ignore[arg-type]
            correlation_id=corr,  # type: ignore[arg-type]
        )
        stored = prepare_event(event, MAX).event
        assert (stored.causation_id, stored.correlation_id) == (str(cause), str(corr))

    @pytest.mark.parametrize("bad", [5, b"x", object()])
    def test_other_ids_are_refused(self, bad: Any) -> None:
        """Neither UUID nor str raises InvalidEventError naming the field."""
        with pytest.raises(InvalidEventError, match="causation_id"):
            create_agent_started_event("a", causation_id=bad)
        with pytest.raises(InvalidEventError, match="correlation_id"):
            create_agent_started_event("a", correlation_id=bad)

    def test_caused_by_an_event_without_correlation(self) -> None:
        """The cause's id is both causation and correlation."""
        cause = create_agent_spawned_event("a", "coder", "core")
        event = create_agent_started_event("a", caused_by=cause)
        assert event.causation_id == str(cause.id)
        assert event.correlation_id == str(cause.id)

    def test_caused_by_keeps_the_conversation(self) -> None:
        """A chain keeps the first event's correlation id."""
        first = create_agent_spawned_event("a", "coder", "core")
        second = create_agent_started_event("a", caused_by=first)
        third = create_task_created_event("t", "x", "T", "d", "low", caused_by=second)
        assert third.causation_id == str(second.id)
        assert third.correlation_id == str(first.id)

    def test_explicit_ids_win(self) -> None:
        """An explicit correlation_id (or causation_id) beats caused_by."""
        cause = create_agent_spawned_event("a", "coder", "core", correlation_id="c0")
        event = create_agent_started_event(
            "a", caused_by=cause, correlation_id="mine", causation_id="cmd"
        )
        assert (event.causation_id, event.correlation_id) == ("cmd", "mine")
        assert create_agent_started_event("a", caused_by=cause).correlation_id == "c0"

    def test_caused_by_a_stored_event(self) -> None:
        """The event append returned works as a cause, and reads back."""
        with EventStore() as store:
            spawned = store.append(create_agent_spawned_event("a", "coder", "core"))
            started = store.append(create_agent_started_event("a", caused_by=spawned))
            back = store.get_events("a")[1]
        assert back.causation_id == started.causation_id == str(spawned.id)

    def test_caused_by_must_be_an_event(self) -> None:
        """Anything else is refused."""
        with pytest.raises(InvalidEventError, match="caused_by"):
            create_agent_started_event("a", caused_by="not an event")

    @pytest.mark.parametrize("cls", ALL_EVENT_TYPES, ids=lambda c: c.__name__)
    def test_every_factory_takes_caused_by(
        self, cls: type[msgspec.Struct], sample_events: dict[type[Any], Any]
    ) -> None:
        """All 23 factories and create_event pass caused_by through."""
        cause = create_agent_spawned_event("a", "coder", "core")
        event = sample_events[cls](caused_by=cause)
        assert event.causation_id == str(cause.id)
        direct = create_event(event.payload, "x", caused_by=cause)
        assert direct.correlation_id == str(cause.id)


@pytest.fixture
def sample_events() -> dict[type[Any], Callable[..., Event[Any]]]:
    """One factory call per payload class, taking envelope options."""
    from swarmlog.schema import events as ev
    from swarmlog.schema import factories as f

    return {
        ev.AgentSpawned: lambda **k: f.create_agent_spawned_event("a", "r", "d", **k),
        ev.AgentStarted: lambda **k: f.create_agent_started_event("a", **k),
        ev.AgentStopped: lambda **k: f.create_agent_stopped_event("a", "r", **k),
        ev.AgentFailed: lambda **k: f.create_agent_failed_event("a", "e", **k),
        ev.AgentStatusChanged: lambda **k: f.create_agent_status_changed_event(
            "a", "x", "y", **k
        ),
        ev.AgentTaskAssigned: lambda **k: f.create_agent_task_assigned_event(
            "a", "t", **k
        ),
        ev.AgentTaskCompleted: lambda **k: f.create_agent_task_completed_event(
            "a", "t", None, T0, 1, **k
        ),
        ev.TaskCreated: lambda **k: f.create_task_created_event(
            "t", "x", "T", "d", "low", **k
        ),
        ev.TaskStarted: lambda **k: f.create_task_started_event("t", "a", **k),
        ev.TaskCompleted: lambda **k: f.create_task_completed_event("t", None, **k),
        ev.TaskFailed: lambda **k: f.create_task_failed_event("t", "e", **k),
        ev.TaskBlocked: lambda **k: f.create_task_blocked_event("t", ["u"], **k),
        ev.TaskQueued: lambda **k: f.create_task_queued_event("t", "low", **k),
        ev.MemoryStored: lambda **k: f.create_memory_stored_event(
            "m", "n", "k", "json", 1, **k
        ),
        ev.MemoryRetrieved: lambda **k: f.create_memory_retrieved_event(
            "m", "n", "k", **k
        ),
        ev.MemoryDeleted: lambda **k: f.create_memory_deleted_event("m", "n", "k", **k),
        ev.MemoryExpired: lambda **k: f.create_memory_expired_event(
            "m", "n", "k", T0, **k
        ),
        ev.SwarmInitialized: lambda **k: f.create_swarm_initialized_event(
            "mesh", 1, None, **k
        ),
        ev.SwarmScaled: lambda **k: f.create_swarm_scaled_event(0, 1, "r", **k),
        ev.SwarmTerminated: lambda **k: f.create_swarm_terminated_event("r", None, **k),
        ev.SwarmPhaseChanged: lambda **k: f.create_swarm_phase_changed_event(
            "a", "b", **k
        ),
        ev.SwarmMilestoneReached: lambda **k: f.create_swarm_milestone_reached_event(
            "m", "n", **k
        ),
        ev.SwarmError: lambda **k: f.create_swarm_error_event("e", None, **k),
    }


class TestSequences:
    """A lone string where a sequence of ids is expected is refused."""

    @pytest.mark.parametrize(
        ("make", "name"),
        [
            (lambda v: create_agent_spawned_event("a", "r", "d", v), "capabilities"),
            (
                lambda v: create_task_created_event("t", "x", "T", "d", "low", v),
                "dependencies",
            ),
            (lambda v: create_task_blocked_event("t", v), "blocked_by"),
        ],
    )
    def test_string_is_refused(self, make: Callable[[Any], Any], name: str) -> None:
        """``"coding"`` would become one id per letter: an error instead."""
        with pytest.raises(InvalidEventError, match=name):
            make("coding")
        with pytest.raises(InvalidEventError, match=name):
            make(b"coding")
        with pytest.raises(InvalidEventError, match=name):
            make(5)
        assert make(["coding"]).payload.__getattribute__(name) == ("coding",)
        assert make(x for x in ("a", "b")).payload.__getattribute__(name) == ("a", "b")


class TestNegativeNumbers:
    """Durations, sizes, retry counts and agent counts are never negative."""

    @pytest.mark.parametrize(
        ("make", "name"),
        [
            (
                lambda v: create_agent_task_completed_event("a", "t", None, T0, v),
                "duration",
            ),
            (lambda v: create_task_completed_event("t", None, v), "duration"),
            (lambda v: create_task_failed_event("t", "e", v), "retry_count"),
            (lambda v: create_memory_stored_event("m", "n", "k", "j", v), "size"),
            (
                lambda v: create_memory_retrieved_event("m", "n", "k", v),
                "access_count",
            ),
            (lambda v: create_swarm_initialized_event("mesh", v, None), "max_agents"),
            (
                lambda v: create_swarm_scaled_event(v, 1, "r"),
                "previous_agent_count",
            ),
            (lambda v: create_swarm_scaled_event(1, v, "r"), "new_agent_count"),
        ],
    )
    def test_negative_is_refused(self, make: Callable[[Any], Any], name: str) -> None:
        """-1 raises InvalidEventError naming the argument; 0 is fine."""
        with pytest.raises(InvalidEventError, match=f"{name} must not be negative"):
            make(-1)
        assert make(0).payload.__getattribute__(name) == 0

    def test_other_arguments_are_untouched(self) -> None:
        """Phases and other strings are not counts."""
        assert create_swarm_phase_changed_event("-1", "-2").payload.new_phase == "-2"


class TestAccessCount:
    """access_count stays the 4th parameter, now optional."""

    def test_optional(self) -> None:
        """Without it the payload says None, and it round-trips."""
        event = create_memory_retrieved_event("m", "n", "k")
        assert event.payload.access_count is None
        assert _round_trip(event).payload.access_count is None

    def test_positional_fourth(self) -> None:
        """Given positionally, it is stored."""
        event = create_memory_retrieved_event("m", "n", "k", 7)
        assert _round_trip(event).payload.access_count == 7

    def test_events_stored_with_a_count_still_decode(self) -> None:
        """An old stored payload (int count) decodes into the new type."""
        old = msgspec.msgpack.encode(
            {
                "type": "memory:retrieved",
                "memory_id": "m",
                "namespace": "n",
                "key": "k",
                "retrieved_at": T0,
                "access_count": 3,
            }
        )
        assert msgspec.msgpack.decode(old, type=MemoryRetrieved).access_count == 3
