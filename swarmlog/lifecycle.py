"""Process life: open stores at interpreter exit and in a forked child.

Exit: every engine thread is a daemon thread, so a store that was never
shut down cannot hold the process (Python joins non-daemon threads before
``atexit`` hooks run). One ``atexit`` hook then shuts down every store still
open: it drains what was queued, makes it durable and stops the threads.
The hook runs after the program's own non-daemon threads were joined, so
their appends land first. Stores are held weakly: a store nobody references
is not kept alive by this registry.

Fork: after ``os.fork()`` the child holds copies of the parent's connections,
lock descriptor and actor objects but none of its threads. A hook registered
with ``os.register_at_fork`` fences every open store in the child: each
call raises :class:`ForkedStoreError`, the inherited lock descriptor is
closed without unlocking (a ``flock`` belongs to the open file description
both processes share, so an unlock would free the parent's lock), and
``shutdown()`` and the exit hook do nothing. The parent is not affected.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Protocol

from swarmlog.schema.errors import StoreClosedError

__all__ = ["ForkedStoreError", "ProcessBound", "register", "unregister"]

logger = logging.getLogger("swarmlog")


class ForkedStoreError(StoreClosedError):
    """The store was opened by the parent of this forked process.

    Its connections and lock belong to the parent; open a new
    ``EventStore`` in the child (once the parent has released the file).

    Attributes:
        path: The database file.
        pid: The process that opened the store.
    """

    def __init__(self, path: str, pid: int) -> None:
        self._init_args = (path, pid)
        self.path = path
        self.pid = pid
        msg = (
            f"this EventStore on {path!r} was opened by process {pid}, the "
            "parent of this forked process; open a new EventStore here"
        )
        super().__init__(msg)


class ProcessBound(Protocol):
    """What the registry needs of a store (the facade implements it)."""

    def _shutdown_at_exit(self) -> None:
        """Shut down at interpreter exit (main thread, atexit)."""

    def _fence_after_fork(self) -> None:
        """Refuse every call from now on (the forked child's only thread)."""


class _Registry:
    """The open stores of this process, held weakly, in opening order."""

    def __init__(self) -> None:
        # Reentrant: a store collected by a GC run inside a locked section
        # calls forget() on the same thread.
        self.lock = threading.RLock()
        self.stores: dict[int, weakref.ref[ProcessBound]] = {}

    def forget(self, key: int) -> None:
        # A tracked store became garbage: drop its dead reference. A weakref
        # callback runs on whichever thread collected it (the writer's,
        # too) and must never wait: the main thread may hold the lock under
        # a signal handler that waits for the writer. A dead reference left
        # behind is skipped by tracked() and pruned by the next register().
        if not self.lock.acquire(blocking=False):
            return
        try:
            ref = self.stores.get(key)
            if ref is not None and ref() is None:
                del self.stores[key]
        finally:
            self.lock.release()

    def tracked(self) -> list[ProcessBound]:
        with self.lock:
            refs = list(self.stores.values())
        stores = [ref() for ref in reversed(refs)]  # the latest opened first
        return [store for store in stores if store is not None]


_registry = _Registry()


def register(store: ProcessBound) -> None:
    """Track an open store until :func:`unregister` (any thread)."""
    key = id(store)
    with _registry.lock:
        stores = _registry.stores
        # list(): collecting garbage here may run forget() on this very
        # thread (the lock is reentrant), changing the dict under the loop.
        for dead in [k for k, ref in list(stores.items()) if ref() is None]:
            stores.pop(dead, None)
        stores[key] = weakref.ref(store, lambda _: _registry.forget(key))


def unregister(store: ProcessBound) -> None:
    """Stop tracking a store (it shut down; any thread)."""
    with _registry.lock:
        ref = _registry.stores.get(id(store))
        if ref is not None and ref() is store:
            del _registry.stores[id(store)]


def _shutdown_all() -> None:
    """The exit hook: shut down every open store (main thread, atexit)."""
    for store in _registry.tracked():
        try:
            store._shutdown_at_exit()
        except BaseException:  # one store's failure must not strand the others
            logger.exception("swarmlog: a store failed to shut down at exit")


def _after_fork_in_child() -> None:
    """Fence the parent's stores (the child's only thread, right after fork)."""
    _registry.lock = threading.RLock()  # another parent thread may have held it
    stores = [ref() for ref in list(_registry.stores.values())]
    _registry.stores.clear()
    for store in stores:
        if store is None:
            continue
        try:
            store._fence_after_fork()
        except BaseException:  # never fail the fork itself
            logger.exception("swarmlog: could not fence a store after fork")


atexit.register(_shutdown_all)
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
