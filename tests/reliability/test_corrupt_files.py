"""Bad files and bad storage: typed errors, nothing stored lost.

A directory, a missing folder, an unwritable folder, a read-only filesystem,
a file that is not SQLite, a truncated or garbled store, an SQLite file of
another application, a full disk in the middle of a batch, and stored rows
whose columns were damaged after the fact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from swarmlog import (
    EventDecodeError,
    EventStore,
    IncompatibleStoreError,
    ProjectionFailedError,
    StorageFullError,
    StoreOpenError,
    SwarmlogError,
    create_task_created_event,
)
from swarmlog.actors.read_models import TaskHistoryProjection

from .crash_child import TallyProjection
from .support import open_refused

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from swarmlog import Event

OPEN_CHILD = Path(__file__).with_name("open_child.py")


def _event(i: int, *, size: int = 100, **envelope: Any) -> Event:
    return create_task_created_event(
        f"task-{i % 20}", "build", f"T{i}", "d" * size, "high", **envelope
    )


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def valid_file(tmp_path: Path) -> tuple[str, list[Event]]:
    """A cleanly shut down store of 300 events spanning many pages."""
    path = str(tmp_path / "valid.db")
    with EventStore(path) as store:
        events = store.append_many([_event(i) for i in range(300)])
    return path, events


def _probe(path: str) -> dict[str, Any]:
    """Open ``path`` and use every public operation; each must work or raise a
    SwarmlogError (anything else fails the test). Returns the outcomes."""
    outcomes: dict[str, Any] = {}

    def attempt(name: str, call: Callable[[], Any]) -> None:
        try:
            outcomes[name] = call()
        except SwarmlogError as error:
            outcomes[name] = error
        except Exception as error:
            pytest.fail(f"{name}: untyped {type(error).__name__}: {error}")

    store = EventStore(path)
    attempt("open", store.initialize)
    if isinstance(outcomes["open"], SwarmlogError):
        store.shutdown()
        return outcomes
    attempt("head", lambda: store.head_position)
    attempt("replay", lambda: len(list(store.replay())))
    attempt("query", lambda: len(store.query(limit=1000)))
    attempt("get_events", lambda: len(store.get_events("task-3")))
    attempt("by_type", lambda: len(store.get_events_by_type("task:created")))
    attempt("stats", lambda: store.get_stats().total_events)
    attempt("snapshot", lambda: store.get_snapshot("task-3"))
    attempt("append", lambda: store.append(_event(999)).position)
    attempt("append_many", lambda: len(store.append_many([_event(1000)] * 1)))
    attempt("persist", store.persist)
    attempt("shutdown", store.shutdown)
    return outcomes


# -- paths --------------------------------------------------------------------


@pytest.mark.parametrize("read_only", [False, True])
def test_path_that_is_a_directory(tmp_path: Path, read_only: bool) -> None:
    """A directory is a StoreOpenError; nothing is created beside it."""
    folder = tmp_path / "folder.db"
    folder.mkdir()
    open_refused(str(folder), StoreOpenError, "it is a directory", read_only=read_only)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.db"]


def test_missing_folder(tmp_path: Path) -> None:
    """A path in a folder that does not exist is a StoreOpenError."""
    open_refused(str(tmp_path / "nope" / "s.db"), StoreOpenError, "does not exist")
    assert not (tmp_path / "nope").exists()


def test_read_only_store_never_creates_a_file(tmp_path: Path) -> None:
    """read_only=True on a missing file is a StoreOpenError and creates nothing."""
    open_refused(str(tmp_path / "s.db"), StoreOpenError, "no such file", read_only=True)
    assert list(tmp_path.iterdir()) == []


def _run_open_child(
    targets: list[list[Any]], prefix: list[str] | None = None
) -> dict[str, Any]:
    args = [*(prefix or []), sys.executable, str(OPEN_CHILD)]
    args.append(msgspec.json.encode(targets).decode())
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return msgspec.json.decode(done.stdout)  # type: ignore[no-any-return]


_AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _can_run_as_nobody() -> bool:
    if shutil.which("setpriv") is None:
        return False
    probe = [
        *_AS_NOBODY,
        sys.executable,
        "-c",
        "import swarmlog, os; print(os.getuid())",
    ]
    try:
        done = subprocess.run(
            probe, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "65534"


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A root-owned folder others may read but not write (tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="swarmlog-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_unwritable_folder(public_dir: Path) -> None:
    """A folder the process may not write is a StoreOpenError, for a new file
    and for an existing store (a read-only store reads or is a typed error);
    the existing store is unchanged."""
    with EventStore(str(public_dir / "s.db")) as store:
        store.append(_event(0))
    before = _digest(str(public_dir / "s.db"))
    targets = [
        ["new", str(public_dir / "new.db"), False],
        ["existing", str(public_dir / "s.db"), False],
        ["reader", str(public_dir / "s.db"), True],
    ]
    if os.geteuid() == 0:
        if not _can_run_as_nobody():
            pytest.skip(
                "running as root (permissions are not enforced) and cannot "
                "start a child as user nobody with setpriv"
            )
        outcome = _run_open_child(targets, _AS_NOBODY)
    else:
        public_dir.chmod(0o555)
        (public_dir / "s.db").chmod(0o444)
        (public_dir / "s.db.lock").chmod(0o444)
        try:
            outcome = _run_open_child(targets)
        finally:
            public_dir.chmod(0o755)
    assert outcome["new"][0] == "StoreOpenError", outcome
    assert "ermission denied" in outcome["new"][1]
    assert outcome["existing"][0] == "StoreOpenError", outcome
    # a reader needs to create the WAL index beside the file: it may fail, typed
    assert outcome["reader"][0] in ("ok", "StoreOpenError"), outcome
    assert not (public_dir / "new.db").exists()
    assert _digest(str(public_dir / "s.db")) == before


def _read_only_mount_prefix(folder: Path) -> list[str] | None:
    """A command prefix running its command with ``folder`` mounted read-only
    in a private mount namespace (None when that cannot be done here)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return None
    script = (
        f'mount --bind "{folder}" "{folder}" && '
        f'mount -o remount,ro,bind "{folder}" "{folder}" && exec "$@"'
    )
    prefix = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ]
    try:
        probe = subprocess.run(
            [*prefix, "sh", "-c", f'! touch "{folder}/.probe" 2>/dev/null'],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return prefix if probe.returncode == 0 else None


def test_read_only_filesystem(public_dir: Path) -> None:
    """On a read-only filesystem a writing store is a StoreOpenError naming it;
    a read-only store either reads or is a typed StoreOpenError; the file is
    unchanged."""
    prefix = _read_only_mount_prefix(public_dir)
    if prefix is None:
        pytest.skip("needs root and unshare(1) to make a private read-only mount")
    path = str(public_dir / "s.db")
    with EventStore(path) as store:
        stored = store.append_many([_event(i) for i in range(5)])
    before = _digest(path)
    outcome = _run_open_child(
        [
            ["writer", path, False],
            ["new", str(public_dir / "new.db"), False],
            ["reader", path, True],
        ],
        prefix,
    )
    assert outcome["writer"][0] == "StoreOpenError", outcome
    assert "Read-only file system" in outcome["writer"][1]
    assert outcome["new"][0] == "StoreOpenError", outcome
    reader = outcome["reader"]
    if reader[0] == "ok":
        assert reader[2] == [e.position for e in stored]
        assert reader[3] == "ReadOnlyStoreError"
    else:
        assert reader[0] == "StoreOpenError", outcome
    assert _digest(path) == before
    assert not (public_dir / "new.db").exists()


# -- not a swarmlog store ------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"hello, this is a text file\n" * 100, id="text"),
        pytest.param(random.Random(1).randbytes(10_000), id="random-bytes"),
        pytest.param(
            b"SQLite format 3\x00" + random.Random(2).randbytes(8000),
            id="sqlite-header-then-garbage",
        ),
    ],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_file_that_is_not_sqlite(
    tmp_path: Path, content: bytes, read_only: bool
) -> None:
    """A file that is not SQLite is an IncompatibleStoreError; it is unchanged."""
    path = tmp_path / "not.db"
    path.write_bytes(content)
    open_refused(
        str(path), IncompatibleStoreError, "not an SQLite", read_only=read_only
    )
    assert path.read_bytes() == content


