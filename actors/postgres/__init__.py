"""PostgreSQL behind the storage seam (:mod:`swarmlog.actors.storage`).

``url``: recognising and redacting a connection URL, the schema name check
(no driver import: the SQLite path imports it too); ``connection``: opening
connections, the idle health check, the one boundary where psycopg errors
become typed swarmlog errors; ``sql``: the DDL and statements of one schema;
``layout``: creating, checking and migrating the schema; ``write``: the
writing connection; ``read``: the reader pool. Only ``url`` may be imported
without psycopg installed. No module here is an actor.
"""
