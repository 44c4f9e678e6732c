"""The swarmlog exception hierarchy.

Every error a caller can see is a :class:`SwarmlogError`. Subclasses are split
by what the caller can do about them, and carry the facts as attributes.
Raw ``sqlite3`` and msgspec errors are translated at one boundary
(``swarmlog.actors.sqlite.storage`` and ``swarmlog.schema.codec``) and never
reach the user.
"""

from __future__ import annotations

from typing import Any


class SwarmlogError(Exception):
    """Root of every error raised by swarmlog.

    Errors survive pickling and copying with their attributes (subclasses
    that take facts record their constructor arguments in ``_init_args``).
    """

    _init_args: tuple[Any, ...] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        args = self._init_args if self._init_args is not None else self.args
        return (type(self), args, self.__dict__)


class StoreNotInitializedError(SwarmlogError):
    """The store was used before ``initialize()``."""


class StoreClosedError(SwarmlogError):
    """The store was used after ``shutdown()``."""


class StoreLockedError(SwarmlogError):
    """Another writer holds the database file's lock.

    Attributes:
        path: The database file.
        reason: Why, when it is more than another writer holding it (e.g.
            stores opened with and without ``multi_process`` on one file).
    """

    def __init__(self, path: str, reason: str | None = None) -> None:
        self._init_args = (path, reason)
        self.path = path
        self.reason = reason
        msg = f"{path!r} is locked by another writing EventStore " + (
            reason or "(open it with read_only=True to watch it)"
        )
        super().__init__(msg)


class ConcurrencyError(SwarmlogError):
    """An aggregate was not at the version the caller expected.

    Attributes:
        aggregate_id: The aggregate whose version did not match.
        expected: What the caller expected (an int, or ``ANY``/``NO_STREAM``/
            ``STREAM_EXISTS``).
        actual: The aggregate's current version (0 when it does not exist).
    """

    def __init__(self, aggregate_id: str, expected: Any, actual: int) -> None:
        self._init_args = (aggregate_id, expected, actual)
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        msg = f"aggregate {aggregate_id!r} is at version {actual}, expected {expected}"
        super().__init__(msg)


class DuplicateEventError(SwarmlogError):
    """An event id is already stored with different content.

    Attributes:
        event_id: The duplicated id.
    """

    def __init__(self, event_id: Any) -> None:
        self._init_args = (event_id,)
        self.event_id = event_id
        msg = f"event id {event_id} is already stored with different content"
        super().__init__(msg)


class UnknownEventTypeError(SwarmlogError):
    """An event type string is not registered in this process.

    Attributes:
        event_type: The unknown type string.
    """

    def __init__(self, event_type: object) -> None:
        self._init_args = (event_type,)
        self.event_type = event_type
        msg = (
            f"event type {event_type!r} is not registered "
            "(see swarmlog.register_event_type)"
        )
        super().__init__(msg)


class InvalidEventError(SwarmlogError):
    """An event is malformed: wrong payload shape or types, a naive or
    non-UTC timestamp, an aggregate type mismatch, an oversize payload."""


class InvalidValueError(InvalidEventError):
    """A free-form field (``result``, ``config``, ``metrics``, ``context``,
    ``metadata``, any ``Any`` field of a payload) holds something that is
    not JSON-like, or is nested too deep.

    Attributes:
        path: Where, e.g. ``payload.result.items[3]``.
        reason: What is wrong there.
    """

    def __init__(self, path: str, reason: str) -> None:
        self._init_args = (path, reason)
        self.path = path
        self.reason = reason
        super().__init__(f"{path} cannot be encoded: {reason}")


class ReadOnlyDataError(SwarmlogError, TypeError):
    """An attempt to change an event's or a read model's data in place.

    Events handed to projections, listeners and appenders, and query results
    of the built-in read models, share their containers: they are read-only
    ``dict``/``list`` subclasses. Copy first (``dict(value)``,
    ``list(value)``, ``copy.deepcopy(value)`` keeps them read-only). A
    ``TypeError``, like changing a tuple.

    Attributes:
        kind: ``"dict"`` or ``"list"``.
        operation: The refused method, e.g. ``"__setitem__"``.
    """

    def __init__(self, kind: str, operation: str) -> None:
        self._init_args = (kind, operation)
        self.kind = kind
        self.operation = operation
        msg = (
            f"this {kind} is read-only event or read-model data ({operation} "
            f"refused); make a copy to change it, e.g. {kind}(value)"
        )
        super().__init__(msg)


