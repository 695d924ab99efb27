"""Database engines for SQLite and PostgreSQL, and bringing the schema up to date on start."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, inspect, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_driver

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# The newest revision in storage/migrations/versions (a test holds the two together). A database
# already there is not handed to Alembic at all: importing it and reading every revision took
# about 150 ms of each start, before the catch-up could begin.
HEAD_REVISION = "0005"


def create_engine(
    url: str, *, schema: str | None = None, echo: bool = False, lock_wait_seconds: float = 30.0
) -> AsyncEngine:
    """An async engine; on SQLite every transaction takes the write lock at BEGIN.

    SQLite upgrades a read transaction to a write one only if nobody wrote in between; with
    handlers and the sweep in one process that fails with "database is locked". BEGIN IMMEDIATE
    serialises writers up front instead, each waiting up to `lock_wait_seconds` for another
    process's lock. `schema` puts PostgreSQL tables in their own schema, which tests use to
    isolate runs.
    """
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": compact_json}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": lock_wait_seconds}
        if url.startswith("sqlite+aiosqlite:"):
            kwargs["module"] = sqlite_driver.dbapi()  # statements on the loop's thread
        if make_url(url).database not in (None, "", ":memory:"):
            # SQLite has one writer, and every transaction here writes (BEGIN IMMEDIATE). With
            # more connections, the others waited in SQLite's busy handler, which sleeps 1, 2,
            # 5, 10 ms... between tries: each batch of reports and 收到 waited several ms past
            # the commit it waited for, in no order (benchmarks/ingest.py). One connection makes
            # them queue for it in the process instead, in order, each the moment it is free.
            # Other processes (the CLI beside a running bot) still meet the busy handler.
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=30)
    elif schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _serialise_sqlite_writes(engine)
    return engine


def compact_json(value: Any) -> str:
    """JSON columns' text: UTF-8 as it is, no spaces.

    The default escapes every Chinese character as six bytes (\\u9879) and spaces every
    separator: a hazard's chain snapshot took 426 bytes where 328 say the same, and the sweep
    rewrites the whole row at every step (BENCHMARKS.md, fix 20).
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8: keep it escaped
            return json.dumps(value, separators=(",", ":"))
    return text


def _serialise_sqlite_writes(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        wal = cursor.fetchone()[0] == "wal"  # a database in memory keeps its own mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if wal and isinstance(dbapi_connection, sqlite_driver.InlineConnection):
            dbapi_connection.wait_for_locks_off_the_loop()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        driver = conn.connection.dbapi_connection
        if isinstance(driver, sqlite_driver.InlineConnection):
            driver.begin_with_next_statement("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [HEAD_REVISION]


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Create the schema, or upgrade it to the newest Alembic revision."""
    async with engine.begin() as conn:
        if not await conn.run_sync(_at_head):
            await conn.run_sync(_upgrade)
