"""AppendFuture: the result of an append that need not be waited for now."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from swarmlog.actors.append_request import AppendRequest

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from swarmlog.actors.reply import Reply

__all__ = ["AppendFuture"]

T = TypeVar("T")


class AppendFuture(AppendRequest, Generic[T]):
    """A pending append, usable from threads and from asyncio.

    ``get()`` blocks the calling thread; ``await future`` suspends a
    coroutine without blocking the event loop (the committing thread hands
    the outcome to the loop with ``call_soon_threadsafe``; pykka's own
    future, whose ``__await__`` calls a blocking ``get()``, is never handed
    out). Made by ``append_async``/``append_many_async``; it is also the
    request the writer commits (one object per append).

    Cancelling an awaiting task (or ``asyncio.wait_for`` timing out) stops
    the wait, not the append: the event may still be stored. Retrying the
    same event is idempotent.
    """

    __slots__ = ()

    def get(self, timeout: float | None = None) -> T:
        """Wait for the result.

        Raises:
            TimeoutError: Not done within ``timeout`` seconds.
            SwarmlogError: The append failed (e.g. ``ConcurrencyError``).
        """
        return self.result(timeout)  # type: ignore[no-any-return]

    def add_done_callback(self, callback: Callable[[AppendFuture[T]], object]) -> None:
        """Call ``callback(self)`` when settled (on the writer thread, after
        it let go of its turn, or at once on this thread if already
        settled): keep it short. Whatever it raises is logged and counted
        (``get_stats().callback_errors``), never passed on."""
        super().add_done_callback(callback)  # type: ignore[arg-type]

    def __await__(self) -> Generator[Any, None, T]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def transfer(reply: Reply[Any]) -> None:
            if waiter.done():  # the awaiting task was cancelled
                return
            error = reply.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(reply.result())

        def settled(reply: Reply[Any]) -> None:
            try:
                loop.call_soon_threadsafe(transfer, reply)
            except RuntimeError:  # the loop closed (the awaiter gave up):
                return  # nobody is left to tell; the append stands

        super().add_done_callback(settled)
        return waiter.__await__()
