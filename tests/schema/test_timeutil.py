"""Instants and ids: check_utc, microsecond storage, UUIDv7."""

from __future__ import annotations

import itertools
import threading
import time
import types
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmlog.schema import timeutil
from swarmlog.schema.errors import InvalidEventError
from swarmlog.schema.timeutil import (
    EPOCH,
    check_utc,
    from_micros,
    to_micros,
    utc_now,
    uuid7,
)

utc_datetimes = st.datetimes(timezones=st.just(UTC))
MIN_MICROS = to_micros(datetime.min.replace(tzinfo=UTC))
MAX_MICROS = to_micros(datetime.max.replace(tzinfo=UTC))


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


# -- uuid7 -------------------------------------------------------------------


def test_uuid7_layout() -> None:
    """A uuid7 has version 7, the RFC variant and the current millisecond."""
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert isinstance(value, uuid.UUID)
    assert value.version == 7
    assert (value.int >> 76) & 0xF == 7
    assert value.variant == uuid.RFC_4122
    assert (value.int >> 62) & 0b11 == 0b10
    # The counter may borrow a few milliseconds ahead under heavy use.
    assert before - 1 <= _ms(value) <= after + 50


def test_uuid7_strictly_increasing_in_tight_loop() -> None:
    """10k ids made back to back are strictly increasing (as ints and bytes)."""
    ids = [uuid7() for _ in range(10_000)]
    assert all(a.int < b.int for a, b in itertools.pairwise(ids))
    assert all(a.bytes < b.bytes for a, b in itertools.pairwise(ids))
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)


def test_uuid7_unique_and_ordered_across_threads() -> None:
    """Ids made on several threads are unique and ordered within each thread."""
    results: list[list[uuid.UUID]] = [[] for _ in range(4)]
    barrier = threading.Barrier(len(results))

    def work(out: list[uuid.UUID]) -> None:
        barrier.wait(timeout=5)
        out.extend(uuid7() for _ in range(2_000))

    threads = [threading.Thread(target=work, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    everything = [i for r in results for i in r]
    assert len(everything) == 8_000
    assert len(set(everything)) == 8_000
    for r in results:
        assert all(a < b for a, b in itertools.pairwise(r))


def test_uuid7_counter_overflow_stays_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    """More ids than the 12-bit counter holds in one frozen millisecond still
    increase, borrowing the next millisecond."""
    frozen = time.time_ns()
    monkeypatch.setattr(timeutil, "time", types.SimpleNamespace(time_ns=lambda: frozen))
    ids = [uuid7() for _ in range(6_000)]
    assert all(a.int < b.int for a, b in itertools.pairwise(ids))
    assert _ms(ids[-1]) > _ms(ids[0])
    assert _ms(ids[-1]) - _ms(ids[0]) <= 3


def test_uuid7_clock_going_backwards_stays_ordered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wall clock that steps back does not make ids go back."""
    now = time.time_ns()
    clock = iter([now, now - 5_000_000_000, now - 10_000_000_000, now + 1_000_000])
    monkeypatch.setattr(
        timeutil, "time", types.SimpleNamespace(time_ns=lambda: next(clock))
    )
    ids = [uuid7() for _ in range(4)]
    assert all(a.int < b.int for a, b in itertools.pairwise(ids))


# -- micros ------------------------------------------------------------------


def test_to_micros_known_values() -> None:
    """The epoch is 0 and a known instant gives its known count."""
    assert to_micros(EPOCH) == 0
    assert to_micros(datetime(2024, 1, 1, tzinfo=UTC)) == 1_704_067_200_000_000
    assert to_micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_to_micros_counts_the_instant_not_the_wall_time() -> None:
    """An aware non-UTC datetime converts to the micros of its instant."""
    plus_two = datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert to_micros(plus_two) == to_micros(datetime(2024, 1, 1, tzinfo=UTC))


@given(utc_datetimes)
def test_micros_round_trip_datetimes(value: datetime) -> None:
    """from_micros(to_micros(dt)) gives back an equal UTC datetime."""
    back = from_micros(to_micros(value))
    assert back == value
    assert back.utcoffset() == timedelta(0)
    assert back.replace(tzinfo=None) == value.replace(tzinfo=None)


@given(st.integers(MIN_MICROS, MAX_MICROS))
def test_micros_round_trip_integers(micros: int) -> None:
    """to_micros(from_micros(n)) gives back n over the whole datetime range."""
    assert to_micros(from_micros(micros)) == micros


@given(utc_datetimes, utc_datetimes)
def test_to_micros_preserves_order(a: datetime, b: datetime) -> None:
    """Comparing micros is comparing instants."""
    assert (to_micros(a) < to_micros(b)) == (a < b)


def test_utc_now_is_aware_utc() -> None:
    """utc_now is timezone-aware UTC and close to the wall clock."""
    now = utc_now()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


# -- check_utc ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(0))),
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ],
)
def test_check_utc_accepts_utc(value: datetime) -> None:
    """A zero-offset aware datetime is returned unchanged."""
    assert check_utc(value, "when") is value


def test_check_utc_rejects_naive() -> None:
    """A naive datetime is an InvalidEventError naming the field."""
    with pytest.raises(InvalidEventError, match=r"when.*naive"):
        check_utc(datetime(2024, 1, 1), "when")


@pytest.mark.parametrize("hours", [-5, 1, 14])
def test_check_utc_rejects_non_utc_offsets(hours: int) -> None:
    """A non-zero UTC offset is an InvalidEventError naming the field."""
    value = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=hours)))
    with pytest.raises(InvalidEventError, match="when"):
        check_utc(value, "when")


@pytest.mark.parametrize(
    "value",
    [None, "2024-01-01T00:00:00Z", 1_704_067_200, 1.5, date(2024, 1, 1)],
    ids=repr,
)
def test_check_utc_rejects_non_datetimes(value: object) -> None:
    """Strings, numbers, dates and None are InvalidEventErrors."""
    with pytest.raises(InvalidEventError, match="when must be a datetime"):
        check_utc(value, "when")
