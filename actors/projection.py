"""Projection: the base class of every read model, and its decorators.

A projection is a read model kept live by its own actor. Subclass
:class:`Projection`, give it a unique ``name`` and a ``state_version``, mark
handler methods with :func:`handles` and query methods with :func:`query`,
and implement ``reset_state`` (and, for snapshots, ``snapshot_state`` and
``restore_state``)::

    class CompletedCount(Projection):
        name = "completed-count"
        state_version = 1

        def reset_state(self) -> None:
            self._count = 0

        @handles(TaskCompleted)
        def _on_completed(self, event: Event[Any]) -> None:
            self._count += 1

        def snapshot_state(self) -> int:
            return self._count

        def restore_state(self, state: int) -> None:
            self._count = state

        @query
        def get_count(self) -> int:
            return self._count

    counter = CompletedCount(store).initialize()
    counter.get_count()

The read model's attributes are private to the projection's actor thread:
handlers and query bodies run there, and a query called from another thread
is shipped to it (after waiting, by default, until the projection has seen
every event committed before the call). Queries must return immutable
values or new containers, never the model's own objects.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from functools import wraps
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    ParamSpec,
    Protocol,
    Self,
    TypeAlias,
    TypeVar,
)

import pykka

from swarmlog.actors.projection_aio import AsyncQueries, async_queries_for
from swarmlog.actors.projection_direct import query_from_engine
from swarmlog.actors.projection_messages import (
    Rebuild,
    RetryDeadLetters,
    RunQuery,
    WaitFor,
)
from swarmlog.actors.projection_state import (
    POLICIES,
    Consistency,
    DeadLetter,
    FailurePolicy,
    ProjectionOptions,
    ProjectionProgress,
    ProjectionStatus,
)
from swarmlog.actors.runtime import in_engine_thread
from swarmlog.schema.errors import (
    EngineThreadWaitError,
    InvalidConfigError,
    ProjectionFailedError,
    ProjectionStateError,
    ProjectionTimeoutError,
    StoreClosedError,
)
from swarmlog.schema.registry import info_for_class

if TYPE_CHECKING:
    from collections.abc import Callable

    import msgspec

    from swarmlog.actors.runtime import CommitHead
    from swarmlog.actors.storage import ReadStorage
    from swarmlog.schema.envelope import Event

__all__ = [
    "DeadLetter",
    "FailurePolicy",
    "Projection",
    "ProjectionHosting",
    "ProjectionStatus",
    "ProjectionStore",
    "handles",
    "query",
]

P = ParamSpec("P")
R = TypeVar("R")

Handler: TypeAlias = "Callable[[Any, Event[Any]], None]"


def handles(*event_types: str | type[msgspec.Struct]) -> Callable[[R], R]:
    """Mark a method as the handler of these event types.

    Args:
        event_types: Type strings (``"task:completed"``) or registered payload
            classes (``TaskCompleted``).

    Raises:
        InvalidConfigError: A class is not registered, or nothing was given.
    """
    if not event_types:
        msg = "@handles needs at least one event type"
        raise InvalidConfigError(msg)
    names: list[str] = []
    for item in event_types:
        if isinstance(item, str):
            names.append(item)
            continue
        info = info_for_class(item)
        if info is None:
            msg = f"@handles({item!r}): not a registered payload class"
            raise InvalidConfigError(msg)
        names.append(info.type)

    def mark(method: R) -> R:
        existing: tuple[str, ...] = getattr(method, "__swarmlog_handles__", ())
        method.__swarmlog_handles__ = (*existing, *names)  # type: ignore[attr-defined]
        return method

    return mark


def query(method: Callable[P, R]) -> Callable[P, R]:
    """Mark a read-model query: its body runs on the projection's thread.

    Called from any other thread, it first waits (strong consistency, the
    default) until the projection has applied every event committed before
    the call, without blocking the projection's thread.
    """

    @wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, Projection)
        return self._engine.run_query(method, args, kwargs)

    run.__swarmlog_query__ = True  # type: ignore[attr-defined]
    return run


class ProjectionHosting(Protocol):
    """What a projection asks of its store's projection host
    (:class:`swarmlog.actors.projection_host.ProjectionHost`; a Protocol
    here, the lower room). Every method runs on the caller's thread."""

    def start(self, projection: Projection) -> None:
        """Start the projection's actor unless it runs."""
        ...

    def stop(self, projection: Projection) -> None:
        """Stop its actor and unregister it."""
        ...

    def reset(self, projection: Projection) -> None:
        """Stop it, forget its snapshot, empty its model and progress."""
        ...

    def reader(self) -> ReadStorage:
        """The store's reader pool (time-travel copies read through it)."""
        ...


