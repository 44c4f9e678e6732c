"""The errors of recorded effects (``swarmlog.effects``).

Like the rest of :mod:`swarmlog.schema.errors`, each carries its facts as
attributes and survives pickling with them.
"""

from __future__ import annotations

from swarmlog.schema.errors import SwarmlogError

__all__ = ["EffectMismatchError", "EffectNotRecordedError", "RecordedEffectError"]


class EffectNotRecordedError(SwarmlogError):
    """Replay found no recording for a call (the function was not called).

    Attributes:
        run_id: The run replayed.
        key: The effect's key.
        sequence: The call's number among the calls with this key (1-based).
    """

    def __init__(self, run_id: str, key: str, sequence: int) -> None:
        self._init_args = (run_id, key, sequence)
        self.run_id = run_id
        self.key = key
        self.sequence = sequence
        msg = (
            f"run {run_id!r} has no recording of call {sequence} of effect "
            f"{key!r} (replay never calls the function)"
        )
        super().__init__(msg)


class EffectMismatchError(SwarmlogError):
    """A replayed call's arguments differ from the recorded call's.

    Attributes:
        run_id: The run replayed.
        key: The effect's key.
        sequence: The call's number among the calls with this key (1-based).
        recorded_digest: The digest of the recorded arguments.
        digest: The digest of the arguments given now.
    """

    def __init__(
        self, run_id: str, key: str, sequence: int, recorded_digest: str, digest: str
    ) -> None:
        self._init_args = (run_id, key, sequence, recorded_digest, digest)
        self.run_id = run_id
        self.key = key
        self.sequence = sequence
        self.recorded_digest = recorded_digest
        self.digest = digest
        msg = (
            f"call {sequence} of effect {key!r} in run {run_id!r} has other "
            f"arguments than recorded (digest {digest[:12]}..., recorded "
            f"{recorded_digest[:12]}...)"
        )
        super().__init__(msg)


class RecordedEffectError(SwarmlogError):
    """A replayed call had raised when it was recorded.

    Raised in place of the original exception, which cannot be rebuilt from
    the store (only its type name and message were recorded).

    Attributes:
        type_name: The original exception's type name (``"ValueError"``, or
            ``"module.Name"`` outside the builtins).
        message: The original exception's message.
        key: The effect's key.
        sequence: The call's number among the calls with this key (1-based).
    """

    def __init__(
        self, type_name: str, message: str, key: str = "", sequence: int = 0
    ) -> None:
        self._init_args = (type_name, message, key, sequence)
        self.type_name = type_name
        self.message = message
        self.key = key
        self.sequence = sequence
        where = f" (recorded call {sequence} of effect {key!r})" if key else ""
        super().__init__(f"{type_name}: {message}{where}")