@pytest.mark.parametrize("read_only", [False, True])
def test_one_byte_file_is_not_overwritten(tmp_path: Path, read_only: bool) -> None:
    """A 1-byte file is not a store: refused, and its byte is still there."""
    path = tmp_path / "tiny.db"
    path.write_bytes(b"\n")
    open_refused(str(path), IncompatibleStoreError, read_only=read_only)
    assert path.read_bytes() == b"\n"


def test_empty_file_becomes_a_new_store(tmp_path: Path) -> None:
    """A zero-byte file is an empty SQLite database: it becomes a new store."""
    path = tmp_path / "empty.db"
    path.touch()
    with EventStore(str(path)) as store:
        assert store.append(_event(0)).position == 1


@pytest.mark.parametrize(
    ("setup", "read_only"),
    [
        pytest.param(["CREATE TABLE notes (body TEXT)"], False, id="tables"),
        pytest.param(["CREATE TABLE notes (body TEXT)"], True, id="tables-read-only"),
        pytest.param(
            ["PRAGMA application_id = 305419896", "PRAGMA user_version = 1"],
            False,
            id="other-application-id",
        ),
        pytest.param(
            [
                "CREATE TABLE events (position INTEGER PRIMARY KEY, payload BLOB)",
                "PRAGMA user_version = 1",
            ],
            False,
            id="events-table-without-our-id",
        ),
    ],
)
def test_sqlite_file_of_another_application(
    tmp_path: Path, setup: list[str], read_only: bool
) -> None:
    """Another application's SQLite file is refused and left unchanged."""
    path = str(tmp_path / "other.db")
    conn = sqlite3.connect(path)
    for statement in setup:
        conn.execute(statement)
    conn.commit()
    conn.close()
    before = _digest(path)
    open_refused(
        path, IncompatibleStoreError, "another application", read_only=read_only
    )
    assert _digest(path) == before


