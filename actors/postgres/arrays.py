"""One-dimensional PostgreSQL arrays, encoded for the append statement.

The append statement takes one array per column (``unnest``). psycopg's
own list dumper works out each array's element type from the values, in
Python, for every call: it was most of the writer's time in a group commit
of a few events. The writer knows each column's type, so it builds the
binary array format (``array_send``) directly: a header, then each
element's length and bytes (-1: NULL).

Each array travels as a :class:`bytes` subclass whose dumper passes it
through with the array type's OID (:func:`register`, once per connection).
"""

from __future__ import annotations

from struct import Struct
from typing import TYPE_CHECKING, Any, ClassVar, Final

from psycopg.adapt import Dumper
from psycopg.pq import Format

if TYPE_CHECKING:
    from collections.abc import Sequence

    import psycopg

__all__ = [
    "ByteaArray",
    "Int4Array",
    "Int8Array",
    "TextArray",
    "bytea_array",
    "int4_array",
    "int8_array",
    "register",
    "text_array",
]

_HEADER: Final = Struct(">iiiii")  # ndim, has NULLs, element OID, size, lower bound
_LENGTH: Final = Struct(">i")
_INT8: Final = Struct(">iq")  # length 8, value
_INT4: Final = Struct(">ii")  # length 4, value
_NULL: Final = _LENGTH.pack(-1)
_BYTEA: Final = 17  # element type OIDs
_TEXT: Final = 25
_INT8_OID: Final = 20
_INT4_OID: Final = 23


class ByteaArray(bytes):
    """A ``bytea[]`` in the binary array format."""

    oid: ClassVar[int] = 1001


class TextArray(bytes):
    """A ``text[]`` in the binary array format."""

    oid: ClassVar[int] = 1009


class Int8Array(bytes):
    """A ``bigint[]`` in the binary array format."""

    oid: ClassVar[int] = 1016


class Int4Array(bytes):
    """An ``integer[]`` in the binary array format."""

    oid: ClassVar[int] = 1007


def _header(element: int, size: int, nulls: bool) -> bytes:
    return _HEADER.pack(1, 1 if nulls else 0, element, size, 1)


def bytea_array(values: Sequence[bytes | None]) -> ByteaArray:
    """``values`` (None: NULL) as a ``bytea[]``."""
    pack = _LENGTH.pack
    parts = [_NULL if value is None else pack(len(value)) + value for value in values]
    nulls = None in values
    return ByteaArray(_header(_BYTEA, len(values), nulls) + b"".join(parts))


def text_array(values: Sequence[str]) -> TextArray:
    """``values`` as a ``text[]`` (UTF-8)."""
    pack = _LENGTH.pack
    parts = []
    for value in values:
        encoded = value.encode()
        parts.append(pack(len(encoded)) + encoded)
    return TextArray(_header(_TEXT, len(values), False) + b"".join(parts))


def int8_array(values: Sequence[int]) -> Int8Array:
    """``values`` as a ``bigint[]``."""
    pack = _INT8.pack
    body = b"".join([pack(8, value) for value in values])
    return Int8Array(_header(_INT8_OID, len(values), False) + body)


def int4_array(values: Sequence[int]) -> Int4Array:
    """``values`` as an ``integer[]``."""
    pack = _INT4.pack
    body = b"".join([pack(4, value) for value in values])
    return Int4Array(_header(_INT4_OID, len(values), False) + body)


class _PassThrough(Dumper):
    """Sends an already encoded array as it is, typed by its class."""

    format = Format.BINARY

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.oid  # type: ignore[attr-defined]

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


def register(conn: psycopg.Connection[Any]) -> None:
    """Let ``conn`` send the array classes of this module."""
    for cls in (ByteaArray, TextArray, Int8Array, Int4Array):
        conn.adapters.register_dumper(cls, _PassThrough)
