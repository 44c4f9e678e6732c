"""Fuzzing: random bytes through decode, random structures through append
and the read filters; only typed ``SwarmlogError`` subclasses may come out.

The stored rows are taken from a real store and damaged (random bytes, bit
flips, cuts, random values of random types in any column), so the test
follows whatever layout the rows have. Random text excludes lone surrogates:
those are covered by their own tests in ``test_hostile_input.py``.
``SWARMLOG_FUZZ_EXAMPLES`` (default 200) sets the examples per property.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlog import (
    Event,
    EventDecodeError,
    EventStore,
    SwarmlogError,
    create_agent_failed_event,
    create_event,
    create_memory_stored_event,
    create_swarm_initialized_event,
    create_task_completed_event,
    create_task_created_event,
)
from swarmlog.schema import events as builtin_events
from swarmlog.schema.codec import EVENT_COLUMNS, decode_row
from swarmlog.schema.registry import registered_types

from .crash_child import CrashTick

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

FUZZ = settings(
    max_examples=int(os.environ.get("SWARMLOG_FUZZ_EXAMPLES", "200")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_instants = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(
        st.none(),
        st.just(UTC),
        st.builds(
            timezone,
            st.timedeltas(
                min_value=timedelta(hours=-23), max_value=timedelta(hours=23)
            ),
        ),
    ),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=12),
    _instants,
    st.uuids(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4
        ),
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def stored_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[tuple[Any, ...]]]:
    """Raw rows (EVENT_COLUMNS) of a store holding varied events."""
    path = str(tmp_path_factory.mktemp("fuzz") / "rows.db")
    with EventStore(path) as store:
        store.append_many(
            [
                create_task_created_event("t1", "build", "T", "d", "high", ("t0",)),
                create_task_completed_event("t1", {"ok": [1, 2.5, None]}, duration=5),
                create_agent_failed_event("a1", ValueError("boom")),
                create_memory_stored_event(
                    "m1", "ns", "k", "value", 5, metadata={"x": 1}
                ),
                create_swarm_initialized_event("mesh", 4, {"deep": {"a": [1]}}),
                create_event(CrashTick(n=3, writer="w", blob="b" * 40), "c1"),
            ]
        )
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY position")
        yield [tuple(row) for row in rows]
    finally:
        conn.close()


def _decode_typed(row: tuple[Any, ...]) -> Event | None:
    """decode_row must return an Event or raise EventDecodeError."""
    try:
        return decode_row(row)
    except EventDecodeError:
        return None
    except Exception as error:
        pytest.fail(f"decode_row raised untyped {type(error).__name__}: {error}")


def test_stored_rows_decode(stored_rows: list[tuple[Any, ...]]) -> None:
    """The undamaged rows decode (the fuzzing starts from valid data)."""
    assert [decode_row(row).position for row in stored_rows] == [1, 2, 3, 4, 5, 6]


def _bytes_columns(row: tuple[Any, ...]) -> list[int]:
    return [i for i, value in enumerate(row) if isinstance(value, bytes)]


@FUZZ
@given(data=st.data())
def test_random_bytes_in_a_blob_column(
    stored_rows: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    """Random bytes, bit flips or cuts in an encoded column: EventDecodeError
    (naming the row's position) or a decoded Event, nothing else."""
    row = list(data.draw(st.sampled_from(stored_rows)))
    column = data.draw(st.sampled_from(_bytes_columns(tuple(row))))
    original: bytes = row[column]
    how = data.draw(st.sampled_from(["random", "flip", "cut", "splice"]))
    if how == "random":
        row[column] = data.draw(st.binary(max_size=300))
    elif how == "flip":
        damaged = bytearray(original)
        for index, value in data.draw(
            st.lists(
                st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)),
                min_size=1,
                max_size=6,
            )
        ):
            damaged[index] = value
        row[column] = bytes(damaged)
    elif how == "cut":
        row[column] = original[: data.draw(st.integers(0, len(original)))]
    else:
        at = data.draw(st.integers(0, len(original)))
        row[column] = original[:at] + data.draw(st.binary(max_size=20)) + original[at:]
    try:
        decode_row(tuple(row))
    except EventDecodeError as error:
        named = error.position
    except Exception as error:  # the finding: an untyped error
        pytest.fail(f"decode_row raised untyped {type(error).__name__}: {error}")
    else:
        named = row[0]
    assert named == row[0]


