"""Alembic environment: runs on the connection that storage.db.migrate hands over."""

from __future__ import annotations

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the command-line tool gets here
    msg = "run migrations through storage.db.migrate(engine)"
    raise RuntimeError(msg)

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
