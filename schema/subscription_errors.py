"""The errors of durable subscriptions (``EventStore.subscribe``).

Like the rest of :mod:`swarmlog.schema.errors`, each carries its facts as
attributes and survives pickling with them.
"""

from __future__ import annotations

from swarmlog.schema.errors import SwarmlogError

__all__ = [
    "SubscriptionActiveError",
    "SubscriptionStoppedError",
    "SubscriptionTimeoutError",
    "SubscriptionWriteTimeoutError",
]


class SubscriptionActiveError(SwarmlogError):
    """A subscription of this name is already running in this store (a
    second one, a reset or a delete must wait for its ``stop()``).

    Attributes:
        name: The subscription's name.
    """

    def __init__(self, name: str) -> None:
        self._init_args = (name,)
        self.name = name
        msg = f"subscription {name!r} is already running in this store; stop it first"
        super().__init__(msg)


class SubscriptionStoppedError(SwarmlogError):
    """A subscription stopped (or failed) before reaching a waited-for
    position.

    Attributes:
        name: The subscription's name.
        position: The position waited for.
        reached: The last position it handled.
        reason: Why it stopped (its handler's error, or ``"stopped"``).
    """

    def __init__(self, name: str, position: int, reached: int, reason: str) -> None:
        self._init_args = (name, position, reached, reason)
        self.name = name
        self.position = position
        self.reached = reached
        self.reason = reason
        msg = (
            f"subscription {name!r} stopped at position {reached} before "
            f"reaching {position}: {reason}"
        )
        super().__init__(msg)


class SubscriptionTimeoutError(SwarmlogError, TimeoutError):
    """A subscription did not reach the wanted position in time.

    Attributes:
        name: The subscription's name.
        position: The position waited for.
        reached: The last position it handled.
        timeout: The seconds waited.
    """

    def __init__(self, name: str, position: int, reached: int, timeout: float) -> None:
        self._init_args = (name, position, reached, timeout)
        self.name = name
        self.position = position
        self.reached = reached
        self.timeout = timeout
        msg = (
            f"subscription {name!r} did not reach position {position} in "
            f"{timeout}s (at {reached})"
        )
        super().__init__(msg)


class SubscriptionWriteTimeoutError(SwarmlogError, TimeoutError):
    """The writer did not acknowledge a subscription's write (its position,
    a reset or a delete) within the internal bound (a hang guard: the
    writer is stuck or overloaded). Whether the write happened is unknown.

    Attributes:
        name: The subscription's name.
        timeout: The seconds waited.
    """

    def __init__(self, name: str, timeout: float) -> None:
        self._init_args = (name, timeout)
        self.name = name
        self.timeout = timeout
        msg = (
            f"subscription {name!r}: the writer did not acknowledge its write "
            f"within {timeout}s"
        )
        super().__init__(msg)
