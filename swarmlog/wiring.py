"""StoreWiring: one store's actors and resources, started and stopped in order.

Start order (:meth:`StoreWiring.open`, on ``initialize``'s thread): the
file checks and lock -> notifier -> dispatcher -> either the reader pool and
the follower thread (read-only) or the committer, the writer actor (which
opens its connection on its own thread), the reader pool, the checkpointer
thread and (``multi_process``) the watcher thread. Stop order
(:meth:`StoreWiring.close`): checkpointer, follower and watcher ->
dispatcher, writer, notifier (bounded stops) -> committer -> readers ->
lock -> the temporary folder of a ``":memory:"`` store.

The wiring also carries messages to the writer: waking it, asking it and
waiting (bounded), and telling why it cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pykka

from swarmlog.actors import runtime
from swarmlog.actors.catch_up import CATCH_UP
from swarmlog.actors.checkpointer import Checkpointer
from swarmlog.actors.committer import Committer
from swarmlog.actors.dispatcher import DispatcherActor
from swarmlog.actors.follower import ChangeProbe, ChangeWatcher, Follower
from swarmlog.actors.messages import WAKE, Flush
from swarmlog.actors.notifier import NotifierActor
from swarmlog.actors.runtime import stop_bounded
from swarmlog.actors.sqlite.files import (
    FileLock,
    SQLiteCheckpointRunner,
    check_store_file,
)
from swarmlog.actors.sqlite.reading import SQLiteReadStorage
from swarmlog.actors.sqlite.shared import (
    WAL_FOLD_BYTES,
    SQLiteChangeProbe,
    SQLiteSharedWriteStorage,
)
from swarmlog.actors.sqlite.storage import SQLiteWriteStorage
from swarmlog.actors.writer import WriterActor
from swarmlog.backend import (
    display_path,
    is_postgres_url,
    open_postgres_follower,
    open_postgres_probe,
    open_postgres_reader,
    open_postgres_writer,
)
from swarmlog.schema.errors import (
    StoreClosedError,
    SwarmlogError,
    WriterStoppedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from swarmlog.actors.notifier import Listeners
    from swarmlog.actors.runtime import Audience, CommitHead, WriterMetrics
    from swarmlog.actors.sqlite.write_lock import WriteLock
    from swarmlog.actors.storage import ReadStorage, WriteStorage
    from swarmlog.config import EventStoreConfig

__all__ = ["StoreWiring"]


class StoreWiring:
    """The running parts of one store (see the module docstring).

    Opened and closed under the store's lifecycle lock; the writer helpers
    run on any thread.

    Args:
        config: The store's options.
        listeners: The store's listener registry (the notifier calls them).
        audience: Who wants committed pages (the committer reads it).
        head: The store's commit head.
        metrics: The writer's counters.
        on_settled: Called with how many appends settled (frees their
            in-flight slots).
        is_open: Whether the store is open now (for :meth:`writer_gone`).
        persisted: Called with the WAL size after each WAL checkpoint.
        on_error: Called with a checkpoint error (any thread).
        on_commit: Called after each commit with the writer's turn held
            (wakes durable subscriptions); quick, never raises.
    """

    def __init__(
        self,
        config: EventStoreConfig,
        listeners: Listeners,
        audience: Audience,
        head: CommitHead,
        metrics: WriterMetrics,
        *,
        on_settled: Callable[[int], None],
        is_open: Callable[[], bool],
        persisted: Callable[[int], None],
        on_error: Callable[[BaseException], None],
        on_commit: Callable[[], None],
    ) -> None:
        self._config = config
        self._listeners = listeners
        self._audience = audience
        self._head = head
        self._metrics = metrics
        self._on_settled = on_settled
        self._is_open = is_open
        self._persisted = persisted
        self._on_error = on_error
        self._on_commit = on_commit
        self.path = ""
        self.tempdir: str | None = None
        self.lock: FileLock | None = None
        self.reader: ReadStorage | None = None
        self.writer: pykka.ActorRef[Any] | None = None
        self.committer: Committer | None = None
        self.dispatcher: pykka.ActorRef[Any] | None = None
        self.notifier: pykka.ActorRef[Any] | None = None
        self.checkpointer: Checkpointer | None = None
        self.follower: Follower | None = None
        self.watcher: ChangeWatcher | None = None
        self._write_lock: WriteLock | None = None  # multi_process: measured

    def open(self) -> None:
        """Start everything in order; on an error the caller runs
        :meth:`close` (what started is stopped).

        Raises:
            StoreOpenError: The path cannot be opened.
            StoreLockedError: Another writing store holds the file.
            IncompatibleStoreError: Not a swarmlog store, or a newer format.
        """
        config = self._config
        if is_postgres_url(config.database_path):
            self._open_postgres()
            return
        if config.database_path == ":memory:":
            self.tempdir = tempfile.mkdtemp(prefix="swarmlog-")
            self.path = os.path.join(self.tempdir, "memory.db")
        else:
            # The real path: a symlinked spelling of an open store's file
            # must meet its lock (and SQLite its -wal file).
            self.path = os.path.realpath(config.database_path)
        path = self.path
        check_store_file(path, read_only=config.read_only)
        shared = config.multi_process and not config.read_only
        if not config.read_only:
            self.lock = FileLock(path, shared=shared)
            self.lock.acquire()
        self.notifier = NotifierActor.start(self._listeners, config.snapshot_threshold)
        self.dispatcher = DispatcherActor.start(self.notifier, self._listeners)
        if config.read_only:
            self.reader = SQLiteReadStorage(
                path, read_only=True, pool_size=config.reader_pool_size
            )
            self._head.position = self.reader.head()
            self.follower = Follower(
                self.reader, self._head, self.dispatcher, config.poll_interval
            )
            self.follower.start()
            return
        synchronous, pragmas = config.synchronous, config.pragmas
        lock_timeout = config.lock_timeout
        wal_fold = min(config.wal_checkpoint_bytes, WAL_FOLD_BYTES)

        def open_storage() -> WriteStorage:
            if shared:
                storage = SQLiteSharedWriteStorage(
                    path, synchronous, pragmas, lock_timeout, wal_fold
                )
                self._write_lock = storage.lock
                return storage
            return SQLiteWriteStorage(path, synchronous, pragmas)

        committer = self._start_writer(open_storage)
        self.reader = SQLiteReadStorage(
            path, read_only=False, pool_size=config.reader_pool_size
        )
        self.checkpointer = Checkpointer(
            SQLiteCheckpointRunner(path, shared=shared),
            config.auto_persist_interval,
            # Shared: most of the WAL is folded back here, off the lock, so
            # the writer's fold under the lock (at wal_fold) is short.
            wal_fold // 2 if shared else config.wal_checkpoint_bytes,
            self._persisted,
            self._on_error,
        )
        commit_seen, also = self.checkpointer.commit_seen, self._on_commit

        def on_commit() -> None:  # quick, never raises (the committer's rule)
            commit_seen()
            also()

        committer.publisher.on_commit = on_commit  # before any append
        self.checkpointer.start()
        if shared:
            self._watch_others(SQLiteChangeProbe(path))

    def _start_writer(
        self,
        open_storage: Callable[[], WriteStorage],
        on_commit: Callable[[], None] | None = None,
    ) -> Committer:
        """The committer and the writer actor, its connection opened (on
        the writer's own thread: what goes wrong there is raised here, in
        ``initialize()``)."""
        config, dispatcher = self._config, self.dispatcher
        assert dispatcher is not None  # started first
        committer = self.committer = Committer(
            open_storage,
            dispatcher,
            self._audience,
            self.notifier,
            self._head,
            self._metrics,
            config.max_batch,
            self.wake_writer,
            on_settled=self._on_settled,
            on_commit=on_commit,
            lock_timeout=config.lock_timeout,
        )
        started: Future[None] = Future()
        self.writer = WriterActor.start(committer, started)
        started.result(runtime.STOP_TIMEOUT)
        return committer

    def _watch_others(self, probe: ChangeProbe) -> None:
        """A store other processes write: strong queries read the store's
        head (and ask for a catch-up); a watcher thread asks for one when
        another process committed."""
        reader, head = self.reader, self._head
        assert reader is not None

        def committed() -> int:  # any thread: a strong query
            position = reader.head()
            if position > head.position:
                self.ask_catch_up()
            return position

        head.source = committed
        committer = self.committer
        assert committer is not None

        def nudge() -> bool:  # the watcher's: only an idle writer needs it
            if committer.busy():  # (a busy one catches up each round)
                return False
            self.ask_catch_up()
            return True

        self.watcher = ChangeWatcher(probe, head, nudge)
        self.watcher.start()

    def _open_postgres(self) -> None:
        """:meth:`open` for a PostgreSQL store: no file lock, no WAL
        checkpointer; a read-only store's follower polls the server."""
        config = self._config
        url, schema = config.database_path, config.pg_schema
        self.path = display_path(url)
        self.notifier = NotifierActor.start(self._listeners, config.snapshot_threshold)
        self.dispatcher = DispatcherActor.start(self.notifier, self._listeners)
        if config.read_only:
            self.reader = open_postgres_reader(
                url, schema, config.reader_pool_size, check=True
            )
            self._head.position = self.reader.head()
            self.follower = open_postgres_follower(
                url,
                schema,
                self.reader,
                self._head,
                self.dispatcher,
                config.poll_interval,
            )
            self.follower.start()
            return
        self._start_writer(
            lambda: open_postgres_writer(
                url, schema, config.synchronous, config.lock_timeout
            ),
            on_commit=self._on_commit,
        )
        self.reader = open_postgres_reader(
            url, schema, config.reader_pool_size, check=False
        )
        self._watch_others(open_postgres_probe(url, schema))

    def close(self) -> None:
        """Stop everything that runs, in order (projections already
        stopped). Safe after a partial :meth:`open`, and twice."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self._head.source = None
        if self.committer is not None:
            self.committer.expect_close()  # the writer's stop is expected now
        for attr in ("dispatcher", "writer", "notifier"):
            ref = getattr(self, attr)
            if ref is not None:
                stop_bounded(ref)
                setattr(self, attr, None)
        committer, self.committer = self.committer, None
        if committer is not None:  # closed by the writer's on_stop, unless
            committer.close()  # the writer never started
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)
            self.tempdir = None

    def fence_after_fork(self) -> None:
        """In a forked child: never remove the parent's temporary folder;
        close the inherited lock descriptor without unlocking."""
        self.tempdir = None  # the parent's to remove
        if self.lock is not None:
            self.lock.abandon()
            self.lock = None

    # -- talking to the writer (any thread) ---------------------------------------

    def tell_writer(self, message: Any) -> None:
        """Tell the writer ``message``.

        Raises:
            SwarmlogError: It cannot be reached (see :meth:`writer_gone`).
        """
        writer = self.writer
        try:
            if writer is None:
                raise pykka.ActorDeadError("the writer stopped")
            writer.tell(message)
        except pykka.ActorDeadError:
            raise self.writer_gone() from None

    def lock_waits(self) -> tuple[int, float]:
        """How many writes waited for the store-wide write lock, and the
        longest wait in seconds (``(0, 0.0)`` unless ``multi_process``);
        any thread (plain reads of numbers the writer keeps)."""
        lock = self._write_lock
        return (0, 0.0) if lock is None else (lock.waits, lock.worst_wait)

    def ask_catch_up(self) -> None:
        """Ask the writer to publish what other processes committed (any
        thread; one message on its way at a time). A gone writer is no
        error here: the store is closing."""
        committer = self.committer
        if committer is None or committer.catch_up_asked:
            return
        committer.catch_up_asked = True
        try:
            self.tell_writer(CATCH_UP)
        except SwarmlogError:
            committer.catch_up_asked = False

    def writer_gone(self) -> SwarmlogError:
        """Why the writer cannot be reached: the store shut down, or (while
        the store is open) the writer stopped."""
        committer = self.committer
        if self._is_open() and committer is not None:
            stopped = committer.stopped
            if stopped is None:
                msg = "the writer stopped accepting appends; reopen the store"
                stopped = WriterStoppedError(msg)
            return stopped
        msg = "the store is shut down"
        return StoreClosedError(msg)

    def wake_writer(self) -> None:
        """Tell the writer to commit what is queued (the committer's bound
        wake target)."""
        try:
            self.tell_writer(WAKE)
        except SwarmlogError:
            # Stopped under our feet: nobody will commit; fail the queue.
            committer = self.committer
            if committer is not None:
                committer.close()

    def ask_writer(self, message: Any, future: Future[None]) -> None:
        """Tell the writer ``message`` and wait (bounded) for ``future``."""
        committer = self.committer
        if committer is not None:
            committer.tracked.track(future)
        self.tell_writer(message)
        future.result(runtime.STOP_TIMEOUT)

    def flush_writer(self) -> None:
        """Wait until the writer committed what it holds (a stopped or
        gone writer has nothing left to flush)."""
        future: Future[None] = Future()
        try:
            self.ask_writer(Flush(future), future)
        except SwarmlogError:
            return

    def writer_stopped(self) -> bool:
        """Whether the writer stopped while the store is open."""
        committer, writer = self.committer, self.writer
        if committer is None or writer is None:
            return False
        return committer.stopped is not None or not writer.is_alive()
