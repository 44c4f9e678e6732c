"""WalUpkeep: when the committer folds the WAL back on its own connection.

A WAL that keeps growing makes every commit slower, and a checkpoint from
another connection (the checkpointer thread) can never let it restart while
commits keep coming. So after enough commits, when nobody waits for the
writer, a PASSIVE checkpoint runs on the writing connection; the next
transaction then restarts the WAL from its beginning. Under sustained
saturation it checkpoints anyway at a hard bound.

Runs with the :class:`~swarmlog.actors.committer.Committer`'s turn held.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarmlog.actors.storage import WriteStorage

__all__ = ["WalUpkeep"]

logger = logging.getLogger("swarmlog.writer")

_CHECKPOINT_AFTER_TXNS = 1000  # default idle-time checkpoint after this many commits
# A checkpoint forced while appends wait holds all of them up (their p99):
# never sooner than this, whatever the idle-time figure.
_CHECKPOINT_FORCED_TXNS = 2000


class WalUpkeep:
    """Counts commits and runs the idle-time WAL checkpoint. Turn held,
    except :attr:`checkpointing` (read from any thread)."""

    __slots__ = ("_txns", "checkpointing", "every")

    def __init__(self) -> None:
        self.checkpointing = False  # the turn is held for a WAL checkpoint
        self._txns = 0  # commits since the last checkpoint
        # Idle-time checkpoint after this many commits (forced when busy at
        # twice that, and never before _CHECKPOINT_FORCED_TXNS); the
        # storage's own figure once it is open (0: never).
        self.every = _CHECKPOINT_AFTER_TXNS

    @property
    def due(self) -> bool:
        """Whether an idle-time checkpoint is due."""
        return 0 < self.every <= self._txns

    def _forced_at(self) -> int:
        return max(2 * self.every, _CHECKPOINT_FORCED_TXNS)

    def committed(self) -> bool:
        """Count one commit. Returns whether a checkpoint is forced now."""
        self._txns += 1
        return self.every > 0 and self._forced_at() <= self._txns

    def checkpoint_if_due(self, storage: WriteStorage, *, busy: bool) -> None:
        """Run a PASSIVE checkpoint on ``storage`` if one is due and nobody
        waits (not ``busy``), or if one is forced. Never raises."""
        every = self.every
        if every <= 0 or self._txns < every:
            return
        if busy and self._txns < self._forced_at():
            return
        self._txns = 0
        self.checkpointing = True
        try:
            storage.checkpoint_passive()
        except Exception:  # an optimisation: never a reason to stop
            logger.exception("idle WAL checkpoint failed")
        finally:
            self.checkpointing = False
