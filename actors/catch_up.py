"""Catching up with other processes' commits on a shared store.

On a store other processes write too (SQLite opened with
``multi_process=True``), the committer's view (its published head and its
cache of committed versions) falls behind whenever another process
commits. Before planning a round, and when the follower notices the file
changed (a :class:`CatchUp` message to the writer), the turn's holder reads
the events past its head, folds their versions into
:class:`~swarmlog.actors.known_versions.KnownVersions` and publishes them
(head, then the page) exactly as it publishes its own commits. Only the
turn's holder publishes, so local and foreign events reach the dispatcher
once each, in position order.

Runs with the committer's turn held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.known_versions import KnownVersions
    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import WriteStorage
    from swarmlog.schema.envelope import Event

__all__ = ["CATCH_UP", "CatchUp", "catch_up"]

PAGE: Final = 1000  # foreign events read per page


class CatchUp:
    """Writer message: publish what other processes committed (the
    follower's nudge, or a strong query that saw the file ahead)."""

    __slots__ = ()


CATCH_UP: Final = CatchUp()


def catch_up(
    storage: WriteStorage,
    head: CommitHead,
    known: KnownVersions,
    publish: Callable[[tuple[Event[Any], ...]], None],
    target: int | None = None,
) -> int:
    """Publish the committed events past ``head``, page by page, in order.

    Turn held. Each page's versions go into ``known`` and its last position
    into ``head`` before ``publish`` hands the page on.

    Args:
        storage: The writing connection (inside the open round, if any).
        head: The head this process published so far (advanced).
        known: The committed-version cache (updated).
        publish: Hands one page to the dispatcher and the commit hook.
        target: Stop at this position (the head a round saw); None: until
            nothing more is committed.

    Returns:
        How many events were published.
    """
    found = 0
    while target is None or head.position < target:
        page = storage.read_after(head.position, PAGE)
        if not page:
            break
        known.update({e.aggregate_id: (e.aggregate_type, e.version) for e in page})
        head.position = page[-1].position
        publish(tuple(page))
        found += len(page)
        if target is None and len(page) < PAGE:
            break
    return found
