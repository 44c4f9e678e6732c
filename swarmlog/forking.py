"""ForkMethods: copy a store's history up to a position into a new store.

Mixed into :class:`~swarmlog.EventStore`; the file copy itself is
:func:`swarmlog.actors.sqlite.fork.fork_file`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import msgspec

from swarmlog.actors.sqlite.fork import fork_file
from swarmlog.validation import check_count, fork_target

if TYPE_CHECKING:
    import os

    from swarmlog.actors.storage import ReadStorage
    from swarmlog.config import EventStoreConfig

__all__ = ["ForkMethods"]


class ForkMethods:
    """What-if branches of a store (see :meth:`fork`)."""

    __slots__ = ()
    if TYPE_CHECKING:  # what EventStore provides (a mixin never imports
        # the store: that would be an import cycle)
        config: EventStoreConfig

        def __init__(self, database_path: EventStoreConfig) -> None: ...

        @property
        def path(self) -> str: ...

        def initialize(self) -> Self: ...

        def _reader_checked(self) -> ReadStorage: ...

    def fork(
        self, path: str | os.PathLike[str], *, at_position: int | None = None
    ) -> Self:
        """A new store at ``path`` holding this store's events up to
        ``at_position`` (default: the head), started and writable.

        Runs on the calling thread; this store keeps running and is never
        written (a read-only store can be forked). The fork has the same
        ids, positions, versions, timestamps and metadata, the aggregate
        snapshots whose version was reached by then, and its lineage
        (``get_stats().lineage``); its next append takes position
        ``at_position + 1``. It has this store's options; shut it down
        (or use it as a context manager) when done.

        Raises:
            InvalidQueryError: ``at_position`` is not an int from 0 to the
                head.
            StoreOpenError: ``path`` exists, or its folder does not.
            InvalidConfigError: ``path`` is ``":memory:"``.
        """
        target = fork_target(path)
        position = check_count(at_position, "at_position")
        self._reader_checked()
        fork_file(self.path, target, position)
        config = msgspec.structs.replace(
            self.config, database_path=target, read_only=False
        )
        return type(self)(config).initialize()
