"""SQLite behind the storage seam (:mod:`swarmlog.actors.storage`).

``storage``: the writing connection, the reader pool, the format checks and
migrations; ``backfill``: the format 2 column backfill; ``files``: the file
checks before opening, the lock, the WAL checkpoint runner; ``fork``: copying
a store file up to a position. No module here is an actor.
"""
