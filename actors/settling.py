"""Settling append requests while the committer's turn is held.

A request settles the moment its outcome is known, but its done-callbacks
(``add_done_callback``, an awaiting event loop's wake-up) are held back and
run only after the turn is let go: a callback may append. Each settled
request is also counted, so the in-flight limit releases its slots once
per batch rather than once per request.

:class:`Settlements` runs with the
:class:`~swarmlog.actors.committer.Committer`'s turn held;
:func:`run_callbacks` after it was let go (any thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.append_request import AppendRequest
    from swarmlog.actors.reply import Callbacks

__all__ = ["Settlements", "run_callbacks"]


def run_callbacks(later: list[Callbacks | None]) -> None:
    """Run done-callbacks that were held back while the turn was held (each
    callback is guarded by its reply: nothing escapes)."""
    for callbacks in later:
        if callbacks is not None:
            callbacks()


class Settlements:
    """Settles requests, holding their done-callbacks back. Turn held.

    Args:
        on_settled: Called with how many requests were settled since the
            last :meth:`release` (the in-flight limit's release).
    """

    __slots__ = ("_count", "_later", "_on_settled")

    def __init__(self, on_settled: Callable[[int], None] | None) -> None:
        self._on_settled = on_settled
        self._count = 0
        self._later: list[Callbacks | None] = []

    def settle(self, request: AppendRequest, value: Any) -> None:
        """Settle ``request`` with ``value``."""
        # One statement: an interrupt cannot fall between settling, keeping
        # the callbacks and counting the in-flight slot to release.
        self._count += request.settle_into(self._later, value=value)

    def settle_error(self, request: AppendRequest, error: BaseException) -> None:
        """Fail ``request`` with ``error``."""
        self._count += request.settle_into(self._later, error=error)

    def release(self) -> None:
        """Tell the in-flight limit how many requests settled since last."""
        settled, self._count = self._count, 0
        if settled and self._on_settled is not None:
            self._on_settled(settled)

    @property
    def holding(self) -> bool:
        """Whether done-callbacks are held back."""
        return bool(self._later)

    def take(self) -> list[Callbacks | None]:
        """The done-callbacks held back so far, to run after letting go of
        the turn (:func:`run_callbacks`)."""
        later, self._later = self._later, []
        return later
