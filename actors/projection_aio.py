"""Awaitable projection queries: ``await projection.aio.get_agent("a1")``.

A query body runs on the projection's own thread, as for the blocking
form. The coroutine only ``tell``s the projection's actor a
:class:`RunQuery` (or :class:`WaitFor`) carrying a
``concurrent.futures.Future`` and awaits a loop future that the actor's
answer settles through ``call_soon_threadsafe``: a strong query that has to
wait for the projection to catch up parks a message, never a thread, and
the event loop keeps running meanwhile.

Deliberately not ``asyncio.wrap_future``: when the await is cancelled it
cancels the concurrent future, and the actor's later ``set_result`` on it
would raise on the projection's thread. Here cancelling the await only
marks the query abandoned (its body is skipped when its turn comes), and
an answer that arrives after the loop is closed is dropped quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pykka

from swarmlog.actors.projection_messages import RunQuery, WaitFor
from swarmlog.actors.runtime import in_engine_thread
from swarmlog.schema.errors import (
    EngineThreadWaitError,
    InvalidConfigError,
    ProjectionStateError,
    ProjectionTimeoutError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from swarmlog.actors.runtime import CommitHead

__all__ = ["AsyncQueries", "QueryEngine", "async_queries_for"]

T = TypeVar("T")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class QueryEngine(Protocol):
    """What the awaitable forms need of a projection's ``_Engine``."""

    @property
    def projection(self) -> _Named: ...

    @property
    def frozen(self) -> bool: ...

    @property
    def consistency(self) -> str: ...

    @property
    def head(self) -> CommitHead | None: ...

    @property
    def position(self) -> int: ...

    @property
    def failure(self) -> BaseException | None: ...

    @property
    def query_timeout(self) -> float: ...

    def check_usable(self) -> pykka.ActorRef[Any]: ...


_ENGINE_MESSAGE = (
    "an awaitable projection query was made on an engine thread (a handler "
    "or a listener callback); call the query's blocking form there"
)


