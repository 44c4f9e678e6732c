"""The projection host: Projection talks to it through a Protocol, options
are immutable, and a reset clears the progress while no actor runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EventStore,
    Projection,
    ProjectionStateError,
    TaskCreated,
    create_task_created_event,
    handles,
    query,
)
from swarmlog.actors.projection_host import ProjectionHost

if TYPE_CHECKING:
    from collections.abc import Iterator

    from swarmlog.actors.storage import ReadStorage


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore() as s:
        yield s


class Counter(Projection):
    name = "host-counter"

    def reset_state(self) -> None:
        self.seen = 0

    @handles(TaskCreated)
    def _on_created(self, event: Any) -> None:
        self.seen += 1

    @query
    def get_seen(self) -> int:
        return self.seen


class _RecordingHost:
    """A host that only records what the projection asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, projection: Projection) -> None:
        self.calls.append(f"start {projection.name}")

    def stop(self, projection: Projection) -> None:
        self.calls.append(f"stop {projection.name}")

    def reset(self, projection: Projection) -> None:
        self.calls.append(f"reset {projection.name}")

    def reader(self) -> ReadStorage:
        raise AssertionError("not read in this test")


class _HostOnlyStore:
    """Just what ProjectionStore asks for: no private store method."""

    def __init__(self) -> None:
        self.host = _RecordingHost()

    @property
    def closed(self) -> bool:
        return False

    @property
    def projection_host(self) -> _RecordingHost:
        return self.host


def test_a_projection_speaks_to_its_host_only() -> None:
    """initialize, stop and reset go to the host of the store given."""
    store = _HostOnlyStore()
    counter = Counter(store)
    counter.initialize()
    counter.stop()
    counter.reset()
    assert store.host.calls == [
        "start host-counter",
        "stop host-counter",
        "reset host-counter",
    ]


def test_the_store_hosts_its_projections(store: EventStore) -> None:
    """EventStore.projection_host runs the store's projections; a second
    projection with a running one's name is refused."""
    assert isinstance(store.projection_host, ProjectionHost)
    counter = Counter(store).initialize()
    with pytest.raises(ProjectionStateError):
        Counter(store).initialize()
    assert set(store.projection_host.statuses()) == {"host-counter"}
    counter.stop()
    assert store.projection_host.statuses() == {}


def test_options_are_immutable(store: EventStore) -> None:
    """A projection's options are fixed once it is built."""
    counter = Counter(store, max_retries=5)
    options = counter._engine.options
    assert options.max_retries == 5
    with pytest.raises(AttributeError):
        options.max_retries = 1  # type: ignore[misc]
    assert isinstance(options, msgspec.Struct)


def test_reset_clears_progress_after_the_actor_stopped(store: EventStore) -> None:
    """reset() stops the actor first, then the progress is back to zero."""
    counter = Counter(store).initialize()
    for i in range(5):
        store.append(create_task_created_event(f"t{i}", "p", "T", "", "low"))
    assert counter.get_seen() == 5
    counter.reset()
    assert counter._engine.actor is None
    status = counter.get_status()
    assert (status.status, status.position, status.events_handled) == (
        "stopped",
        0,
        0,
    )
    counter.initialize()
    counter.wait_for(store.head_position, timeout=30)
    assert counter.get_seen() == 5
