"""Messages a projection actor accepts besides ``DeliverPage``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

__all__ = [
    "CatchUpStep",
    "Finalize",
    "Rebuild",
    "RebuildStep",
    "RetryDeadLetters",
    "RunQuery",
    "WaitFor",
]


class RunQuery:
    """Run ``method(*args, **kwargs)`` once the projection reached
    ``position``; resolve ``future`` with its result."""

    __slots__ = ("args", "future", "kwargs", "method", "position")

    def __init__(
        self,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        position: int,
        future: Future[Any],
    ) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.position = position
        self.future = future


class WaitFor:
    """Resolve ``future`` once the projection reached ``position``."""

    __slots__ = ("future", "position")

    def __init__(self, position: int, future: Future[None]) -> None:
        self.position = position
        self.future = future


class CatchUpStep:
    """Read and apply the next page from the store (sent to itself)."""

    __slots__ = ()


class Rebuild:
    """Replay into a fresh model, then swap it in; resolve ``future``."""

    __slots__ = ("future", "on_progress")

    def __init__(
        self, future: Future[None], on_progress: Callable[[int, int], None] | None
    ) -> None:
        self.future = future
        self.on_progress = on_progress


class RebuildStep:
    """Apply the next page to the fresh model (sent to itself)."""

    __slots__ = ()


class RetryDeadLetters:
    """Re-apply dead letters; resolve ``future`` with the number fixed."""

    __slots__ = ("future",)

    def __init__(self, future: Future[int]) -> None:
        self.future = future


class Finalize:
    """At shutdown: reach ``position``, store a final snapshot, then resolve
    ``future``."""

    __slots__ = ("future", "position")

    def __init__(self, position: int, future: Future[None]) -> None:
        self.position = position
        self.future = future
