"""Read-only JSON-like data: what events and read models share.

An event appended once is handed to the appender, to every projection and to
every listener as the same object; read models keep the payloads' data in
their state and return it from queries. So the free-form values (``result``,
``config``, ``metrics``, ``context``, ``metadata``, any ``Any`` field of a
payload) are stored in :class:`FrozenDict` and :class:`FrozenList`: ``dict``
and ``list`` subclasses whose mutating methods raise
:class:`~swarmlog.schema.errors.ReadOnlyDataError` (a ``TypeError``).
``isinstance(x, dict)`` stays true, they compare equal to plain containers,
print like them, and msgspec encodes them (``msgspec.to_builtins`` returns
plain, mutable copies).

:func:`freeze_json` is the append side: one walk that both checks a value is
JSON-like and builds its read-only copy. :func:`freeze_stored` is the read
side: it only wraps the containers msgpack decoded.

JSON-like means: ``dict`` with ``str`` keys, ``list`` (a ``tuple`` is
accepted and becomes a list), ``str``, ``int`` in the signed 64-bit range,
finite ``float``, ``bool``, ``None``; subclasses of ``str``, ``int`` and
``float`` (``enum.StrEnum``, ``enum.IntEnum``) become the plain value.
Containers nest at most :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn, SupportsIndex

from swarmlog.schema.errors import InvalidValueError, ReadOnlyDataError

__all__ = [
    "EMPTY_DICT",
    "MAX_DEPTH",
    "FrozenDict",
    "FrozenList",
    "freeze_json",
    "freeze_stored",
]

MAX_DEPTH: Final = 64
"""Deepest nesting of containers in one free-form value (the value itself
is level 1)."""

_INT_MIN: Final = -(1 << 63)
_INT_MAX: Final = (1 << 63) - 1


def _refuse(kind: str, operation: str) -> NoReturn:
    raise ReadOnlyDataError(kind, operation)


class FrozenDict(dict[str, Any]):
    """A ``dict`` whose contents cannot change (read-only event data).

    Safe from any thread: it never changes after it is built.
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> NoReturn:
        _refuse("dict", "__setitem__")

    def __delitem__(self, key: str) -> NoReturn:
        _refuse("dict", "__delitem__")

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("dict", "|=")

    def clear(self) -> NoReturn:
        _refuse("dict", "clear")

    def pop(self, *args: Any) -> NoReturn:
        _refuse("dict", "pop")

    def popitem(self) -> NoReturn:
        _refuse("dict", "popitem")

    def setdefault(self, *args: Any) -> NoReturn:
        _refuse("dict", "setdefault")

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("dict", "update")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