# -- damaged stores -------------------------------------------------------------


@pytest.mark.parametrize("cut", [50, 100, 1000, 4096, 0.5, -4096, -1])
def test_truncated_store(valid_file: tuple[str, list[Event]], cut: float) -> None:
    """A truncated store is refused at open or gives typed errors on use."""
    path, _ = valid_file
    size = os.path.getsize(path)
    keep = int(size * cut) if isinstance(cut, float) else cut % size
    with open(path, "r+b") as f:
        f.truncate(keep)
    outcomes = _probe(path)
    if isinstance(outcomes["open"], SwarmlogError):
        assert isinstance(outcomes["open"], IncompatibleStoreError), outcomes


@pytest.mark.parametrize("seed", range(8))
def test_garbled_store(valid_file: tuple[str, list[Event]], seed: int) -> None:
    """Random bytes written over the middle of a store: refused at open, or
    every operation works or raises a typed error; undamaged events read back."""
    path, events = valid_file
    size = os.path.getsize(path)
    rng = random.Random(seed)
    offset = rng.randrange(100, size - 512)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(rng.randbytes(rng.choice((16, 256, 4096))))
    outcomes = _probe(path)
    if isinstance(outcomes["open"], SwarmlogError):
        assert isinstance(outcomes["open"], IncompatibleStoreError), outcomes
        return
    if isinstance(outcomes["replay"], int):
        assert outcomes["replay"] >= len(events)  # plus what the probe appended


