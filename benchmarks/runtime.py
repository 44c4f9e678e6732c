"""Bare msgspec, thread and pykka anchors.

The codec anchor times one ``msgspec.msgpack.Encoder`` and one typed
``Decoder`` of the 25-type payload union; the thread anchors time a request
and its reply between two threads, bare and through pykka. All run on the
calling thread and stop every thread or actor they start before returning.
"""

from __future__ import annotations

import gc
import queue
import threading
from statistics import median
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import pykka

from benchmarks.figures import (
    CodecFigures,
    LatencyFigures,
    RateFigures,
    latency_figures,
    rate,
)
from benchmarks.workload import make_payloads, payload_decoder

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "msgspec_codec",
    "pykka_ask",
    "pykka_tell",
    "thread_round_trip",
]


def msgspec_codec(
    n: int = 100_000, *, repeats: int = 3, page: int = 1000
) -> CodecFigures:
    """Typed msgpack encode and decode of ``n`` ~200-byte tagged payloads.

    One Encoder and one ``Decoder(Union[...])`` are reused; payload objects
    are built before timing. Decoding goes ``page`` payloads at a time with
    only the current page's objects alive, as a catch-up consumer holds
    them (decoding all ``n`` into one list measures the garbage collector
    walking them as well: about half the rate at 200k). Each direction is
    timed ``repeats`` times over all ``n`` objects; the median pass counts.

    Returns:
        Encodes/s and decodes/s, mean encoded size; ``n`` = objects a pass.
    """
    payloads = make_payloads(n)
    encode = msgspec.msgpack.Encoder().encode
    decode = payload_decoder().decode
    encode_ns: list[int] = []
    decode_ns: list[int] = []
    blobs: list[bytes] = []
    for _ in range(repeats):
        blobs = []
        gc.collect()
        t0 = perf_counter_ns()
        blobs = [encode(p) for p in payloads]
        encode_ns.append(perf_counter_ns() - t0)
        gc.collect()
        t0 = perf_counter_ns()
        for lo in range(0, n, page):
            decoded = [decode(b) for b in blobs[lo : lo + page]]
        decode_ns.append(perf_counter_ns() - t0)
        if decoded[-1] != payloads[-1]:
            msg = "msgspec round trip changed a payload"
            raise AssertionError(msg)
    return CodecFigures(
        encode_per_s=rate(n, round(median(encode_ns))),
        decode_per_s=rate(n, round(median(decode_ns))),
        mean_bytes=sum(map(len, blobs)) / len(blobs),
        n=n,
    )


def _time_calls(call: Callable[[int], object], n: int, warmup: int) -> LatencyFigures:
    for i in range(warmup):
        call(i)
    samples: list[int] = []
    for i in range(n):
        t0 = perf_counter_ns()
        call(i)
        samples.append(perf_counter_ns() - t0)
    return latency_figures(samples)


def thread_round_trip(
    n: int = 10_000,
    *,
    warmup: int = 500,
    kind: Literal["queue", "simple"] = "queue",
) -> LatencyFigures:
    """A request to another thread and its reply, each through a queue.

    The server thread echoes what it gets; the calling thread puts a request
    and blocks on the reply queue. ``kind`` picks ``queue.Queue`` (what
    pykka's inbox and futures use) or the lighter ``queue.SimpleQueue``.

    Returns:
        Round-trip latency (µs).
    """
    requests: queue.Queue[int | None] | queue.SimpleQueue[int | None]
    replies: queue.Queue[int | None] | queue.SimpleQueue[int | None]
    if kind == "queue":
        requests, replies = queue.Queue(), queue.Queue()
    else:
        requests, replies = queue.SimpleQueue(), queue.SimpleQueue()

    def serve() -> None:
        while (request := requests.get()) is not None:
            replies.put(request)

    server = threading.Thread(target=serve, name="round-trip-server")
    server.start()

    def call(i: int) -> object:
        requests.put(i)
        return replies.get()

    try:
        return _time_calls(call, n, warmup)
    finally:
        requests.put(None)
        server.join()


class _Echo(pykka.ThreadingActor):
    """Replies to every message with the message itself (actor thread)."""

    def on_receive(self, message: Any) -> Any:
        return message


class _Mark:
    """A message that makes :class:`_Sink` set ``event``."""

    __slots__ = ("event",)

    def __init__(self, event: threading.Event) -> None:
        self.event = event


class _Sink(pykka.ThreadingActor):
    """Drops every message but :class:`_Mark` (actor thread)."""

    def on_receive(self, message: Any) -> None:
        if type(message) is _Mark:
            message.event.set()


def pykka_ask(n: int = 10_000, *, warmup: int = 500) -> LatencyFigures:
    """pykka ``ActorRef.ask`` round trip to a ThreadingActor that echoes.

    Returns:
        Round-trip latency (µs).
    """
    ref = _Echo.start()
    try:
        return _time_calls(ref.ask, n, warmup)
    finally:
        ref.stop()


def pykka_tell(n: int = 100_000, *, warmup: int = 5000) -> RateFigures:
    """One sender ``tell``s ``n`` small messages to one ThreadingActor.

    Timed from the first ``tell`` until the actor has handled the last one
    (a marker message behind them sets an event).

    Returns:
        Messages/s (in the ``events_per_s`` field); ``n`` = messages.
    """
    ref = _Sink.start()
    try:
        tell = ref.tell
        warmed = threading.Event()
        for i in range(warmup):
            tell(i)
        tell(_Mark(warmed))
        warmed.wait()
        done = threading.Event()
        mark = _Mark(done)
        t0 = perf_counter_ns()
        for i in range(n):
            tell(i)
        tell(mark)
        done.wait()
        elapsed = perf_counter_ns() - t0
        return RateFigures(rate(n, elapsed), n, elapsed / 1e9)
    finally:
        ref.stop()