class InvalidQueryError(SwarmlogError):
    """A read was given a filter of the wrong type or range."""


class InvalidConfigError(SwarmlogError):
    """An ``EventStoreConfig`` option is out of range."""


class _FileError(SwarmlogError):
    """Base of the errors about the database file itself.

    Attributes:
        path: The database file.
        reason: What is wrong with it.
    """

    _template = "{path!r}: {reason}"

    def __init__(self, path: str, reason: str) -> None:
        self._init_args = (path, reason)
        self.path = path
        self.reason = reason
        super().__init__(self._template.format(path=path, reason=reason))


class IncompatibleStoreError(_FileError):
    """The file is not a swarmlog store, is damaged, or has a newer format."""


class EventDecodeError(SwarmlogError):
    """A stored event row cannot be decoded.

    Attributes:
        position: The row's global position.
    """

    def __init__(self, position: int, reason: str) -> None:
        self._init_args = (position, reason)
        self.position = position
        self.reason = reason
        super().__init__(f"cannot decode the event at position {position}: {reason}")


class StoreOpenError(_FileError):
    """The database file cannot be opened (a directory, no permission, a
    missing folder, a read-only filesystem for a writing store)."""

    _template = "cannot open {path!r}: {reason}"


class ReadOnlyStoreError(SwarmlogError):
    """A write was attempted on a store opened with ``read_only=True``."""


class StorageError(SwarmlogError):
    """SQLite failed with a known outcome: nothing of the request was stored."""


class StorageFullError(StorageError):
    """The disk (or ``max_page_count``) is full; the request was rolled back.

    The store keeps working once space returns.
    """


class WriterStoppedError(SwarmlogError):
    """The writer stopped accepting appends.

    Raised when the outcome of a commit is unknown (an I/O error during
    COMMIT): rather than guess, the writer refuses every later append.
    Reopen the store to find out what was stored.
    """


class ProjectionFailedError(SwarmlogError):
    """A projection stopped on a failing event.

    Attributes:
        projection: The projection's name.
        position: The position of the event it failed on.
    """

    def __init__(self, projection: str, position: int, reason: str) -> None:
        self._init_args = (projection, position, reason)
        self.projection = projection
        self.position = position
        self.reason = reason
        msg = f"projection {projection!r} failed at position {position}: {reason}"
        super().__init__(msg)


class LockTimeoutError(SwarmlogError, TimeoutError):
    """A multi-process store waited ``lock_timeout`` seconds for the
    store-wide write lock (other processes kept it); nothing of the request
    was written, and no lock is held. Retry, or raise ``lock_timeout``.

    Attributes:
        path: The database file.
        timeout: The seconds waited.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self._init_args = (path, timeout)
        self.path = path
        self.timeout = timeout
        msg = (
            f"{path!r}: the write lock was not free within {timeout:g} s "
            "(other processes held it; lock_timeout)"
        )
        super().__init__(msg)


class ProjectionTimeoutError(SwarmlogError, TimeoutError):
    """A projection did not reach the wanted position in time.

    Attributes:
        projection: The projection's name.
        position: The position waited for.
        reached: The position the projection had reached.
    """

    def __init__(self, projection: str, position: int, reached: int) -> None:
        self._init_args = (projection, position, reached)
        self.projection = projection
        self.position = position
        self.reached = reached
        msg = (
            f"projection {projection!r} did not reach position {position} "
            f"in time (at {reached})"
        )
        super().__init__(msg)


class ProjectionStateError(SwarmlogError):
    """A projection was used in a state that does not allow it (not
    initialised, already stopped, duplicate name)."""


class EngineThreadWaitError(SwarmlogError):
    """A blocking wait was called from inside the engine (a projection
    handler or a listener callback), where it could deadlock."""
