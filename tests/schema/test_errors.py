"""The exception hierarchy: one root, facts carried as attributes."""

from __future__ import annotations

import inspect
import pickle

import pytest

from swarmlog.schema import errors
from swarmlog.schema.errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventDecodeError,
    IncompatibleStoreError,
    ProjectionFailedError,
    ProjectionTimeoutError,
    StorageError,
    StorageFullError,
    StoreLockedError,
    SwarmlogError,
    UnknownEventTypeError,
)

ERROR_CLASSES = [
    obj
    for _, obj in inspect.getmembers(errors, inspect.isclass)
    if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
]

ISSUE_ERRORS = {
    "StoreNotInitializedError",
    "StoreClosedError",
    "StoreLockedError",
    "ConcurrencyError",
    "DuplicateEventError",
    "UnknownEventTypeError",
    "InvalidEventError",
    "InvalidQueryError",
    "InvalidConfigError",
    "IncompatibleStoreError",
    "EventDecodeError",
    "StorageFullError",
    "WriterStoppedError",
}


def test_every_issue_error_exists() -> None:
    """Every error the issue names is defined in swarmlog.schema.errors."""
    assert {cls.__name__ for cls in ERROR_CLASSES} >= ISSUE_ERRORS


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_subclasses_swarmlog_error(cls: type[BaseException]) -> None:
    """Each exception class in the module descends from SwarmlogError."""
    assert issubclass(cls, SwarmlogError)


def test_swarmlog_error_is_an_exception() -> None:
    """The root is an ordinary Exception, so ``except Exception`` catches it."""
    assert issubclass(SwarmlogError, Exception)


def test_concurrency_error_carries_facts() -> None:
    """ConcurrencyError keeps aggregate_id, expected and actual."""
    err = ConcurrencyError("task-1", 3, 5)
    assert (err.aggregate_id, err.expected, err.actual) == ("task-1", 3, 5)
    assert "task-1" in str(err)
    assert "5" in str(err)
    assert "3" in str(err)


def test_event_decode_error_carries_position() -> None:
    """EventDecodeError keeps the row's position and the reason."""
    err = EventDecodeError(42, "bad bytes")
    assert err.position == 42
    assert err.reason == "bad bytes"
    assert "42" in str(err)
    assert "bad bytes" in str(err)


def test_other_errors_carry_facts() -> None:
    """The remaining errors with attributes keep what they were given."""
    assert StoreLockedError("/x.db").path == "/x.db"
    assert DuplicateEventError("id-1").event_id == "id-1"
    assert UnknownEventTypeError("a:b").event_type == "a:b"
    incompatible = IncompatibleStoreError("/x.db", "newer format")
    assert (incompatible.path, incompatible.reason) == ("/x.db", "newer format")
    failed = ProjectionFailedError("tasks", 7, "boom")
    assert (failed.projection, failed.position, failed.reason) == ("tasks", 7, "boom")
    timeout = ProjectionTimeoutError("tasks", 9, 4)
    assert (timeout.projection, timeout.position, timeout.reached) == ("tasks", 9, 4)


def test_timeout_errors_are_builtin_timeouts() -> None:
    """Timeout-like errors are also the builtin TimeoutError."""
    assert issubclass(ProjectionTimeoutError, TimeoutError)


def test_storage_full_is_a_storage_error() -> None:
    """StorageFullError can be caught as StorageError."""
    assert issubclass(StorageFullError, StorageError)


@pytest.mark.parametrize(
    "err",
    [
        ConcurrencyError("task-1", 3, 5),
        EventDecodeError(42, "bad bytes"),
        IncompatibleStoreError("/x.db", "newer format"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(err: SwarmlogError) -> None:
    """An error pickles and unpickles with its attributes (crossing processes)."""
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert vars(copy) == vars(err)