class FrozenList(list[Any]):
    """A ``list`` whose contents cannot change (read-only event data).

    Safe from any thread: it never changes after it is built.
    """

    __slots__ = ()

    def __setitem__(self, index: Any, value: Any) -> NoReturn:
        _refuse("list", "__setitem__")

    def __delitem__(self, index: Any) -> NoReturn:
        _refuse("list", "__delitem__")

    def __iadd__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("list", "+=")

    def __imul__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        _refuse("list", "*=")

    def append(self, value: Any) -> NoReturn:
        _refuse("list", "append")

    def extend(self, values: Any) -> NoReturn:
        _refuse("list", "extend")

    def insert(self, index: SupportsIndex, value: Any) -> NoReturn:
        _refuse("list", "insert")

    def pop(self, index: SupportsIndex = -1) -> NoReturn:
        _refuse("list", "pop")

    def remove(self, value: Any) -> NoReturn:
        _refuse("list", "remove")

    def reverse(self) -> NoReturn:
        _refuse("list", "reverse")

    def sort(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("list", "sort")

    def clear(self) -> NoReturn:
        _refuse("list", "clear")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


EMPTY_DICT: Final = FrozenDict()
"""The one empty read-only dict (most events' metadata)."""


class _NotJsonError(Exception):
    """Internal: carries the reason up the walk, which adds the path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.steps: list[str] = []


def _step(key: object) -> str:
    if isinstance(key, str):
        return f".{key}" if key.isidentifier() else f"[{key!r}]"
    return f"[{key}]"


def freeze_json(value: Any, path: str) -> Any:
    """Check that ``value`` is JSON-like and return its read-only copy.

    Runs on the appending thread (inside ``prepare_event``). One walk does
    both: scalars come back as they are, containers as :class:`FrozenDict`
    / :class:`FrozenList` (tuples become lists, as msgpack stores them).

    Args:
        value: The free-form value.
        path: Its name for errors, e.g. ``"payload.result"``.

    Raises:
        InvalidValueError: Something in ``value`` is not JSON-like (a UUID,
            Decimal, set, bytes, datetime, any other object, NaN or
            infinity, an int outside 64 bits, a non-str key) or containers
            nest deeper than :data:`MAX_DEPTH`; ``path`` says where.
    """
    try:
        return _freeze(value, 1)
    except _NotJsonError as e:
        where = path + "".join(reversed(e.steps))
        raise InvalidValueError(where, e.reason) from None


def _freeze(value: Any, depth: int) -> Any:
    t = type(value)
    if t is str or value is None or t is bool:
        return value
    if t is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value
        msg = f"the int {value} is outside the signed 64-bit range"
        raise _NotJsonError(msg)
    if t is float:
        if value - value == 0.0:  # false for NaN and the infinities
            return value
        msg = f"{value} is not a finite number"
        raise _NotJsonError(msg)
    if t is dict or t is FrozenDict:
        if depth > MAX_DEPTH:
            raise _NotJsonError(_too_deep())
        simple = True
        for k, v in value.items():
            if type(k) is not str:
                msg = f"keys must be str, got the {type(k).__name__} key {k!r}"
                raise _NotJsonError(msg)
            tv = type(v)
            if not (tv is str or tv is bool or v is None or tv is int or tv is float):
                simple = False
                break
        if simple:
            for k, v in value.items():
                _scalar_checked(v, k)
            return FrozenDict(value)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str:
                msg = f"keys must be str, got the {type(k).__name__} key {k!r}"
                raise _NotJsonError(msg)
            try:
                out[k] = _freeze(v, depth + 1)
            except _NotJsonError as e:
                e.steps.append(_step(k))
                raise
        return FrozenDict(out)
    if t is list or t is tuple or t is FrozenList:
        if depth > MAX_DEPTH:
            raise _NotJsonError(_too_deep())
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_freeze(v, depth + 1))
            except _NotJsonError as e:
                e.steps.append(f"[{i}]")
                raise
        return FrozenList(items)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _freeze(int.__int__(value), depth)
    if isinstance(value, float):
        return _freeze(float.__float__(value), depth)
    if isinstance(value, dict):
        return _freeze(dict(value), depth)
    if isinstance(value, list):
        return _freeze(list(value), depth)
    msg = (
        f"a {t.__module__}.{t.__qualname__} is not JSON-like (use dict with str "
        "keys, list, str, int, finite float, bool or None)"
    )
    raise _NotJsonError(msg)


def _scalar_checked(value: Any, key: str) -> None:
    """Range checks of a flat dict's scalar values (ints, floats)."""
    t = type(value)
    if (t is int and not _INT_MIN <= value <= _INT_MAX) or (
        t is float and value - value != 0.0
    ):
        try:
            _freeze(value, 1)
        except _NotJsonError as e:
            e.steps.append(_step(key))
            raise


def _too_deep() -> str:
    return f"containers nest deeper than {MAX_DEPTH} levels"


_STORED_DEPTH: Final = 2 * MAX_DEPTH
"""How deep :func:`freeze_stored` goes: events stored before the depth
limit existed may nest deeper; what lies below stays as decoded rather than
making the event unreadable."""


def _nested(value: Any) -> bool:
    t = type(value)
    return t is dict or t is list or t is tuple


def freeze_stored(value: Any, depth: int = 1) -> Any:
    """The read-only copy of a decoded value (containers wrapped, nothing
    checked).

    Runs wherever events are decoded (reads, catch-up, snapshots of read
    models). Scalars come back as they are; ``dict``/``list`` as
    :class:`FrozenDict` / :class:`FrozenList`; a tuple is rebuilt only if
    it holds a container.
    """
    t = type(value)
    if depth > _STORED_DEPTH or not (t is dict or t is list or t is tuple):
        return value
    if t is dict:
        if not value:
            return EMPTY_DICT
        if not any(map(_nested, value.values())):
            return FrozenDict(value)
        return FrozenDict({k: freeze_stored(v, depth + 1) for k, v in value.items()})
    if not any(map(_nested, value)):
        return FrozenList(value) if t is list else value
    items = [freeze_stored(v, depth + 1) for v in value]
    return FrozenList(items) if t is list else tuple(items)
