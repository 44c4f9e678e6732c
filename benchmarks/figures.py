"""Result records of the benchmarks and the arithmetic behind them.

Every benchmark returns one of the frozen records below, so that a report can
put anchor and library figures side by side. Latencies are in microseconds,
rates in events (or messages) per second, all measured with
:func:`time.perf_counter_ns`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CodecFigures",
    "Figures",
    "LatencyFigures",
    "RateFigures",
    "TxnFigures",
    "WaitFigures",
    "latency_figures",
    "percentile_us",
    "rate",
    "txn_figures",
]

_NS_PER_S = 1_000_000_000


class _Figures:
    """Mixin: a plain ``dict`` view for reports and JSON dumps."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as a ``dict`` (field name -> value)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True, slots=True)
class TxnFigures(_Figures):
    """Closed-loop writes: throughput and per-operation latency.

    Attributes:
        events_per_s: Events written per second of wall time.
        p50_us: Median latency of one operation (one commit), in µs.
        p99_us: 99th percentile latency of one operation, in µs.
        n: Operations timed.
    """

    events_per_s: float
    p50_us: float
    p99_us: float
    n: int


@dataclass(frozen=True, slots=True)
class RateFigures(_Figures):
    """Throughput only.

    Attributes:
        events_per_s: Events (or messages) handled per second of wall time.
        n: Events (or messages) timed.
        seconds: Wall time of the timed part.
    """

    events_per_s: float
    n: int
    seconds: float


@dataclass(frozen=True, slots=True)
class LatencyFigures(_Figures):
    """Latency of one repeated operation.

    Attributes:
        p50_us: Median, in µs.
        p99_us: 99th percentile, in µs.
        mean_us: Mean, in µs.
        n: Operations timed.
    """

    p50_us: float
    p99_us: float
    mean_us: float
    n: int


@dataclass(frozen=True, slots=True)
class CodecFigures(_Figures):
    """Encode and decode throughput of one codec.

    Attributes:
        encode_per_s: Objects encoded per second.
        decode_per_s: Objects decoded per second.
        mean_bytes: Mean encoded size, in bytes.
        n: Objects per direction.
    """

    encode_per_s: float
    decode_per_s: float
    mean_bytes: float
    n: int


@dataclass(frozen=True, slots=True)
class WaitFigures(_Figures):
    """The waits of several appending processes (MP3).

    Attributes:
        lock_wait_max_us: The longest wait for the store-wide write lock
            of any process (the engine's ``get_stats().lock_wait_max``),
            in µs.
        lock_waits: Writes that had to wait for it, all processes.
        latency_p99_us: 99th percentile of the append latency (lock wait
            plus commit) over every process's appends, in µs.
        worst_process_latency_p99_us: The highest of the processes' own
            append-latency p99s, in µs.
        n: Appends timed, all processes together.
    """

    lock_wait_max_us: float
    lock_waits: int
    latency_p99_us: float
    worst_process_latency_p99_us: float
    n: int


def percentile_us(sorted_ns: Sequence[int], q: float) -> float:
    """The ``q`` quantile (0..1, nearest rank) of sorted ns samples, in µs."""
    if not sorted_ns:
        return float("nan")
    index = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000


def latency_figures(samples_ns: Sequence[int]) -> LatencyFigures:
    """Summarise latency samples (ns, any order)."""
    ordered = sorted(samples_ns)
    mean_us = sum(ordered) / len(ordered) / 1000 if ordered else float("nan")
    return LatencyFigures(
        p50_us=percentile_us(ordered, 0.50),
        p99_us=percentile_us(ordered, 0.99),
        mean_us=mean_us,
        n=len(ordered),
    )


def rate(count: int, elapsed_ns: int) -> float:
    """``count`` per second over ``elapsed_ns`` nanoseconds."""
    return count * _NS_PER_S / elapsed_ns if elapsed_ns > 0 else float("inf")


def txn_figures(count: int, elapsed_ns: int, samples_ns: Sequence[int]) -> TxnFigures:
    """Throughput of ``count`` events in ``elapsed_ns`` plus latency samples."""
    ordered = sorted(samples_ns)
    return TxnFigures(
        events_per_s=rate(count, elapsed_ns),
        p50_us=percentile_us(ordered, 0.50),
        p99_us=percentile_us(ordered, 0.99),
        n=len(ordered),
    )


Figures = TxnFigures | RateFigures | LatencyFigures | CodecFigures | WaitFigures
"""Any benchmark result."""