@FUZZ
@given(data=st.data())
def test_random_values_in_any_column(
    stored_rows: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    """Any column replaced by a value of any SQLite type: typed errors only."""
    row = list(data.draw(st.sampled_from(stored_rows)))
    column = data.draw(st.integers(1, len(row) - 1))  # the position stays an int
    row[column] = data.draw(
        st.one_of(
            st.none(),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(),
            st.text(max_size=30),
            st.binary(max_size=60),
            st.sampled_from(sorted(registered_types())),
        )
    )
    _decode_typed(tuple(row))


@FUZZ
@given(value=_values, data=st.data())
def test_random_structures_encoded_in_a_blob_column(
    stored_rows: list[tuple[Any, ...]], value: Any, data: st.DataObject
) -> None:
    """Valid msgpack of any shape where an event belongs: typed errors only."""
    row = list(data.draw(st.sampled_from(stored_rows)))
    column = data.draw(st.sampled_from(_bytes_columns(tuple(row))))
    try:
        row[column] = msgspec.msgpack.encode(value)
    except (TypeError, OverflowError):
        return  # not encodable: nothing to decode
    _decode_typed(tuple(row))


_PAYLOAD_CLASSES = sorted(
    (
        info.cls
        for info in registered_types().values()
        if info.cls.__module__ == builtin_events.__name__
    ),
    key=lambda cls: cls.__name__,
)
_PAYLOAD_CLASSES.append(CrashTick)


def _field_value(field: msgspec.structs.FieldInfo) -> st.SearchStrategy[Any]:
    """Mostly a plausible value for the field, sometimes anything at all."""
    plausible: st.SearchStrategy[Any]
    if field.type is str:
        plausible = st.text(max_size=12)
    elif field.type is int:
        plausible = st.integers(min_value=-1000, max_value=1000)
    else:
        plausible = st.one_of(st.none(), st.text(max_size=8), _instants)
    return st.one_of(plausible, plausible, _values)


@st.composite
def _payloads(draw: st.DrawFn) -> msgspec.Struct:
    cls = draw(st.sampled_from(_PAYLOAD_CLASSES))
    kwargs = {}
    for field in msgspec.structs.fields(cls):
        if field.required or draw(st.booleans()):
            kwargs[field.encode_name] = draw(_field_value(field))
    return cls(**kwargs)  # Struct.__init__ does not check types


@st.composite
def _events(draw: st.DrawFn) -> Any:
    """Events from the factory with random parts, or raw Events of anything."""
    payload = draw(_payloads())
    if draw(st.booleans()):
        return create_event(
            payload,
            draw(st.one_of(st.text(max_size=10), _values)),
            metadata=draw(
                st.one_of(
                    st.none(),
                    st.dictionaries(st.text(max_size=5), _values, max_size=3),
                    _values,
                )
            ),
            causation_id=draw(st.one_of(st.none(), st.text(max_size=5), _values)),
            source=draw(st.one_of(st.just("swarm"), st.text(max_size=5), _values)),
            timestamp=draw(st.one_of(st.none(), _instants)),
        )
    return Event(
        id=draw(st.one_of(st.uuids(), _values)),
        type=draw(
            st.one_of(
                st.sampled_from(sorted(registered_types())),
                st.text(max_size=8),
                _values,
            )
        ),
        aggregate_id=draw(st.one_of(st.text(min_size=1, max_size=8), _values)),
        aggregate_type=draw(
            st.one_of(st.sampled_from(["task", "agent", "memory", "swarm"]), _values)
        ),
        payload=draw(st.one_of(st.just(payload), _values)),
        timestamp=draw(_instants),
        version=draw(st.integers(min_value=-5, max_value=5)),
        position=draw(st.integers(min_value=-5, max_value=5)),
        source=draw(st.one_of(st.just("swarm"), _values)),
        metadata=draw(st.one_of(st.just({}), _values)),
        schema_version=draw(st.one_of(st.just(1), _values)),
    )


def test_random_structures_through_create_event_and_append(tmp_path: Path) -> None:
    """Whatever is built and appended: a stored Event that reads back the same,
    or a typed error and nothing stored; the writer never stops."""
    with EventStore(str(tmp_path / "fuzz.db")) as store:
        stored_count = [0]

        @FUZZ
        @given(builder=st.data())
        def run(builder: st.DataObject) -> None:
            try:
                event = builder.draw(_events())
            except SwarmlogError:
                return  # create_event refused it: typed, fine
            except Exception as error:
                pytest.fail(
                    f"create_event raised untyped {type(error).__name__}: {error}"
                )
            head = store.head_position
            try:
                stored = store.append(event)
            except SwarmlogError:
                assert store.head_position == head  # nothing stored
                return
            except Exception as error:
                pytest.fail(f"append raised untyped {type(error).__name__}: {error}")
            stored_count[0] += 1
            assert stored.position == head + 1
            (read_back,) = store.query(from_position=stored.position, limit=1)
            assert msgspec.msgpack.encode(read_back) == msgspec.msgpack.encode(stored)

        run()
        probe = create_task_created_event("probe", "b", "T", "", "h")
        assert store.append(probe).position == stored_count[0] + 1
        assert store.get_stats().total_events == stored_count[0] + 1


_filter_values = st.one_of(
    _values,
    st.lists(st.text(max_size=6), max_size=3),
    st.integers(min_value=-3, max_value=3),
)


def test_random_filters(tmp_path: Path) -> None:
    """Random values in every read filter: a list of events or an
    InvalidQueryError, nothing else."""
    with EventStore(str(tmp_path / "filters.db")) as store:
        store.append(create_task_created_event("t1", "b", "T", "", "h"))

        @FUZZ
        @given(
            name=st.sampled_from(
                [
                    "aggregate_ids",
                    "aggregate_types",
                    "event_types",
                    "after_timestamp",
                    "before_timestamp",
                    "from_version",
                    "from_position",
                    "limit",
                    "offset",
                ]
            ),
            value=_filter_values,
            aggregate=_values,
        )
        def run(name: str, value: Any, aggregate: Any) -> None:
            for call in (
                lambda: store.query(**{name: value}),
                lambda: store.get_events(aggregate),
                lambda: store.get_events("t1", from_version=value),
                lambda: store.get_events_by_type(aggregate),
                # None is left out here: test_replay_with_none_is_a_typed_error
                lambda: list(store.replay(from_position=0 if value is None else value)),
                lambda: store.get_snapshot(aggregate),
            ):
                try:
                    result = call()
                except SwarmlogError:
                    continue
                except Exception as error:
                    pytest.fail(
                        f"{name}={value!r}: untyped {type(error).__name__}: {error}"
                    )
                assert result is None or isinstance(result, list)

        run()
        assert store.head_position == 1


@pytest.mark.parametrize("argument", ["from_position", "page_size"])
def test_replay_with_none_is_a_typed_error(tmp_path: Path, argument: str) -> None:
    """replay(from_position=None) / replay(page_size=None) is an
    InvalidQueryError like every other wrongly typed filter."""
    with EventStore(str(tmp_path / "none.db")) as store:
        try:
            store.replay(**{argument: None})
        except SwarmlogError:
            pass
        except Exception as error:
            pytest.fail(f"untyped {type(error).__name__}: {error}")


def test_uuid_ids_round_trip_exactly(tmp_path: Path) -> None:
    """Caller-chosen UUIDs of every version are stored and read back as given."""
    with EventStore(str(tmp_path / "ids.db")) as store:
        ids = [uuid.uuid1(), uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
        for i, event_id in enumerate(ids):
            store.append(
                create_event(CrashTick(n=i, writer="ids"), "ids", event_id=event_id)
            )
        assert [e.id for e in store.replay()] == ids
