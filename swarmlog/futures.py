"""AppendFuture: the result of an append that need not be waited for now."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from concurrent.futures import Future

__all__ = ["AppendFuture"]

T = TypeVar("T")


class AppendFuture(Generic[T]):
    """A pending append, usable from threads and from asyncio.

    ``get()`` blocks the calling thread; ``await future`` suspends a
    coroutine without blocking the event loop (it wraps a
    ``concurrent.futures.Future``, unlike pykka's own future, whose
    ``__await__`` would block the loop).
    """

    __slots__ = ("_future",)

    def __init__(self, future: Future[T]) -> None:
        self._future = future

    def get(self, timeout: float | None = None) -> T:
        """Wait for the result.

        Raises:
            TimeoutError: Not done within ``timeout`` seconds.
            SwarmlogError: The append failed (e.g. ``ConcurrencyError``).
        """
        return self._future.result(timeout)

    def done(self) -> bool:
        """Whether the append has settled."""
        return self._future.done()

    def add_done_callback(self, callback: Callable[[AppendFuture[T]], object]) -> None:
        """Call ``callback(self)`` when settled (on the writer's thread, or
        at once if already settled): keep it short."""
        self._future.add_done_callback(lambda _: callback(self))

    def __await__(self) -> Generator[object, None, T]:
        return asyncio.wrap_future(self._future).__await__()
