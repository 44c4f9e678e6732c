"""Recorded effects: record, replay and auto modes of ``store.effects``."""

from __future__ import annotations

import asyncio
import pickle
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from swarmlog import (
    EffectMismatchError,
    EffectNotRecordedError,
    EffectRecorded,
    Effects,
    EventStore,
    EventStoreConfig,
    InvalidConfigError,
    InvalidEventError,
    ReadOnlyStoreError,
    RecordedEffectError,
    SwarmlogError,
    create_effect_recorded_event,
)
from swarmlog.effects import args_digest
from swarmlog.schema.registry import info_for_type
from tests.backends import BACKENDS, location

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterator

TIMEOUT = 10.0
"""Seconds a wait may take before the test is declared hung (never a delay)."""

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """An initialised store on each backend; shut down after."""
    path, options = location(request, request.param, tmp_path, "fx.db")
    with EventStore(path, **options) as opened:
        yield opened


class Counted:
    """A function that counts its calls (and can be told to raise)."""

    def __init__(self, result: Any = None, error: BaseException | None = None):
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.result = result
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        if callable(self.result):
            return self.result(*args, **kwargs)
        return self.result


def _recordings(store: EventStore, run_id: str) -> list[EffectRecorded]:
    return [e.payload for e in store.get_events(run_id)]


class BoomError(Exception):
    """A user exception outside the builtins."""


# -- the event type -------------------------------------------------------------


def test_effect_recorded_is_registered_on_run_aggregates() -> None:
    """effect:recorded is registered, tagged, on aggregate type "run"."""
    info = info_for_type("effect:recorded")
    assert info.cls is EffectRecorded
    assert info.aggregate_type == "run"


def test_factory_builds_and_checks() -> None:
    """The factory builds an event on the run; bad sequence/key/error refused."""
    event = create_effect_recorded_event("run-1", "llm", 1, "d" * 64, result=[1])
    assert (event.type, event.aggregate_id, event.aggregate_type) == (
        "effect:recorded",
        "run-1",
        "run",
    )
    assert event.payload.result == [1]
    assert not event.payload.failed
    for bad in ({"sequence": 0}, {"sequence": True}, {"key": ""}):
        kwargs: dict[str, Any] = {"key": "llm", "sequence": 1, **bad}
        with pytest.raises(InvalidEventError):
            create_effect_recorded_event("run-1", args_digest="x", **kwargs)
    with pytest.raises(InvalidEventError, match="together"):
        create_effect_recorded_event("run-1", "llm", 1, "x", error_type="ValueError")


# -- record and replay ------------------------------------------------------------


def test_record_then_replay_returns_the_same_without_calling(store: EventStore) -> None:
    """Replay returns exactly what recording returned; the function is never
    called in replay."""
    fn = Counted(lambda prompt, n=1: {"text": prompt * n, "items": (1, 2.5, None)})
    recording = store.effects("run-1")
    first = [recording.call("llm", fn, "ab", n=2), recording.call("llm", fn, "c")]
    other = recording.call("tool", Counted(7))
    assert len(fn.calls) == 2
    assert first == [
        {"text": "abab", "items": [1, 2.5, None]},  # the recorded copy: a list
        {"text": "c", "items": [1, 2.5, None]},
    ]
    payloads = _recordings(store, "run-1")
    assert [(p.key, p.sequence) for p in payloads] == [
        ("llm", 1),
        ("llm", 2),
        ("tool", 1),
    ]
    assert payloads[0].args_digest == args_digest(("ab",), {"n": 2})
    assert all(p.duration >= 0 and p.error_type is None for p in payloads)

    replay = store.effects("run-1", mode="replay")
    assert replay.mode == "replay"
    assert replay.remaining() == [("llm", 1), ("llm", 2), ("tool", 1)]
    again = [replay.call("llm", fn, "ab", n=2), replay.call("llm", fn, "c")]
    assert again == first
    assert replay.call("tool", fn) == other == 7
    assert len(fn.calls) == 2
    assert replay.remaining() == []
    assert len(store.get_events("run-1")) == 3  # replay appends nothing


