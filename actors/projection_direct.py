"""Queries made from engine threads: answered without a cycle of waits.

A handler (on its projection's thread) or a listener (on the notifier's
thread) that queries *another* projection cannot simply send it a
:class:`RunQuery` and wait: if that projection's own handler is at the same
moment querying back, each thread waits for the other until the query
timeout. Here a query from an engine thread travels two ways at once:

* as a normal :class:`RunQuery` message (the target answers it when its
  thread gets to it), and
* into the target thread's *side inbox*, which the target serves whenever
  it is itself waiting for such a query.

The two copies share one claim: the first thread to claim it runs the
query body, on the target projection's own thread (its model is never read
from anywhere else), and the other copy is a no-op. So two projections
whose handlers query each other both go on: each answers the other's query
while it waits for its own answer. Only queries that need no wait reach
this path (eventual consistency, or a strong query the target has already
caught up with); a strong query that would have to wait raises
``EngineThreadWaitError`` before.
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

import pykka

from swarmlog.actors.projection_messages import RunQuery
from swarmlog.schema.errors import ProjectionStateError, ProjectionTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TargetEngine", "query_from_engine"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class TargetEngine(Protocol):
    """What this module needs of a projection's ``_Engine``."""

    @property
    def projection(self) -> _Named: ...

    @property
    def thread(self) -> threading.Thread | None: ...

    @property
    def position(self) -> int: ...

    @property
    def query_timeout(self) -> float: ...

    def check_usable(self) -> pykka.ActorRef[Any]: ...


class _SideInbox:
    """The queries waiting for one engine thread, and its wake-up."""

    __slots__ = ("__weakref__", "lock", "requests", "wake")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[_DirectQuery, None] = {}
        self.wake = threading.Event()

    def put(self, request: _DirectQuery) -> None:
        with self.lock:
            self.requests[request] = None
        self.wake.set()

    def discard(self, request: _DirectQuery) -> None:
        """Forget an answered request (its asker, once it has the answer)."""
        with self.lock:
            self.requests.pop(request, None)

    def serve(self) -> None:
        """Answer every queued query (the inbox's own thread only)."""
        with self.lock:
            if not self.requests:
                return
            requests, self.requests = self.requests, {}
        for request in requests:
            request.run()


_inboxes: weakref.WeakKeyDictionary[threading.Thread, _SideInbox] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def _inbox_of(thread: threading.Thread) -> _SideInbox:
    with _inboxes_lock:
        inbox = _inboxes.get(thread)
        if inbox is None:
            inbox = _inboxes[thread] = _SideInbox()
        return inbox


class _DirectQuery:
    """One query; whoever claims it first runs it."""

    __slots__ = ("args", "claim", "done", "error", "kwargs", "method", "result", "to")

    def __init__(
        self,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        to: _SideInbox,
    ) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.to = to  # the asking thread's inbox: woken when answered
        self.claim = threading.Lock()
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self, *_: Any, **__: Any) -> None:
        """Run the query body if nobody has (the target's thread)."""
        if not self.claim.acquire(blocking=False):
            return
        try:
            self.result = self.method(*self.args, **self.kwargs)
        except BaseException as error:  # travels back to the asking thread
            self.error = error
        self.settle()

    def fail_from(self, carrier: Future[Any]) -> None:
        """The RunQuery copy ended in an error before running (failed or
        stopped projection): pass it on, unless the body already ran."""
        error = carrier.exception()
        if error is None or not self.claim.acquire(blocking=False):
            return
        self.error = error
        self.settle()

    def settle(self) -> None:
        self.done = True
        self.to.wake.set()


def query_from_engine(
    engine: TargetEngine,
    method: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a query of ``engine``'s projection from an engine thread.

    Runs on the asking engine thread; returns the query's result. While it
    waits it answers the queries other engine threads sent to this thread,
    so waits never form a cycle.

    Raises:
        ProjectionTimeoutError: No answer within the target's
            ``query_timeout`` (the target is stuck in a handler).
        ProjectionStateError: The target is not running.
        ProjectionFailedError: The target has failed.
    """
    actor = engine.check_usable()
    mine = _inbox_of(threading.current_thread())
    request = _DirectQuery(method, args, kwargs, mine)
    carrier: Future[Any] = Future()
    carrier.add_done_callback(request.fail_from)
    target = engine.thread
    theirs = None if target is None else _inbox_of(target)
    if theirs is not None:
        theirs.put(request)
    try:
        try:
            actor.tell(RunQuery(request.run, (), {}, 0, carrier))
        except pykka.ActorDeadError as e:
            msg = f"projection {engine.projection.name!r} is stopped"
            raise ProjectionStateError(msg) from e
        _wait(engine, request, mine)
    finally:
        if theirs is not None:
            theirs.discard(request)
    if request.error is not None:
        raise request.error
    return request.result


def _wait(engine: TargetEngine, request: _DirectQuery, mine: _SideInbox) -> None:
    """Wait for ``request``'s answer, serving this thread's side inbox."""
    deadline = time.monotonic() + engine.query_timeout
    extended = False
    while True:
        mine.wake.clear()
        mine.serve()
        if request.done:
            break
        left = deadline - time.monotonic()
        if left > 0:
            mine.wake.wait(left)
            continue
        if request.claim.acquire(blocking=False) or extended:  # give up
            raise ProjectionTimeoutError(engine.projection.name, 0, engine.position)
        # Its body is running on the target's thread right now: one more
        # timeout for it to finish, then its answer is dropped.
        deadline = time.monotonic() + engine.query_timeout
        extended = True
    mine.serve()  # a query that arrived with the answer is not left behind
