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

When nobody in this process wants pages (no projection runs, no listener
wants events), no foreign event is decoded: one query reads the versions
the other processes committed (a storage that can, :class:`VersionReader`)
into the version cache, which so stays exact and warm, and the head moves
to the store's. Past :data:`PAGE` foreign events (or without that query)
the cache is emptied instead, so planning reads the versions of just the
aggregates it touches (one indexed look-up each).

A storage that places the rows itself (PostgreSQL, ``places_rows``) lets
the writer go *solo*: no lock round, one statement that stores the rows
right after the head as the database finds it. When other processes
committed since, the round lands after their events: theirs are published
first, then the round with its positions shifted (:meth:`SharedRounds.placed`).
A write that clashed with another process's is written once more after
catching up; a refusal planned on the cache, or a second clash, is settled
in a lock round against exact committed state.

Runs with the committer's turn held.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from swarmlog.schema.errors import SwarmlogError

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable

    from swarmlog.actors.known_versions import KnownVersions
    from swarmlog.actors.planning import Round
    from swarmlog.actors.publisher import Publisher
    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import WriteStorage
    from swarmlog.schema.envelope import Event

__all__ = ["CATCH_UP", "CatchUp", "SharedRounds", "VersionReader", "catch_up"]

logger = logging.getLogger("swarmlog.writer")

PAGE: Final = 1000  # foreign events read per page


@runtime_checkable
class VersionReader(Protocol):
    """A writing connection that reads committed versions cheaply."""

    def versions_after(self, position: int, upto: int) -> dict[str, tuple[str, int]]:
        """The last ``(aggregate_type, version)`` of each aggregate committed
        in ``(position, upto]``."""
        ...


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
        limit = PAGE if target is None else min(PAGE, target - head.position)
        page = storage.read_after(head.position, limit)
        if not page:
            break
        known.fold({e.aggregate_id: (e.aggregate_type, e.version) for e in page})
        head.position = page[-1].position
        publish(tuple(page))
        found += len(page)
        if target is None and len(page) < PAGE:
            break
    return found


def _fail_pending(
    requests: list[Any], fail: Callable[[Any, BaseException], None], error: Exception
) -> list[list[Any]]:
    """Fail the requests of a group not settled yet (nothing was written:
    what planning reads failed, e.g. the server went away)."""
    for request in requests:
        if not request.done():
            fail(request, error)
    return []


class SharedRounds:
    """The committer's side of a shared store: the start of each round and
    the idle catch-up. Turn held.

    Args:
        head: The head this process published.
        known: The committed-version cache.
        publisher: Hands foreign pages on (``foreign``), says whether
            anybody wants them (``wanted``) and runs the commit hook.
        lock_timeout: Seconds a round waits for the store-wide write lock.
    """

    __slots__ = ("_head", "_known", "_publisher", "_reader", "_timeout")

    def __init__(
        self,
        head: CommitHead,
        known: KnownVersions,
        publisher: Publisher,
        lock_timeout: float,
    ) -> None:
        self._head = head
        self._known = known
        self._publisher = publisher
        self._timeout = lock_timeout
        self._reader: tuple[WriteStorage, VersionReader | None] | None = None

    def _versions(self, storage: WriteStorage) -> VersionReader | None:
        reader = self._reader
        if reader is None or reader[0] is not storage:
            found = storage if isinstance(storage, VersionReader) else None
            reader = self._reader = (storage, found)
        return reader[1]

    def _catch_up(self, storage: WriteStorage, target: int | None) -> None:
        publisher = self._publisher
        if publisher.wanted:
            catch_up(storage, self._head, self._known, publisher.foreign, target)
            return
        if target is None:
            target = storage.head()
        head = self._head
        if target <= head.position:
            return
        # Nobody listens: decode no page; fold the versions (or forget them).
        versions = self._versions(storage)
        folded = None
        if versions is not None and target - head.position <= PAGE:
            try:
                folded = versions.versions_after(head.position, target)
            except SwarmlogError:  # the cache forgets instead
                folded = None
        if folded is None:
            self._known.clear()
        else:
            self._known.fold(folded)
        head.position = target
        publisher.nudge()

    def begin(self, storage: WriteStorage) -> None:
        """Take the write lock and publish what others committed first;
        the round is then open (``write_events`` or ``abort_round`` ends
        it).

        Raises:
            SwarmlogError: No lock in time (``LockTimeoutError``) or a
                failed read; nothing is held.
        """
        head = storage.begin_round(self._timeout, self._head.position)
        try:
            if head > self._head.position:
                self._catch_up(storage, head)
        except BaseException:
            storage.abort_round()
            raise

    def commit(
        self,
        storage: WriteStorage,
        requests: list[Any],
        plan: Callable[..., list[list[Any]] | None],
        fail: Callable[[Any, BaseException], None],
        queue: deque[Any] | None,
        limit: int,
    ) -> list[list[Any]]:
        """Commit one group of append requests on a shared store: solo
        when the storage places rows itself (a refusal or a clash: once
        more after catching up), else (and to settle what two solo writes
        could not) inside a lock round, after catching up (a lock timeout
        fails the group).

        Args:
            storage: The writing connection.
            requests: The group, in order.
            plan: The committer's plan-and-write (``solo=True``: None when
                a refusal or a clash needs settling on fresher state).
            fail: Fails one request (the group's unsettled ones when the
                lock or a read while planning failed: nothing was written).
            queue: Where requests queued while the group waited for the
                lock join it from (None: the group is not the batch in
                progress), up to ``limit`` requests in all.
            limit: The most requests in one transaction.

        Returns:
            The groups to commit next, in order.
        """
        try:
            if storage.places_rows:
                after = plan(requests, solo=True)
                if after is None:  # a refusal to confirm, or a clash: once
                    self._catch_up(storage, None)  # more on a fresher cache
                    after = plan(requests, solo=True)
                if after is not None:
                    return after
            self.begin(storage)
        except SwarmlogError as error:  # no lock, or a read while planning
            return _fail_pending(requests, fail, error)
        try:
            while queue and len(requests) < limit:  # group commit across processes
                requests.append(queue.popleft())
            return plan(requests) or []
        except SwarmlogError as error:  # a read while planning failed
            return _fail_pending(requests, fail, error)
        finally:
            storage.abort_round()  # a no-op once write_events ended it

    def placed(self, storage: WriteStorage | None, round_: Round) -> bool:
        """A committed round the storage placed itself (``round_.placed``):
        shift it to where it was stored, then publish what other processes
        committed before it, and clear ``round_.placed``.

        Returns:
            Whether the round may be published now: False (``placed`` left
            set) when the events before it could not be read (logged; the
            cache is emptied and the next catch-up publishes them and the
            round, in order).
        """
        placed = round_.placed
        if placed is None:
            return True
        if storage is None:  # closed meanwhile: nothing can be read
            return False
        if placed > self._head.position:
            try:
                self._catch_up(storage, placed)
            except SwarmlogError as error:
                logger.warning("reading other processes' commits failed: %s", error)
                self._known.clear()
                return False
        round_.placed = None
        return True

    def idle(self, storage: WriteStorage) -> None:
        """Publish what others committed, without the lock (a ``CatchUp``
        message); a failed read is only logged (the next nudge retries)."""
        try:
            self._catch_up(storage, None)
        except SwarmlogError as error:
            logger.warning("catching up with other processes failed: %s", error)