def test_replay_after_reopening_the_file(tmp_path: Path) -> None:
    """A recording survives shutdown; a new store on the file replays it."""
    path = str(tmp_path / "run.db")
    fn = Counted(lambda x: {"n": x + 1})
    with EventStore(path) as store:
        effects = store.effects("run")
        recorded = [effects.call("inc", fn, i) for i in range(5)]
    with EventStore(path) as store:
        replay = store.effects("run", mode="replay")
        assert [replay.call("inc", fn, i) for i in range(5)] == recorded
    with EventStore(path, read_only=True) as store:  # replay appends nothing
        replay = store.effects("run", mode="replay")
        assert replay.call("inc", fn, 0) == recorded[0]
        with pytest.raises(ReadOnlyStoreError):
            store.effects("run", mode="auto").call("new", fn, 9)
    assert recorded == [{"n": i + 1} for i in range(5)]
    assert len(fn.calls) == 5  # auto on the read-only store is refused unrun


def test_auto_replays_what_is_recorded_and_records_the_rest(store: EventStore) -> None:
    """Auto: recorded calls are replayed (not called), later ones are called
    and recorded; a replay afterwards covers all of them."""
    fn = Counted(lambda x: x * 10)
    record = store.effects("run")
    assert [record.call("k", fn, 1), record.call("k", fn, 2)] == [10, 20]
    auto = store.effects("run", mode="auto")
    assert auto.call("k", fn, 1) == 10
    assert auto.call("other", fn, 5) == 50
    assert auto.call("k", fn, 2) == 20
    assert auto.call("k", fn, 3) == 30
    assert [args for args, _ in fn.calls] == [(1,), (2,), (5,), (3,)]
    replay = store.effects("run", mode="replay")
    assert [replay.call("k", fn, i) for i in (1, 2, 3)] == [10, 20, 30]
    assert replay.call("other", fn, 5) == 50
    assert len(fn.calls) == 4


def test_record_mode_ignores_recordings_and_latest_wins(store: EventStore) -> None:
    """Record always calls; recording a run again replaces its calls on replay."""
    store.effects("run").call("k", Counted("old"))
    fn = Counted("new")
    assert store.effects("run").call("k", fn) == "new"
    assert len(fn.calls) == 1
    assert store.effects("run", mode="replay").call("k", fn) == "new"


def test_clock_and_source_stamp_the_recorded_events(store: EventStore) -> None:
    """Effects(clock=..., source=...) stamps each recorded event (a
    simulation passes its simulated clock)."""
    instant = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    effects = Effects(store, "run", clock=lambda: instant, source="sim")
    effects.call("k", Counted(1))
    with pytest.raises(ValueError, match="x"):
        effects.call("k", Counted(error=ValueError("x")))
    events = store.get_events("run")
    assert [(e.timestamp, e.source) for e in events] == [(instant, "sim")] * 2
    assert repr(effects) == "Effects(run_id='run', mode='record')"
    assert effects.run_id == "run"


# -- refusals ---------------------------------------------------------------------


def test_replay_without_recording_raises_and_never_calls(store: EventStore) -> None:
    """No recording: EffectNotRecordedError with key and sequence; no call."""
    store.effects("run").call("k", Counted(1))
    fn = Counted(2)
    replay = store.effects("run", mode="replay")
    replay.call("k", fn)
    with pytest.raises(EffectNotRecordedError) as caught:
        replay.call("k", fn)
    assert (caught.value.run_id, caught.value.key, caught.value.sequence) == (
        "run",
        "k",
        2,
    )
    with pytest.raises(EffectNotRecordedError, match="'missing'"):
        replay.call("missing", fn)
    with pytest.raises(EffectNotRecordedError):
        store.effects("never-recorded", mode="replay").call("k", fn)
    assert fn.calls == []


@pytest.mark.parametrize("mode", ["replay", "auto"])
def test_changed_arguments_raise_a_mismatch(store: EventStore, mode: Any) -> None:
    """Other arguments than recorded: EffectMismatchError (key, sequence);
    the function is not called, nothing is appended."""
    record = store.effects("run")
    record.call("k", Counted(1), "a", temperature=0.5)
    record.call("k", Counted(2), "b")
    fn = Counted(3)
    effects = store.effects("run", mode=mode)
    assert effects.call("k", fn, "a", temperature=0.5) == 1
    with pytest.raises(EffectMismatchError) as caught:
        effects.call("k", fn, "b", extra=True)
    error = caught.value
    assert (error.key, error.sequence) == ("k", 2)
    assert error.recorded_digest == args_digest(("b",), {})
    assert error.digest == args_digest(("b",), {"extra": True})
    assert fn.calls == []
    assert len(store.get_events("run")) == 2


