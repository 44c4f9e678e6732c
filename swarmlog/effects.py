"""Recorded effects: replay a run without calling the LLM (or any tool) again.

An effect is a call whose outcome the run depends on but cannot reproduce:
an LLM completion, a web request, a random draw. :class:`Effects` routes
such calls through the store. In ``"record"`` mode each call runs and its
outcome is appended as an ``effect:recorded`` event on the run's aggregate;
in ``"replay"`` mode the recorded outcome is returned and the function is
never called; ``"auto"`` replays what is recorded and records the rest.

A call is identified by its key and its sequence number among this object's
calls with that key (1-based), and checked by a digest of its arguments, so
a replay that drifts from the recording fails loudly instead of returning
another call's answer.

This module sits above the store (``store.effects(...)`` builds one) and
sees it only through :class:`EffectStore`.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
import time
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args

import msgspec

from swarmlog.schema.effect_errors import (
    EffectMismatchError,
    EffectNotRecordedError,
    RecordedEffectError,
)
from swarmlog.schema.effects import EffectRecorded, create_effect_recorded_event
from swarmlog.schema.errors import (
    InvalidConfigError,
    InvalidEventError,
    ReadOnlyStoreError,
    SwarmlogError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from swarmlog.schema.envelope import Event

__all__ = ["EffectMode", "EffectStore", "Effects", "args_digest"]

T = TypeVar("T")

EffectMode = Literal["record", "replay", "auto"]
"""``"record"``: call and record. ``"replay"``: return what was recorded,
never call. ``"auto"``: replay what is recorded, record the rest."""

_MODES: tuple[str, ...] = get_args(EffectMode)
_EFFECT_TYPE = "effect:recorded"
_MAX_DEPTH = 256  # nesting of a result; deeper (or a cycle) is refused

# Canonical form of the arguments: JSON with sorted dict keys, struct fields
# and sets, so the digest is the same in every process and on every run.
_canonical = msgspec.json.Encoder(order="sorted")


class EffectStore(Protocol):
    """What :class:`Effects` needs of a store (``EventStore`` has it all)."""

    def append(self, event: Event[Any]) -> Event[Any]:
        """Append one event; return the stored copy once committed."""
        ...

    def append_async(self, event: Event[Any]) -> Awaitable[Event[Any]]:
        """Start an append; return something to await for the stored copy."""
        ...

    def get_events(self, aggregate_id: str) -> list[Event[Any]]:
        """An aggregate's events in version order."""
        ...


