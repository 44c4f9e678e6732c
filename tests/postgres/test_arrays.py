"""The append statement's hand-encoded arrays read back as the values they
were built from (the server parses them: a wrong byte is an error)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from swarmlog.actors.postgres.arrays import (
    bytea_array,
    int4_array,
    int8_array,
    register,
    text_array,
)


@pytest.fixture
def conn(pg_url: str) -> Any:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        register(connection)
        yield connection


def _back(conn: psycopg.Connection[Any], value: object, cast: str) -> Any:
    row = conn.execute(f"SELECT %b::{cast}, pg_typeof(%b)::text", (value, value))
    return row.fetchone()


def test_bytea_arrays_keep_nulls_empties_and_any_byte(
    conn: psycopg.Connection[Any],
) -> None:
    values = [b"", None, bytes(range(256)), b"\x00nul", None]
    assert _back(conn, bytea_array(values), "bytea[]") == (values, "bytea[]")
    assert _back(conn, bytea_array([b"x"]), "bytea[]") == ([b"x"], "bytea[]")


def test_text_arrays_are_utf8(conn: psycopg.Connection[Any]) -> None:
    values = ["plain", "é ünïcode ✓", "", "quote'\"\\"]
    assert _back(conn, text_array(values), "text[]") == (values, "text[]")


def test_integer_arrays_keep_their_width(conn: psycopg.Connection[Any]) -> None:
    big = [0, 1, -1, 2**63 - 1, -(2**63), 1796548105854894]
    assert _back(conn, int8_array(big), "bigint[]") == (big, "bigint[]")
    small = [0, 1, -1, 2**31 - 1, -(2**31)]
    assert _back(conn, int4_array(small), "integer[]") == (small, "integer[]")


@pytest.mark.parametrize("size", [31, 32, 1000])
def test_long_arrays_read_back_whatever_their_nulls(
    conn: psycopg.Connection[Any], size: int
) -> None:
    """Around and past the length where the encoders change method: all
    filled, some NULLs, all NULL, and text values that repeat."""
    filled = [bytes([i % 256]) * (i % 7) for i in range(size)]
    some = [None if i % 3 == 0 else v for i, v in enumerate(filled)]
    none: list[bytes | None] = [None] * size
    for values in (filled, some, none):
        assert _back(conn, bytea_array(values), "bytea[]") == (values, "bytea[]")
    texts = [("task", "agent ✓", "")[i % 3] for i in range(size)]
    assert _back(conn, text_array(texts), "text[]") == (texts, "text[]")
    numbers = list(range(-size, size, 2))
    assert _back(conn, int8_array(numbers), "bigint[]") == (numbers, "bigint[]")
    assert _back(conn, int4_array(numbers), "integer[]") == (numbers, "integer[]")