def test_recorded_errors_are_reraised_then_replayed_as_recorded_effect_error(
    store: EventStore,
) -> None:
    """A raising call is recorded (type name + message) and re-raised;
    replaying it raises RecordedEffectError carrying both."""
    record = store.effects("run")
    with pytest.raises(ValueError, match="bad prompt"):
        record.call("llm", Counted(error=ValueError("bad prompt")), "x")
    with pytest.raises(BoomError):
        record.call("tool", Counted(error=BoomError("kaput")))
    payloads = _recordings(store, "run")
    assert [(p.error_type, p.error_message, p.result) for p in payloads] == [
        ("ValueError", "bad prompt", None),
        (f"{__name__}.BoomError", "kaput", None),
    ]
    assert all(p.failed for p in payloads)

    fn = Counted(1)
    for mode in ("replay", "auto"):
        effects = store.effects("run", mode=mode)  # type: ignore[arg-type]
        with pytest.raises(RecordedEffectError) as caught:
            effects.call("llm", fn, "x")
        error = caught.value
        assert (error.type_name, error.message) == ("ValueError", "bad prompt")
        assert "ValueError" in str(error)
        assert "bad prompt" in str(error)
        assert (error.key, error.sequence) == ("llm", 1)
        with pytest.raises(RecordedEffectError, match="BoomError: kaput"):
            effects.call("tool", fn)
    assert fn.calls == []


def test_base_exceptions_are_not_recorded(store: EventStore) -> None:
    """A KeyboardInterrupt-like BaseException passes through unrecorded; its
    number stays used and auto records it on the next run."""

    class Interrupt(BaseException):
        pass

    record = store.effects("run")
    with pytest.raises(Interrupt):
        record.call("k", Counted(error=Interrupt()))
    assert record.call("k", Counted("second")) == "second"
    assert [p.sequence for p in _recordings(store, "run")] == [2]
    auto = store.effects("run", mode="auto")
    assert auto.call("k", Counted("first")) == "first"
    assert auto.call("k", Counted("unused")) == "second"


class _Opaque:
    pass


_cycle: list[Any] = []
_cycle.append(_cycle)


@pytest.mark.parametrize(
    "arg",
    [_Opaque(), lambda: None, {1j}, float("inf") * 1j],
    ids=["object", "function", "complex-set", "complex"],
)
def test_unencodable_arguments_are_refused_before_the_call(
    store: EventStore, arg: Any
) -> None:
    """Arguments without a canonical encoding: InvalidEventError, the
    function is not called, nothing stored."""
    fn = Counted(1)
    with pytest.raises(InvalidEventError, match="arguments cannot be encoded"):
        store.effects("run").call("k", fn, arg)
    with pytest.raises(InvalidEventError):
        store.effects("run").call("k", fn, option=arg)
    assert fn.calls == []
    assert store.get_events("run") == []


@pytest.mark.parametrize(
    "result",
    [
        _Opaque(),
        datetime(2026, 1, 1, tzinfo=UTC),
        {"a", "b"},
        b"bytes",
        {1: "int key"},
        [{"deep": [_Opaque()]}],
        _cycle,
        2**70,
    ],
    ids=["object", "datetime", "set", "bytes", "int-key", "nested", "cycle", "bigint"],
)
def test_results_that_are_not_json_like_are_refused(
    store: EventStore, result: Any
) -> None:
    """A result that is not JSON-like: InvalidEventError at record time and
    nothing stored (the function did run once)."""
    fn = Counted(result)
    effects = store.effects("run")
    with pytest.raises(InvalidEventError):
        effects.call("k", fn)
    assert len(fn.calls) == 1
    assert store.get_events("run") == []


def test_oversize_results_are_refused_with_nothing_stored(tmp_path: Path) -> None:
    """A result over max_payload_bytes: InvalidEventError, nothing stored."""
    with EventStore(str(tmp_path / "small.db"), max_payload_bytes=1024) as store:
        with pytest.raises(InvalidEventError, match="max_payload_bytes"):
            store.effects("run").call("k", Counted("x" * 4096))
        assert store.get_events("run") == []