def args_digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The sha256 (hex) of the arguments' canonical JSON encoding.

    Safe from any thread. Stable across processes: dict keys, set members
    and struct fields are sorted; a tuple and a list with the same items
    have the same digest.

    Raises:
        InvalidEventError: An argument cannot be encoded (an arbitrary
            object, a function, ...).
    """
    try:
        data = _canonical.encode([list(args), kwargs])
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        msg = f"effect arguments cannot be encoded for their digest: {e}"
        raise InvalidEventError(msg) from e
    return hashlib.sha256(data).hexdigest()


def _check_json_like(value: Any, path: str, depth: int = 0) -> None:
    """Refuse anything but None, bool, int, float, str, lists/tuples and
    dicts with str keys (what a replay can give back as it was)."""
    if value is None or isinstance(value, bool | int | float | str):
        return
    if depth >= _MAX_DEPTH:
        msg = f"effect {path} is nested more than {_MAX_DEPTH} deep (or is a cycle)"
        raise InvalidEventError(msg)
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_like(item, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                msg = f"effect {path} has a non-string key {name!r}: not JSON-like"
                raise InvalidEventError(msg)
            _check_json_like(item, f"{path}[{name!r}]", depth + 1)
        return
    msg = (
        f"effect {path} is a {type(value).__name__}, not JSON-like data "
        "(None, bool, int, float, str, list, tuple, dict with str keys)"
    )
    raise InvalidEventError(msg)


def _read_only(store: object) -> bool:
    """Whether ``store`` was opened read-only (its ``config.read_only``)."""
    return getattr(getattr(store, "config", None), "read_only", False) is True


def _type_name(error: BaseException) -> str:
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not hide the error itself
        return f"<unprintable {type(error).__name__}>"


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class Effects:
    """Calls of effects recorded in (or replayed from) one run's events.

    Build one with ``store.effects(run_id, mode=...)``. Every method is safe
    from any thread; :meth:`acall` suspends, never blocks the event loop, on
    the append.

    Sequence numbers: each call takes the next number for its key when it
    starts, under a lock, so calls from several threads never share or skip
    a number. Which concurrent call gets which number follows the order the
    calls reach the lock; a replay matches only if calls with the same key
    start in the same order, so give concurrent workers keys of their own
    (``f"llm.{agent_id}"``). A call interrupted by a ``BaseException`` that
    is not an ``Exception`` (``KeyboardInterrupt``, asyncio cancellation)
    is not recorded; its number stays used (``"auto"`` records it on the
    next run).

    Recording into a run that already holds recordings: on replay, the
    latest recording of a (key, sequence) wins. Use a new run id for each
    recording.

    Args:
        store: The store (an :class:`~swarmlog.EventStore`).
        run_id: The run: the aggregate id of its ``effect:recorded`` events.
        mode: ``"record"``, ``"replay"`` or ``"auto"``.
        clock: Gives each recorded event's timestamp (timezone-aware UTC;
            e.g. a simulation's clock); default the wall clock.
        source: The recorded events' ``source``.

    Raises:
        InvalidConfigError: ``run_id`` is not a non-empty string or
            ``mode`` is not one of the three.
        ReadOnlyStoreError: ``"record"`` or ``"auto"`` on a store opened
            with ``read_only=True`` (its ``config.read_only``): the function
            would run and its outcome could not be recorded. ``"replay"``
            works on a read-only store.
        StoreClosedError: The store is shut down (replay and auto read the
            recordings at once).
    """

    def __init__(
        self,
        store: EffectStore,
        run_id: str,
        *,
        mode: EffectMode = "record",
        clock: Callable[[], datetime] | None = None,
        source: str = "swarm",
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            msg = f"run_id must be a non-empty string, got {run_id!r}"
            raise InvalidConfigError(msg)
        if mode not in _MODES:
            msg = f"mode must be one of {_MODES}, got {mode!r}"
            raise InvalidConfigError(msg)
        if mode != "replay" and _read_only(store):
            msg = (
                f"effects of run {run_id!r} cannot be recorded ({mode!r} mode) "
                'on a read-only store; use mode="replay" or a writable store'
            )
            raise ReadOnlyStoreError(msg)
        self._store = store
        self._run_id = run_id
        self._mode: EffectMode = mode
        self._clock = clock
        self._source = source
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._recordings: dict[tuple[str, int], EffectRecorded] = (
            {} if mode == "record" else self._load()
        )

    def _load(self) -> dict[tuple[str, int], EffectRecorded]:
        recordings: dict[tuple[str, int], EffectRecorded] = {}
        for event in self._store.get_events(self._run_id):
            payload = event.payload
            if event.type == _EFFECT_TYPE and isinstance(payload, EffectRecorded):
                recordings[(payload.key, payload.sequence)] = payload
        return recordings

    @property
    def run_id(self) -> str:
        """The run's id (the aggregate of its recordings)."""
        return self._run_id

    @property
    def mode(self) -> EffectMode:
        """``"record"``, ``"replay"`` or ``"auto"``."""
        return self._mode

    def remaining(self) -> list[tuple[str, int]]:
        """Recorded calls this object has not reached yet, as ``(key,
        sequence)`` pairs sorted by key then sequence: empty after a replay
        that made every recorded call. Always empty in ``"record"`` mode."""
        with self._lock:
            counts = dict(self._counts)
        return sorted(
            (key, sequence)
            for key, sequence in self._recordings
            if sequence > counts.get(key, 0)
        )

    # -- calling --------------------------------------------------------------------

    def call(self, key: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` as effect ``key``, or replay it.

        Runs ``fn`` on the calling thread (record, or auto without a
        recording) and returns once the outcome is committed. The value
        returned is the recorded copy, the same in record and replay
        (tuples come back as lists).

        Raises:
            InvalidEventError: ``key`` is not a non-empty string, an
                argument cannot be encoded (``fn`` was not called), or the
                result is not JSON-like data (``fn`` was called, nothing
                was stored).
            EffectNotRecordedError: Replay mode and no recording.
            EffectMismatchError: The recording has other arguments.
            RecordedEffectError: The recorded call raised.
            Exception: Whatever ``fn`` raised (after it was recorded).
        """
        sequence, digest, recording = self._begin(key, fn, args, kwargs)
        if recording is not None:
            return self._replay(recording)  # type: ignore[no-any-return]
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            event = self._failure_event(key, sequence, digest, error, started)
            try:
                self._store.append(event)
            except SwarmlogError as failure:
                raise failure from error
            raise
        event = self._result_event(key, sequence, digest, result, started)
        stored: EffectRecorded = self._store.append(event).payload
        return stored.result  # type: ignore[no-any-return]

    async def acall(
        self, key: str, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """:meth:`call` for coroutines: awaits ``fn(*args, **kwargs)`` (a
        plain value is taken as is) and awaits the append, so the event loop
        is never blocked on the store. Raises like :meth:`call`."""
        sequence, digest, recording = self._begin(key, fn, args, kwargs)
        if recording is not None:
            return self._replay(recording)  # type: ignore[no-any-return]
        started = time.perf_counter()
        try:
            outcome = fn(*args, **kwargs)
            result = await outcome if inspect.isawaitable(outcome) else outcome
        except Exception as error:
            event = self._failure_event(key, sequence, digest, error, started)
            try:
                await self._store.append_async(event)
            except SwarmlogError as failure:
                raise failure from error
            raise
        event = self._result_event(key, sequence, digest, result, started)
        stored: EffectRecorded = (await self._store.append_async(event)).payload
        return stored.result  # type: ignore[no-any-return]

    # -- steps ------------------------------------------------------------------------

    def _begin(
        self,
        key: str,
        fn: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[int, str, EffectRecorded | None]:
        """Check the call, take its sequence number, find its recording.

        Returns ``(sequence, digest, recording)``; ``recording`` is None when
        the function is to be called.
        """
        if not isinstance(key, str) or not key:
            msg = f"effect key must be a non-empty string, got {key!r}"
            raise InvalidEventError(msg)
        if not callable(fn):
            msg = f"effect {key!r}: fn must be callable, got {fn!r}"
            raise InvalidEventError(msg)
        digest = args_digest(args, kwargs)
        with self._lock:
            sequence = self._counts.get(key, 0) + 1
            self._counts[key] = sequence
        recording = self._recordings.get((key, sequence))
        if recording is None:
            if self._mode == "replay":
                raise EffectNotRecordedError(self._run_id, key, sequence)
            return sequence, digest, None
        if recording.args_digest != digest:
            raise EffectMismatchError(
                self._run_id, key, sequence, recording.args_digest, digest
            )
        return sequence, digest, recording

    @staticmethod
    def _replay(recording: EffectRecorded) -> Any:
        if recording.error_type is not None:
            raise RecordedEffectError(
                recording.error_type,
                recording.error_message or "",
                recording.key,
                recording.sequence,
            )
        return recording.result

    def _envelope(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {"source": self._source}
        if self._clock is not None:
            envelope["timestamp"] = self._clock()
        return envelope

    def _result_event(
        self, key: str, sequence: int, digest: str, result: Any, started: float
    ) -> Event[Any]:
        duration = _elapsed_ms(started)
        try:
            _check_json_like(result, "result")
        except InvalidEventError as e:
            msg = f"effect {key!r} call {sequence}: {e}"
            raise InvalidEventError(msg) from None
        return create_effect_recorded_event(
            self._run_id,
            key,
            sequence,
            digest,
            result=result,
            duration=duration,
            **self._envelope(),
        )

    def _failure_event(
        self,
        key: str,
        sequence: int,
        digest: str,
        error: BaseException,
        started: float,
    ) -> Event[Any]:
        return create_effect_recorded_event(
            self._run_id,
            key,
            sequence,
            digest,
            error_type=_type_name(error),
            error_message=_message(error),
            duration=_elapsed_ms(started),
            **self._envelope(),
        )

    def __repr__(self) -> str:
        return f"Effects(run_id={self._run_id!r}, mode={self._mode!r})"
