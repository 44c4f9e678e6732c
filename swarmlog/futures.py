"""AppendFuture: the result of an append that need not be waited for now."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from swarmlog.actors.reply import Reply

__all__ = ["AppendFuture"]

T = TypeVar("T")


class AppendFuture(Generic[T]):
    """A pending append, usable from threads and from asyncio.

    ``get()`` blocks the calling thread; ``await future`` suspends a
    coroutine without blocking the event loop (the writer's thread hands the
    outcome to the loop with ``call_soon_threadsafe``; pykka's own future,
    whose ``__await__`` calls a blocking ``get()``, is never handed out).
    """

    __slots__ = ("_reply",)

    def __init__(self, reply: Reply[T]) -> None:
        self._reply = reply

    def get(self, timeout: float | None = None) -> T:
        """Wait for the result.

        Raises:
            TimeoutError: Not done within ``timeout`` seconds.
            SwarmlogError: The append failed (e.g. ``ConcurrencyError``).
        """
        return self._reply.result(timeout)

    def done(self) -> bool:
        """Whether the append has settled."""
        return self._reply.done()

    def exception(self) -> BaseException | None:
        """The append's error, if it settled with one."""
        return self._reply.exception()

    def add_done_callback(self, callback: Callable[[AppendFuture[T]], object]) -> None:
        """Call ``callback(self)`` when settled (on the writer's thread, or
        at once if already settled): keep it short."""
        self._reply.add_done_callback(lambda _: callback(self))

    def __await__(self) -> Generator[Any, None, T]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def transfer(reply: Reply[T]) -> None:
            if waiter.done():  # the awaiting task was cancelled
                return
            error = reply.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(reply.result())

        def settled(reply: Reply[T]) -> None:
            loop.call_soon_threadsafe(transfer, reply)

        self._reply.add_done_callback(settled)
        return waiter.__await__()