def test_bad_options_and_keys_are_refused(store: EventStore) -> None:
    """Bad run id or mode: InvalidConfigError; bad key or fn: InvalidEventError."""
    with pytest.raises(InvalidConfigError, match="mode"):
        store.effects("run", mode="rerun")  # type: ignore[arg-type]
    for run_id in ("", None, 3):
        with pytest.raises(InvalidConfigError, match="run_id"):
            store.effects(run_id)  # type: ignore[arg-type]
    effects = store.effects("run")
    for key in ("", None, 1):
        with pytest.raises(InvalidEventError, match="key"):
            effects.call(key, Counted(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="callable"):
        effects.call("k", 42)  # type: ignore[arg-type]
    assert store.get_events("run") == []


def test_store_must_be_open_to_replay(tmp_path: Path) -> None:
    """Replay reads its recordings at once: a shut store raises its error."""
    store = EventStore(str(tmp_path / "x.db"))
    with pytest.raises(SwarmlogError):
        store.effects("run", mode="replay")
    with store:
        pass
    with pytest.raises(SwarmlogError):
        store.effects("run", mode="auto")


def test_errors_are_picklable_with_their_facts() -> None:
    """The three effect errors keep their attributes through pickling."""
    errors = [
        EffectNotRecordedError("run", "k", 3),
        EffectMismatchError("run", "k", 2, "a" * 64, "b" * 64),
        RecordedEffectError("ValueError", "boom", "k", 1),
    ]
    for error in errors:
        assert isinstance(error, SwarmlogError)
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


# -- digests ----------------------------------------------------------------------


def test_digest_is_canonical() -> None:
    """Keyword order, dict key order and set order do not change the digest;
    values do."""
    assert args_digest((1,), {"a": 1, "b": 2}) == args_digest((1,), {"b": 2, "a": 1})
    assert args_digest(({"y": 1, "x": 2},), {}) == args_digest(({"x": 2, "y": 1},), {})
    assert args_digest(([1, 2],), {}) == args_digest(((1, 2),), {})
    assert args_digest((1,), {}) != args_digest((1.0,), {})
    assert args_digest((1,), {}) != args_digest((), {"x": 1})


def test_digest_is_the_same_in_another_process() -> None:
    """Another interpreter (another hash seed) computes the same digest."""
    args = ({"zeta", "alpha", "mid"}, {"b": [1, 2.5], "a": None})
    code = (
        "from swarmlog.effects import args_digest;"
        "print(args_digest(({'zeta', 'alpha', 'mid'}, {'b': [1, 2.5], 'a': None}),"
        " {'t': 0.7}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.strip() == args_digest(args, {"t": 0.7})


# -- asyncio ----------------------------------------------------------------------


class AppendSpy:
    """A store that refuses blocking appends: acall must use append_async."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.async_appends = 0

    def append(self, event: Any) -> Any:
        msg = "acall must not block the loop on append()"
        raise AssertionError(msg)

    def append_async(self, event: Any) -> Awaitable[Any]:
        self.async_appends += 1
        return self.store.append_async(event)

    def get_events(self, aggregate_id: str) -> list[Any]:
        return self.store.get_events(aggregate_id)


def test_async_record_and_replay(store: EventStore) -> None:
    """acall records through append_async (never a blocking append) and
    replays without awaiting the function; errors are recorded and replayed
    as in the sync form."""
    awaited: list[str] = []

    async def ask(prompt: str = "") -> dict[str, str]:
        awaited.append(prompt)
        await asyncio.sleep(0)
        return {"answer": prompt[::-1]}

    async def fail() -> None:
        await asyncio.sleep(0)
        raise BoomError("async kaput")

    spy = AppendSpy(store)

    async def record() -> list[Any]:
        effects = Effects(spy, "run")
        results: list[Any] = list(
            await asyncio.gather(
                effects.acall("llm", ask, "ab"), effects.acall("s", ask, "x")
            )
        )
        results.append(await effects.acall("plain", lambda: 5))  # type: ignore[arg-type, return-value]
        with pytest.raises(BoomError):
            await effects.acall("fail", fail)
        return results

    recorded = asyncio.run(asyncio.wait_for(record(), TIMEOUT))
    assert recorded == [{"answer": "ba"}, {"answer": "x"}, 5]
    assert spy.async_appends == 4
    assert sorted(awaited) == ["ab", "x"]

    async def replay() -> list[Any]:
        effects = store.effects("run", mode="replay")
        results = [
            await effects.acall("llm", ask, "ab"),
            await effects.acall("s", ask, "x"),
            await effects.acall("plain", ask),
        ]
        with pytest.raises(RecordedEffectError, match="async kaput"):
            await effects.acall("fail", ask)
        with pytest.raises(EffectNotRecordedError):
            await effects.acall("llm", ask, "ab")
        with pytest.raises(EffectMismatchError):
            await store.effects("run", mode="replay").acall("llm", ask, "other")
        return results

    assert asyncio.run(asyncio.wait_for(replay(), TIMEOUT)) == recorded
    assert sorted(awaited) == ["ab", "x"]
    assert len(store.get_events("run")) == 4


# -- threads ----------------------------------------------------------------------


def test_concurrent_calls_never_share_or_skip_a_sequence_number(
    store: EventStore,
) -> None:
    """Threads calling one key get distinct numbers 1..N; threads on keys of
    their own replay concurrently to the same results."""
    threads, calls = 6, 15
    effects = store.effects("run")
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int, target: Effects, results: dict[int, list[Any]]) -> None:
        try:
            start.wait(TIMEOUT)
            mine = []
            for i in range(calls):
                if target.mode == "record":  # its numbers depend on scheduling
                    target.call("shared", Counted(i), t, i)
                mine.append(
                    target.call(f"own.{t}", Counted(lambda a, b: a * 100 + b), t, i)
                )
            results[t] = mine
        except BaseException as error:  # reported below, never lost
            errors.append(error)

    recorded: dict[int, list[Any]] = {}
    workers = [
        threading.Thread(target=work, args=(t, effects, recorded))
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    assert not errors
    assert not any(worker.is_alive() for worker in workers)
    shared = [p.sequence for p in _recordings(store, "run") if p.key == "shared"]
    assert sorted(shared) == list(range(1, threads * calls + 1))

    replay = store.effects("run", mode="replay")
    replayed: dict[int, list[Any]] = {}
    start.reset()
    workers = [
        threading.Thread(target=work, args=(t, replay, replayed))
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    assert not errors
    assert replayed == recorded
    assert recorded[2] == [200 + i for i in range(calls)]


# -- README -----------------------------------------------------------------------


def readme_example(section: str) -> str:
    """The python code blocks of one README section, joined."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.index("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.DOTALL)
    assert blocks, f"no python example in README section {section!r}"
    return "\n".join(blocks)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Recorded effects" example runs and shows what it says."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(readme_example("Recorded effects"), "README.md", "exec"), namespace)
    assert namespace["llm_calls"] == ["deploy"]
    assert namespace["failure"] == (
        "TimeoutError",
        "https://example.com did not answer",
    )
    assert namespace["missing"] == ("llm.plan", 2)
    assert namespace["summary"] == "PLAN FOR DEPLOY"
    with EventStore("effects.db") as store:
        keys = [(p.key, p.sequence) for p in _recordings(store, "run-1")]
    assert keys == [("llm.plan", 1), ("tool.fetch", 1), ("llm.summary", 1)]


@pytest.mark.parametrize("mode", ["record", "auto"])
def test_recording_on_a_read_only_store_is_refused_before_any_call(
    tmp_path: Path, mode: Any
) -> None:
    """record/auto on a read-only store would call the function and lose
    its outcome: ReadOnlyStoreError at construction; replay still works."""
    path = str(tmp_path / "e.db")
    with EventStore(path) as writable:
        writable.effects("run").call("k", lambda: {"text": "hi"})
    calls: list[int] = []
    config = EventStoreConfig(database_path=path, read_only=True)
    with EventStore(config) as store:
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            store.effects("run", mode=mode)
        replay = store.effects("run", mode="replay")
        assert replay.call("k", lambda: calls.append(1)) == {"text": "hi"}
    assert calls == []