class ProjectionStore(Protocol):
    """What a projection needs of the store it follows
    (:class:`~swarmlog.EventStore`)."""

    @property
    def closed(self) -> bool:
        """Whether the store was shut down."""
        ...

    @property
    def projection_host(self) -> ProjectionHosting:
        """The host that runs the store's projections."""
        ...


class _Engine:
    """The projection's link to its actor (the handle's side, any thread).

    ``options`` are fixed when the projection is built; ``progress`` is
    written only by the projection's actor thread (or while no actor of it
    runs: the host's reset, a time-travel copy being built).
    """

    __slots__ = (
        "actor",
        "ctor",
        "frozen",
        "head",
        "options",
        "progress",
        "projection",
        "store",
        "thread",
    )

    def __init__(self, projection: Projection, store: ProjectionStore) -> None:
        self.projection = projection
        self.store = store
        self.actor: pykka.ActorRef[Any] | None = None
        self.thread: threading.Thread | None = None
        self.head: CommitHead | None = None
        self.frozen = False
        self.options = ProjectionOptions()
        self.ctor: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
        self.progress = ProjectionProgress()

    def clear_progress(self) -> None:
        """Back to position 0, status ``stopped`` (the host's reset; runs
        while no actor of this projection runs, so nobody else writes)."""
        self.progress = ProjectionProgress()

    # Read-only views (the Protocols of projection_direct/projection_aio).
    @property
    def position(self) -> int:
        """The last position applied."""
        return self.progress.position

    @property
    def failure(self) -> ProjectionFailedError | None:
        """Why the projection stopped, if it failed."""
        return self.progress.failure

    @property
    def consistency(self) -> Consistency:
        """``strong`` or ``eventual``."""
        return self.options.consistency

    @property
    def query_timeout(self) -> float:
        """Seconds a query waits for the actor."""
        return self.options.query_timeout

    def check_usable(self) -> pykka.ActorRef[Any]:
        if self.failure is not None:
            raise self.failure
        actor = self.actor
        if actor is None:
            if self.store.closed:
                msg = "the store is shut down"
                raise StoreClosedError(msg)
            name = self.projection.name
            msg = f"projection {name!r} is not running; call initialize() first"
            raise ProjectionStateError(msg)
        return actor

    def ask(self, message: Any, future: Future[Any], timeout: float | None) -> Any:
        actor = self.check_usable()
        try:
            actor.tell(message)
        except pykka.ActorDeadError as e:
            msg = f"projection {self.projection.name!r} is stopped"
            raise ProjectionStateError(msg) from e
        try:
            return future.result(timeout)
        except FutureTimeout as e:
            target = getattr(message, "position", 0)
            raise ProjectionTimeoutError(
                self.projection.name, target, self.position
            ) from e

    def run_query(
        self, method: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        if self.frozen or self.thread is threading.current_thread():
            return method(*args, **kwargs)
        target = 0
        engine_thread = in_engine_thread()
        if self.consistency == "strong" and self.head is not None:
            # Outside the engine: what any process committed (shared store).
            head = self.head
            target = head.position if engine_thread else head.committed()
        if engine_thread:
            self.check_usable()  # a failed projection says so, whatever its lag
            if target > self.position:
                raise EngineThreadWaitError(_ENGINE_QUERY_MESSAGE)
            # No round trip that could wait on a thread waiting on us.
            return query_from_engine(self, method, args, kwargs)  # type: ignore[no-any-return]
        future: Future[R] = Future()
        return self.ask(  # type: ignore[no-any-return]
            RunQuery(method, args, kwargs, target, future), future, self.query_timeout
        )

    def wait_for(self, position: int, timeout: float | None) -> None:
        if self.frozen or self.position >= position:
            if self.failure is not None:
                raise self.failure
            return
        if in_engine_thread():
            raise EngineThreadWaitError(_ENGINE_WAIT_MESSAGE)
        if self.head is not None and position > self.head.position:
            self.head.committed()  # a shared store: catch up with it now
        future: Future[None] = Future()
        self.ask(WaitFor(position, future), future, timeout)


_ENGINE_QUERY_MESSAGE = (
    "a strong query of a projection that is behind was made inside the "
    "engine (a handler or a listener callback), where waiting for it could "
    "deadlock; build that projection with consistency='eventual' (its "
    "queries then answer at once, from handlers too) or query it outside "
    "the engine"
)
_ENGINE_WAIT_MESSAGE = (
    "a projection wait (wait_for, rebuild, retry_dead_letters) was called "
    "inside the engine (a handler or a listener callback), where it could "
    "deadlock; call it outside the engine, e.g. after the append returns"
)


class Projection:
    """Base class of read models kept live by their own actor.

    Subclasses set ``name`` (unique per store) and ``state_version`` (bump it
    when the snapshot shape changes: the projection then rebuilds from
    scratch instead of loading an incompatible snapshot), and may set
    ``state_type`` (how stored snapshots decode; default plain data).

    Args:
        store: The :class:`~swarmlog.EventStore` to follow.
        consistency: ``"strong"`` (default): a query reflects every event
            whose append returned before the query was made, also across
            threads. ``"eventual"``: answer at once with what it has
            (also when asked from another projection's handler).
        on_failure: What a failing handler does, after ``max_retries``
            retries ``retry_backoff`` seconds apart: ``"retry-then-stop"``
            (the projection enters ``failed``), ``"retry-then-skip"`` (the
            event becomes a dead letter) or ``"skip"`` (dead letter, no
            retries).
        max_retries: Retries before the policy applies.
        retry_backoff: Seconds (or a timedelta) between retries, doubled
            each time.
        snapshot_every: Events between snapshots (default: the store's
            ``projection_snapshot_every``).
        query_timeout: Seconds a query may wait for the projection.
    """

    name: ClassVar[str] = ""
    state_version: ClassVar[int] = 1
    state_type: ClassVar[Any] = Any
    _handler_table: ClassVar[
        dict[str, tuple[Callable[[Any, Event[Any]], None], ...]]
    ] = {}
    _engine: _Engine

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        """Remember the constructor's arguments (``rebuild`` and ``as_of``
        build fresh copies with them)."""
        self = super().__new__(cls)
        store: Any = args[0] if args else kwargs.get("store")  # checked by use
        self._engine = _Engine(self, store)
        self._engine.ctor = (args, kwargs)
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, list[Callable[[Any, Event[Any]], None]]] = {}
        seen: set[str] = set()
        for klass in cls.__mro__:
            for attr, value in vars(klass).items():
                if attr in seen:
                    continue
                seen.add(attr)
                for event_type in getattr(value, "__swarmlog_handles__", ()):
                    table.setdefault(event_type, []).append(value)
        cls._handler_table = {k: tuple(v) for k, v in table.items()}

    def __init__(
        self,
        store: ProjectionStore,
        *,
        consistency: Consistency = "strong",
        on_failure: FailurePolicy = "retry-then-stop",
        max_retries: int = 3,
        retry_backoff: float | timedelta = 0.05,
        snapshot_every: int | None = None,
        query_timeout: float = 30.0,
    ) -> None:
        if not self.name or not isinstance(self.name, str):
            msg = f"{type(self).__name__} needs a class attribute `name`"
            raise InvalidConfigError(msg)
        if consistency not in ("strong", "eventual"):
            msg = f"consistency must be 'strong' or 'eventual', got {consistency!r}"
            raise InvalidConfigError(msg)
        if on_failure not in POLICIES:
            msg = f"on_failure must be one of {POLICIES}, got {on_failure!r}"
            raise InvalidConfigError(msg)
        if not isinstance(max_retries, int) or max_retries < 0:
            msg = f"max_retries must be an int >= 0, got {max_retries!r}"
            raise InvalidConfigError(msg)
        if isinstance(retry_backoff, timedelta):
            retry_backoff = retry_backoff.total_seconds()
        if not isinstance(retry_backoff, int | float) or retry_backoff < 0:
            msg = f"retry_backoff must be >= 0 seconds, got {retry_backoff!r}"
            raise InvalidConfigError(msg)
        if snapshot_every is not None and (
            not isinstance(snapshot_every, int) or snapshot_every <= 0
        ):
            msg = f"snapshot_every must be a positive int, got {snapshot_every!r}"
            raise InvalidConfigError(msg)
        engine = self._engine
        engine.store = store
        engine.options = ProjectionOptions(
            consistency=consistency,
            on_failure=on_failure,
            max_retries=max_retries,
            retry_backoff=float(retry_backoff),
            snapshot_every=snapshot_every,
            query_timeout=query_timeout,
        )
        self.reset_state()

    # -- what subclasses implement ------------------------------------------

    def reset_state(self) -> None:
        """(Re)create the empty read model. Runs before any event."""

    def snapshot_state(self) -> Any:
        """The read model as msgspec-encodable data, or None for no
        snapshots. Runs on the projection's thread."""
        return None

    def restore_state(self, state: Any) -> None:
        """Load what ``snapshot_state`` returned (decoded as ``state_type``).
        Runs on the projection's thread."""

    # -- lifecycle ------------------------------------------------------------

    def initialize(self) -> Self:
        """Start the projection's actor: restore its latest snapshot, catch
        up from the store, then follow live appends.

        Idempotent; returns the projection. Safe from any thread. Returns
        at once, without waiting for the catch-up (which runs on the
        projection's thread), so it is safe on an event loop; a strong query
        or ``wait_for(store.head_position)`` waits for the catch-up.

        Raises:
            StoreNotInitializedError: The store is not initialised.
            ProjectionStateError: Another running projection has this name.
        """
        if self._engine.frozen:
            msg = "a time-travel (as_of) projection cannot be initialised"
            raise ProjectionStateError(msg)
        if self._engine.actor is None:
            self._engine.store.projection_host.start(self)
        return self

    def wait_for(self, position: int, timeout: float | None = 30.0) -> None:
        """Block until the projection has applied ``position``.

        Raises:
            ProjectionTimeoutError: Not reached within ``timeout`` seconds.
            ProjectionFailedError: The projection failed.
            EngineThreadWaitError: Called from a handler or a listener.
        """
        if not isinstance(position, int) or isinstance(position, bool):
            msg = f"position must be an int, got {position!r}"
            raise InvalidConfigError(msg)
        self._engine.wait_for(position, timeout)

    def rebuild(
        self,
        *,
        timeout: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Replay every event into a fresh read model, then swap it in.

        The current model keeps answering queries (and following live
        events) meanwhile; the swap is atomic. ``on_progress(done, total)``
        is called on the projection's thread after each page.

        Raises:
            ProjectionFailedError: A handler failed on the fresh model (the
                old model stays in place).
        """
        if in_engine_thread():
            raise EngineThreadWaitError(_ENGINE_WAIT_MESSAGE)
        future: Future[None] = Future()
        actor = self._engine.actor
        if actor is None:
            msg = f"projection {self.name!r} is not running; call initialize() first"
            raise ProjectionStateError(msg)
        try:
            actor.tell(Rebuild(future, on_progress))
        except pykka.ActorDeadError as e:
            msg = f"projection {self.name!r} is stopped"
            raise ProjectionStateError(msg) from e
        try:
            future.result(timeout)
        except FutureTimeout as e:
            raise ProjectionTimeoutError(
                self.name, -1, self._engine.progress.position
            ) from e

    def reset(self) -> None:
        """Stop the projection, forget its snapshot and empty its model.

        ``initialize()`` afterwards starts it again from position 0.
        """
        self._engine.store.projection_host.reset(self)

    def stop(self) -> None:
        """Stop following the store (status ``stopped``); queries then fail
        until ``initialize()`` is called again."""
        self._engine.store.projection_host.stop(self)

    # -- failures ---------------------------------------------------------------

    def get_dead_letters(self) -> list[DeadLetter]:
        """Events this projection skipped, oldest first."""
        return [letter for letter, _ in self._engine.progress.dead_letters]

    def retry_dead_letters(self, timeout: float | None = 30.0) -> int:
        """Re-apply the skipped events (after a fix); return how many now
        succeeded (those are removed from the dead letters)."""
        if in_engine_thread():
            raise EngineThreadWaitError(_ENGINE_WAIT_MESSAGE)
        future: Future[int] = Future()
        return int(self._engine.ask(RetryDeadLetters(future), future, timeout))

    # -- introspection ----------------------------------------------------------

    @property
    def aio(self) -> AsyncQueries:
        """Awaitable forms of this projection's queries and ``wait_for``.

        ``await projection.aio.get_agent("a1")``: same arguments, results
        and errors as the blocking form, but the event loop never blocks
        (see :class:`~swarmlog.actors.projection_aio.AsyncQueries`). Use on
        a thread that runs an asyncio loop.
        """
        return async_queries_for(type(self))(self._engine)

    @property
    def status(self) -> str:
        """``catching-up``, ``live``, ``failed`` or ``stopped``."""
        return self._engine.progress.status

    @property
    def position(self) -> int:
        """The last position this projection applied."""
        return self._engine.progress.position

    def get_status(self) -> ProjectionStatus:
        """Progress figures (any thread)."""
        engine = self._engine
        head = (
            engine.head.position
            if engine.head is not None
            else engine.progress.position
        )
        return ProjectionStatus(
            name=self.name,
            status=engine.progress.status,
            position=engine.progress.position,
            lag=max(0, head - engine.progress.position),
            events_handled=engine.progress.events_handled,
            snapshot_position=engine.progress.snapshot_position,
            dead_letters=len(engine.progress.dead_letters),
        )

    # -- time travel --------------------------------------------------------------

    @classmethod
    def as_of(cls, store: ProjectionStore, position: int, **options: Any) -> Self:
        """A non-live copy built from the events up to and including
        ``position``, with the same query methods. The live projection (if
        any) is not touched. Runs on the calling thread.
        """
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            msg = f"position must be an int >= 0, got {position!r}"
            raise InvalidConfigError(msg)
        instance = cls(store, **options)
        instance._engine.frozen = True
        reader = store.projection_host.reader()
        after = 0
        while after < position:
            page = reader.read_page(after, 1000, upto=position)
            if not page:
                break
            for event in page:
                instance._apply_directly(event)
            after = page[-1].position
        instance._engine.progress.position = after
        instance._engine.progress.status = "stopped"
        return instance

    def _apply_directly(self, event: Event[Any]) -> None:
        """Apply one event on the calling thread, errors propagating."""
        for handler in self._handler_table.get(event.type, ()):
            handler(self, event)

    def _fresh_copy(self) -> Self:
        args, kwargs = self._engine.ctor
        fresh = type(self)(*args, **kwargs)
        fresh._engine.frozen = True
        return fresh

    def _adopt(self, fresh: Projection) -> None:
        """Take over ``fresh``'s read model (projection thread only)."""
        state = {k: v for k, v in vars(fresh).items() if k != "_engine"}
        for key in [k for k in vars(self) if k != "_engine"]:
            delattr(self, key)
        vars(self).update(state)
