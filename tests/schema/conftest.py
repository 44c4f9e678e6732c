"""Shared fixtures for the schema tests: stored-row builders and fresh names."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.schema.codec import PreparedEvent

_counter = itertools.count()


def row_for(
    prepared: PreparedEvent, *, version: int = 1, position: int = 1
) -> tuple[Any, ...]:
    """The row (EVENT_COLUMNS order) a read returns for ``prepared`` stored at
    these numbers, built from the stored row the writer makes."""
    stored = prepared.row(version, position)
    return (position, stored[2], stored[7], stored[8])


@pytest.fixture
def make_row() -> Callable[..., tuple[Any, ...]]:
    """Build a stored row from a PreparedEvent, as the writer would."""
    return row_for


@pytest.fixture
def unique_type(request: pytest.FixtureRequest) -> str:
    """A type string no other test registers (the registry is process-global)."""
    name = request.node.name.replace("[", "-").replace("]", "")
    return f"test:{name}-{next(_counter)}"
