"""ForkMethods: copy a store's history up to a position into a new store.

Mixed into :class:`~swarmlog.EventStore`; the file copy itself is
:func:`swarmlog.actors.sqlite.fork.fork_file`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import msgspec

from swarmlog.actors.postgres.url import DEFAULT_SCHEMA, is_postgres_url
from swarmlog.actors.sqlite.fork import fork_file
from swarmlog.copying import fork_store
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
        self,
        path: str | os.PathLike[str],
        *,
        at_position: int | None = None,
        pg_schema: str | None = None,
    ) -> Self:
        """A new store at ``path`` holding this store's events up to
        ``at_position`` (default: the head), started and writable.

        Runs on the calling thread; this store keeps running and is never
        written (a read-only store can be forked). The fork has the same
        ids, positions, versions, timestamps and metadata, the aggregate
        snapshots whose version was reached by then, and its lineage
        (``get_stats().lineage``); its next append takes position
        ``at_position + 1``. It has this store's options; shut it down
        (or use it as a context manager) when done. Either side may be a
        PostgreSQL URL (``pg_schema``: the new store's schema, default
        this store's; its schema must be new or empty).

        Raises:
            InvalidQueryError: ``at_position`` is not an int from 0 to the
                head.
            StoreOpenError: ``path`` exists, or its folder does not.
            InvalidConfigError: ``path`` is ``":memory:"``.
        CopyTargetNotEmptyError: A PostgreSQL schema ``path`` names holds
            a store already.
        """
        position = check_count(at_position, "at_position")
        source = str(self.config.database_path)
        if is_postgres_url(source) or (isinstance(path, str) and is_postgres_url(path)):
            return self._fork_across(path, position, pg_schema)
        target = fork_target(path)
        self._reader_checked()
        fork_file(self.path, target, position)
        config = msgspec.structs.replace(
            self.config, database_path=target, read_only=False
        )
        return type(self)(config).initialize()

    def _fork_across(
        self, path: str | os.PathLike[str], position: int | None, schema: str | None
    ) -> Self:
        """A fork with a PostgreSQL side: the rows copied by
        :func:`swarmlog.copying.fork_store`; the new store keeps this one's
        options that its backend takes."""
        target = path if isinstance(path, str) else fork_target(path)
        if not is_postgres_url(target):
            target = fork_target(target)
        self._reader_checked()
        source_schema = self.config.pg_schema
        if is_postgres_url(target):
            target_schema = schema or source_schema
        else:
            target_schema = DEFAULT_SCHEMA
        fork_store(
            self.config.database_path,
            target,
            at_position=position,
            source_schema=source_schema,
            target_schema=target_schema,
        )
        defaults = type(self.config)()
        sqlite_only = (
            {}
            if not is_postgres_url(target)
            else {
                "pragmas": None,
                "wal_checkpoint_bytes": defaults.wal_checkpoint_bytes,
                "auto_persist_interval": defaults.auto_persist_interval,
            }
        )
        config = msgspec.structs.replace(
            self.config,
            database_path=target,
            read_only=False,
            pg_schema=target_schema,
            **sqlite_only,
        )
        return type(self)(config).initialize()
