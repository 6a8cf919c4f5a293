"""Alembic environment: migrations run on a connection handed over by `storage.migrate`.

The connection already holds the server's database lock, so concurrent upgrades (several processes
starting at once) run one after the other, and the second finds nothing left to do.
"""

from __future__ import annotations

from alembic import context

from authgate.server.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `authgate db upgrade`, not the alembic command")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
