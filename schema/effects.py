"""The built-in ``effect:recorded`` event: one recorded call of an effect.

:class:`swarmlog.effects.Effects` appends one per call to the aggregate of
its run (aggregate type ``"run"``), so that a replay can return what the
call returned (or raise what it raised) without calling it again. The type
is registered when this module is imported, which ``import swarmlog`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.schema.errors import InvalidEventError
from swarmlog.schema.factories import create_event
from swarmlog.schema.registry import register_event_type

if TYPE_CHECKING:
    from swarmlog.schema.envelope import Event

__all__ = ["RUN_AGGREGATE_TYPE", "EffectRecorded", "create_effect_recorded_event"]

RUN_AGGREGATE_TYPE = "run"
"""The aggregate type of a run's recorded effects (its id is the run id)."""


class EffectRecorded(msgspec.Struct, frozen=True, tag="effect:recorded", kw_only=True):
    """A call of an effect (an LLM or tool call, ...) and its outcome.

    Attributes:
        key: The effect's name, chosen by the caller (``"llm.plan"``).
        sequence: The call's number among this run's calls with ``key``,
            1-based.
        args_digest: sha256 (hex) of the arguments' canonical encoding.
        result: What the call returned (JSON-like data); None if it raised.
        error_type: The raised exception's type name, or None.
        error_message: The raised exception's message, or None.
        duration: How long the call took, in milliseconds.
    """

    key: str
    sequence: int
    args_digest: str
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration: int = 0

    @property
    def failed(self) -> bool:
        """Whether the recorded call raised."""
        return self.error_type is not None


register_event_type(EffectRecorded, aggregate_type=RUN_AGGREGATE_TYPE)


def create_effect_recorded_event(
    run_id: str,
    key: str,
    sequence: int,
    args_digest: str,
    *,
    result: Any = None,
    error_type: str | None = None,
    error_message: str | None = None,
    duration: int = 0,
    **envelope: Any,
) -> Event[Any]:
    """A new ``effect:recorded`` event on the aggregate ``run_id``.

    Safe from any thread. Takes the envelope options of every factory
    (``metadata``, ``causation_id``, ``correlation_id``, ``source``,
    ``timestamp``, ``event_id``). The store checks the payload's types and
    that ``result`` can be encoded when the event is appended.

    Raises:
        InvalidEventError: ``sequence`` is not an int >= 1, ``key`` is not
            a non-empty string, or only one of ``error_type`` and
            ``error_message`` is given.
    """
    if not isinstance(key, str) or not key:
        msg = f"effect key must be a non-empty string, got {key!r}"
        raise InvalidEventError(msg)
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        msg = f"effect sequence must be an int >= 1, got {sequence!r}"
        raise InvalidEventError(msg)
    if (error_type is None) != (error_message is None):
        msg = "error_type and error_message go together (both or neither)"
        raise InvalidEventError(msg)
    payload = EffectRecorded(
        key=key,
        sequence=sequence,
        args_digest=args_digest,
        result=result,
        error_type=error_type,
        error_message=error_message,
        duration=duration,
    )
    return create_event(payload, run_id, **envelope)