# -- disk full ----------------------------------------------------------------------


def _page_count(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("batch_size", [50, 2500])
def test_disk_full_mid_batch(tmp_path: Path, batch_size: int) -> None:
    """A batch that runs out of space fails as a whole with StorageFullError;
    the store keeps reading and, once space returns, has everything committed."""
    path = str(tmp_path / "full.db")
    with EventStore(path) as store:
        store.append(_event(0))
    limit = _page_count(path) + 40
    store = EventStore(path, pragmas={"max_page_count": limit}).initialize()
    committed = list(store.replay())

    def fill_up() -> None:
        for i in range(1, 100_000):
            committed.append(store.append(_event(i, size=400)))

    with pytest.raises(StorageFullError, match="full"):
        fill_up()
    batch = [
        _event(i, size=20 if batch_size > 100 else 400, metadata={"batch": "B"})
        for i in range(batch_size)
    ]
    with pytest.raises(StorageFullError, match="full"):
        store.append_many(batch)
    assert list(store.replay()) == committed  # reads work, nothing partial
    assert store.head_position == len(committed)
    store.shutdown()
    with EventStore(path, pragmas={"max_page_count": 1_000_000}) as roomy:
        assert list(roomy.replay()) == committed
        stored = roomy.append_many(batch)
        assert [e.position for e in stored] == list(
            range(len(committed) + 1, len(committed) + batch_size + 1)
        )


def test_disk_full_with_concurrent_appends(tmp_path: Path) -> None:
    """Group-committed requests when space runs out: each request is stored
    whole or fails whole with StorageFullError; positions stay gap-free."""
    path = str(tmp_path / "full.db")
    with EventStore(path) as store:
        store.append(_event(0))
    limit = _page_count(path) + 60
    outcomes: list[tuple[list[Event], Any]] = []
    lock = threading.Lock()
    with EventStore(path, pragmas={"max_page_count": limit}) as store:

        def appender(k: int) -> None:
            rng = random.Random(k)
            for i in range(200):
                events = [
                    _event(k * 1000 + i * 10 + j, size=rng.choice((10, 300, 3000)))
                    for j in range(rng.randint(1, 5))
                ]
                try:
                    result: Any = store.append_many(events)
                except StorageFullError as error:
                    result = error
                except BaseException as error:
                    result = error
                with lock:
                    outcomes.append((events, result))

        threads = [threading.Thread(target=appender, args=(k,)) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    untyped = [r for _, r in outcomes if isinstance(r, BaseException)]
    assert all(isinstance(r, StorageFullError) for r in untyped), untyped[:3]
    assert untyped, "the limit was never reached"
    with EventStore(path) as reopened:
        stored = {e.id: e for e in reopened.replay()}
        assert sorted(e.position for e in stored.values()) == list(
            range(1, len(stored) + 1)
        )
    for events, result in outcomes:
        present = [e.id in stored for e in events]
        if isinstance(result, list):
            assert all(present)
            assert [stored[e.id] for e in events] == result
        else:
            assert not any(present), "a failed batch is partially stored"


# -- damaged rows --------------------------------------------------------------------


def _blob_column(conn: sqlite3.Connection) -> str:
    """The column holding an event's encoded bytes (``data``: the whole
    envelope; ``payload`` in the older layout)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    return "data" if "data" in columns else "payload"


def _damage(path: str, statement: str, position: int) -> None:
    """Run ``statement`` (``{blob}`` names the encoded column) on one row."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement.format(blob=_blob_column(conn)), (position,))
        conn.commit()
    finally:
        conn.close()


DAMAGE = [
    pytest.param(
        "UPDATE events SET {blob} = x'c1c1c1' WHERE position = ?", id="garbage"
    ),
    pytest.param(
        "UPDATE events SET {blob} = x'81a178a179' WHERE position = ?",  # {"x": "y"}
        id="wrong-shape",
    ),
    pytest.param("UPDATE events SET {blob} = x'' WHERE position = ?", id="empty"),
    pytest.param(
        "UPDATE events SET {blob} = substr({blob}, 1, length({blob}) / 2) "
        "WHERE position = ?",
        id="cut-in-half",
    ),
    pytest.param(
        "UPDATE events SET {blob} = CAST('text' AS TEXT) WHERE position = ?",
        id="text-instead-of-bytes",
    ),
    pytest.param(
        "UPDATE events SET schema_version = 99 WHERE position = ?", id="future-version"
    ),
]


@pytest.mark.parametrize("statement", DAMAGE)
def test_damaged_row_is_a_typed_error_naming_its_position(
    valid_file: tuple[str, list[Event]], statement: str
) -> None:
    """Reading a damaged row raises EventDecodeError with its position; every
    other event stays readable and appends go on."""
    path, events = valid_file
    bad = events[149]
    _damage(path, statement, bad.position)
    with EventStore(path) as store:
        with pytest.raises(EventDecodeError, match=f"position {bad.position}") as info:
            store.get_events(bad.aggregate_id)
        assert info.value.position == bad.position
        with pytest.raises(EventDecodeError, match=f"position {bad.position}"):
            store.query()
        with pytest.raises(EventDecodeError, match=f"position {bad.position}"):
            store.get_events_by_type("task:created")
        replayed: list[Event] = []
        with pytest.raises(EventDecodeError, match=f"position {bad.position}"):
            replayed.extend(store.replay(page_size=7))
        assert replayed == events[:147]  # the pages before the damaged one
        others = [e for e in events if e.aggregate_id != bad.aggregate_id]
        other_ids = sorted({e.aggregate_id for e in others})
        assert store.query(aggregate_ids=other_ids) == others
        assert store.query(from_position=bad.position + 1) == events[150:]
        assert store.query(limit=bad.position - 1) == events[: bad.position - 1]
        assert store.get_events(bad.aggregate_id, from_version=bad.version + 1) == [
            e
            for e in events
            if e.aggregate_id == bad.aggregate_id and e.version > bad.version
        ]
        assert store.get_stats().total_events == len(events)
        assert store.append(_event(0)).position == len(events) + 1


def test_projection_over_a_damaged_row_fails_with_a_typed_error(
    valid_file: tuple[str, list[Event]],
) -> None:
    """A projection catching up over a damaged row fails promptly with a typed
    error naming the position (not a hang until its query timeout)."""
    path, events = valid_file
    bad = events[149]
    _damage(path, DAMAGE[0].values[0], bad.position)
    with EventStore(path) as store:
        projection = TaskHistoryProjection(store, query_timeout=2.0).initialize()
        with pytest.raises(SwarmlogError) as info:
            projection.wait_for(len(events), timeout=2.0)
        assert isinstance(info.value, ProjectionFailedError), repr(info.value)
        assert info.value.position == bad.position
        assert store.append(_event(0)).position == len(events) + 1


def test_shutdown_after_a_projection_died_is_clean(
    valid_file: tuple[str, list[Event]],
) -> None:
    """shutdown() raises nothing untyped after a projection's actor died on a
    damaged row, and the store reopens with everything."""
    path, events = valid_file
    bad = events[149]
    _damage(path, DAMAGE[0].values[0], bad.position)
    store = EventStore(path).initialize()
    projection = TallyProjection(store, query_timeout=2.0).initialize()
    with contextlib.suppress(SwarmlogError):
        projection.wait_for(len(events), timeout=2.0)
    try:
        store.shutdown()
    except SwarmlogError:
        pass
    except Exception as error:
        pytest.fail(f"shutdown raised untyped {type(error).__name__}: {error}")
    with EventStore(path) as reopened:
        assert reopened.head_position == len(events)