def _bridge(source: Future[T], loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
    """A loop future settled (on the loop thread) when ``source`` is.

    The done-callback runs on the projection's thread; it never raises:
    a closed loop means nobody awaits the answer any more.
    """
    target: asyncio.Future[T] = loop.create_future()

    def settle() -> None:  # the loop's thread
        if target.done():
            return
        if source.cancelled():
            target.cancel()
            return
        error = source.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(source.result())

    def on_done(_: Future[T]) -> None:  # the thread that settled ``source``
        with contextlib.suppress(RuntimeError):  # a closed loop: no reader left
            loop.call_soon_threadsafe(settle)

    source.add_done_callback(on_done)
    return target


async def _await_answer(
    engine: QueryEngine,
    message: Any,
    future: Future[T],
    timeout: float | None,
    target: int,
    abandon: Callable[[], None],
) -> T:
    actor = engine.check_usable()
    answer = _bridge(future, asyncio.get_running_loop())
    try:
        actor.tell(message)
    except pykka.ActorDeadError as e:
        msg = f"projection {engine.projection.name!r} is stopped"
        raise ProjectionStateError(msg) from e
    try:
        async with asyncio.timeout(timeout):
            return await answer
    except TimeoutError as e:
        abandon()
        if answer.done() and not answer.cancelled():  # settled at the deadline
            return answer.result()
        raise ProjectionTimeoutError(
            engine.projection.name, target, engine.position
        ) from e
    except asyncio.CancelledError:
        abandon()
        raise


class _Abandonable:
    """A query body that is skipped once its awaiter has gone."""

    __slots__ = ("abandoned", "method")

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method
        self.abandoned = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.abandoned:
            return None
        return self.method(*args, **kwargs)

    def abandon(self) -> None:
        self.abandoned = True


async def run_query_async(
    engine: QueryEngine,
    method: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """Run a query body on the projection's thread; await its result.

    Runs on the event loop's thread; never blocks it.

    Raises:
        ProjectionTimeoutError: The projection did not reach the position
            within its ``query_timeout``.
        ProjectionFailedError: The projection failed.
        ProjectionStateError: The projection is not running.
        EngineThreadWaitError: Called on an engine thread.
    """
    if engine.frozen:
        return method(*args, **kwargs)
    if in_engine_thread():
        raise EngineThreadWaitError(_ENGINE_MESSAGE)
    target = 0
    if engine.consistency == "strong" and engine.head is not None:
        target = engine.head.committed()  # any process's (a shared store)
    body = _Abandonable(method)
    future: Future[T] = Future()
    message = RunQuery(body, args, kwargs, target, future)
    return await _await_answer(
        engine, message, future, engine.query_timeout, target, body.abandon
    )


async def wait_for_async(
    engine: QueryEngine, position: int, timeout: float | None
) -> None:
    """Await until the projection has applied ``position`` (loop thread)."""
    if engine.frozen or engine.position >= position:
        if engine.failure is not None:
            raise engine.failure
        return
    if in_engine_thread():
        raise EngineThreadWaitError(_ENGINE_MESSAGE)
    future: Future[None] = Future()
    await _await_answer(
        engine, WaitFor(position, future), future, timeout, position, _nothing
    )


def _nothing() -> None:
    return None


class AsyncQueries:
    """The awaitable forms of a projection's queries (``projection.aio``).

    Every ``@query`` method of the projection (built-in or defined by a
    subclass) is here as a coroutine function with the same parameters and
    docstring: ``await projection.aio.get_agent("a1")``. Awaiting one never
    blocks the event loop: a query that must wait for the projection to
    catch up parks on the projection's thread and the loop is woken when it
    is answered. Cancelling the await abandons the query and leaves the
    projection untouched. Errors are those of the blocking form.

    Use it on a thread that runs an event loop; handlers and listeners call
    the blocking forms.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: QueryEngine) -> None:
        self._engine = engine

    async def wait_for(self, position: int, timeout: float | None = 30.0) -> None:
        """Await until the projection has applied ``position``.

        Raises:
            ProjectionTimeoutError: Not reached within ``timeout`` seconds.
            ProjectionFailedError: The projection failed.
            InvalidConfigError: ``position`` is not an int.
        """
        _check_position(position)
        await wait_for_async(self._engine, position, timeout)

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        """An unknown name: not a query of this projection."""
        kind = type(self).__name__
        msg = f"{kind} has no query {name!r} (only @query methods have aio forms)"
        raise AttributeError(msg)


def _check_position(position: object) -> None:
    if not isinstance(position, int) or isinstance(position, bool):
        msg = f"position must be an int, got {position!r}"
        raise InvalidConfigError(msg)


def _async_form(
    name: str, query: Callable[..., Any]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    body = getattr(query, "__wrapped__", query)

    @functools.wraps(body)
    async def call(self: AsyncQueries, *args: Any, **kwargs: Any) -> Any:
        engine = self._engine
        owner: Any = engine.projection
        return await run_query_async(engine, body, (owner, *args), kwargs)

    call.__name__ = call.__qualname__ = name
    del call.__wrapped__  # an awaitable, unlike body
    call.__signature__ = inspect.signature(body)  # type: ignore[attr-defined]
    return call


_classes: weakref.WeakKeyDictionary[type, type[AsyncQueries]] = (
    weakref.WeakKeyDictionary()
)  # a projection class made at run time (benchmarks do) may go away


def async_queries_for(projection_class: type) -> type[AsyncQueries]:
    """The :class:`AsyncQueries` subclass for a projection class (built
    once per class, from its ``@query`` methods; any thread)."""
    found = _classes.get(projection_class)
    if found is not None:
        return found
    forms: dict[str, Any] = {"__slots__": ()}
    for name in dir(projection_class):
        value = getattr(projection_class, name, None)
        if callable(value) and getattr(value, "__swarmlog_query__", False):
            forms[name] = _async_form(name, value)
    made = type(f"{projection_class.__name__}Aio", (AsyncQueries,), forms)
    made.__doc__ = f"Awaitable queries of :class:`{projection_class.__name__}`."
    return _classes.setdefault(projection_class, made)
