"""One-dimensional PostgreSQL arrays, encoded for the append statement.

The append statement takes one array per column (``unnest``). psycopg's
own list dumper works out each array's element type from the values, in
Python, for every call: it was most of the writer's time in a group commit
of a few events. The writer knows each column's type, so it builds the
binary array format (``array_send``) directly: a header, then each
element's length and bytes (-1: NULL).

Each array travels as a small holder of its encoded bytes whose dumper
hands them over as they are, with the array type's OID (:func:`register`,
once per connection). The bytes are joined once, header included: an
array of a 1000-event batch is hundreds of kilobytes, and each extra copy
of it (a ``bytes`` subclass copies on construction) cost ~0.2 ms.
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


class _Array:
    """An array in the binary format, ready to send."""

    __slots__ = ("data",)
    oid: ClassVar[int]

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self.data)} bytes>)"


class ByteaArray(_Array):
    """A ``bytea[]`` in the binary array format."""

    __slots__ = ()
    oid: ClassVar[int] = 1001


class TextArray(_Array):
    """A ``text[]`` in the binary array format."""

    __slots__ = ()
    oid: ClassVar[int] = 1009


class Int8Array(_Array):
    """A ``bigint[]`` in the binary array format."""

    __slots__ = ()
    oid: ClassVar[int] = 1016


class Int4Array(_Array):
    """An ``integer[]`` in the binary array format."""

    __slots__ = ()
    oid: ClassVar[int] = 1007


def _header(element: int, size: int, nulls: bool) -> bytes:
    return _HEADER.pack(1, 1 if nulls else 0, element, size, 1)


_FEW: Final = 32  # elements below which the plain loops are quicker


def bytea_array(values: Sequence[bytes | None]) -> ByteaArray:
    """``values`` (None: NULL) as a ``bytea[]``."""
    size = len(values)
    nulls = None in values
    if size >= _FEW:
        if not nulls:
            return ByteaArray(_interleaved(_header(_BYTEA, size, False), values))  # type: ignore[arg-type]
        if values.count(None) == size:  # a column nobody filled
            return ByteaArray(_header(_BYTEA, size, True) + _NULL * size)
    pack = _LENGTH.pack
    parts = [_NULL if v is None else pack(len(v)) + v for v in values]
    parts.insert(0, _header(_BYTEA, size, nulls))
    return ByteaArray(b"".join(parts))


def _interleaved(header: bytes, values: Sequence[bytes]) -> bytes:
    """``header``, then each value after its length, joined once."""
    pack = _LENGTH.pack
    parts = [header] * (2 * len(values) + 1)
    parts[1::2] = [pack(n) for n in map(len, values)]
    parts[2::2] = values
    return b"".join(parts)


def text_array(values: Sequence[str]) -> TextArray:
    """``values`` as a ``text[]`` (UTF-8; each distinct value encoded once:
    a column of event or aggregate types repeats a few)."""
    pack = _LENGTH.pack
    if len(values) < _FEW:
        parts = []
        for value in values:
            utf8 = value.encode()
            parts.append(pack(len(utf8)) + utf8)
        parts.insert(0, _header(_TEXT, len(values), False))
        return TextArray(b"".join(parts))
    encoded = {}
    for value in set(values):
        utf8 = value.encode()
        encoded[value] = pack(len(utf8)) + utf8
    parts = [encoded[value] for value in values]
    parts.insert(0, _header(_TEXT, len(values), False))
    return TextArray(b"".join(parts))


def int8_array(values: Sequence[int]) -> Int8Array:
    """``values`` as a ``bigint[]``."""
    pack = _INT8.pack
    parts = [pack(8, value) for value in values]
    parts.insert(0, _header(_INT8_OID, len(values), False))
    return Int8Array(b"".join(parts))


def int4_array(values: Sequence[int]) -> Int4Array:
    """``values`` as an ``integer[]``."""
    pack = _INT4.pack
    parts = [pack(4, value) for value in values]
    parts.insert(0, _header(_INT4_OID, len(values), False))
    return Int4Array(b"".join(parts))


class _PassThrough(Dumper):
    """Sends an already encoded array as it is, typed by its class."""

    format = Format.BINARY

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self.oid = cls.oid  # type: ignore[attr-defined]

    def dump(self, obj: Any) -> bytes:
        return obj.data  # type: ignore[no-any-return]


def register(conn: psycopg.Connection[Any]) -> None:
    """Let ``conn`` send the array classes of this module."""
    for cls in (ByteaArray, TextArray, Int8Array, Int4Array):
        conn.adapters.register_dumper(cls, _PassThrough)
