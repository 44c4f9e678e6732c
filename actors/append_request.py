"""AppendRequest: one append, queued on the committer until it commits.

Not a message: it is never told to an actor. Whoever holds the
:class:`~swarmlog.actors.committer.Committer`'s turn commits it, and the
request settles itself (it is its own reply).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swarmlog.actors.reply import Reply

if TYPE_CHECKING:
    from collections.abc import Mapping

    from swarmlog.schema.codec import PreparedEvent
    from swarmlog.schema.envelope import ExpectedVersion

__all__ = ["AppendRequest"]


class AppendRequest(Reply[Any]):
    """Store these events atomically; after COMMIT settle with the stored
    events (with the one stored event when ``single``).

    The request is its own reply (one object per append, not three: at
    tens of thousands of appends in flight every allocation shows). Queued
    on the :class:`~swarmlog.actors.committer.Committer`, not told to an
    actor: whoever holds the committer's turn commits it.
    """

    __slots__ = ("expected", "prepared", "single")

    def __init__(
        self,
        prepared: tuple[PreparedEvent, ...],
        expected: ExpectedVersion | Mapping[str, ExpectedVersion],
        *,
        single: bool = False,
    ) -> None:
        super().__init__()
        self.prepared = prepared
        self.expected = expected
        self.single = single
