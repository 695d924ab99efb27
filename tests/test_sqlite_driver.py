"""SQLite's engine: one trip to aiosqlite's thread a statement (a transaction's BEGIN riding with
its first), writers queued in the process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlite3

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.sqlite_driver import OneTripCursor


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sitewalk.db")
    yield engine
    await engine.dispose()


class Trips:
    """Counts the functions run on aiosqlite's thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = aiosqlite.Connection._execute

        async def counted(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(conn, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)


async def test_a_statement_with_rows_is_one_trip(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        trips = Trips(monkeypatch)
        rows = (await conn.execute(text("SELECT 1, 'a' UNION SELECT 2, 'b'"))).all()
        assert trips.count == 1
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
        assert isinstance(conn.sync_connection.connection.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_a_transaction_costs_its_statements_and_its_commit(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN goes with the first statement and the pool's rollback of a committed connection is
    skipped: one UPDATE in a transaction is two trips, where it was four. A transaction with no
    statement costs none; one left open is still rolled back."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    trips = Trips(monkeypatch)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    assert trips.count == 2
    async with engine.begin():
        pass
    assert trips.count == 2
    async with engine.connect() as conn:  # not committed: rolled back when it closes
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    assert trips.count == 4
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == [1]


async def test_the_write_lock_is_taken_before_the_first_statement(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """A transaction whose first statement only reads still holds SQLite's write lock from then
    on (its BEGIN IMMEDIATE ran first): another process cannot write until it ends."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    other = sqlite3.connect(tmp_path / "sitewalk.db", timeout=0, isolation_level=None)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT count(*) FROM t"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once it committed
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_begin_that_fails_fails_the_first_statement_and_leaves_nothing_open(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
        await conn.exec_driver_sql("PRAGMA busy_timeout = 50")  # the one pooled connection
    other = sqlite3.connect(tmp_path / "sitewalk.db", timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        other.execute("ROLLBACK")
    finally:
        other.close()
    async with engine.begin() as conn:  # the connection is usable: no transaction was left
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == [2]


async def test_counts_ids_returning_and_many_reach_sqlalchemy(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}, {"v": "d"}]
        )
        assert many.rowcount == 3
        updated = await conn.execute(text("UPDATE t SET v = v || '!' WHERE id > 2"))
        assert updated.rowcount == 2
        returned = await conn.execute(
            text("UPDATE t SET v = upper(v) WHERE id <= 2 RETURNING id, v")
        )
        assert sorted(tuple(r) for r in returned) == [(1, "A"), (2, "B")]
        assert returned.rowcount == 2


async def test_errors_stay_sqlalchemys_and_roll_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v TEXT UNIQUE)"))
        await conn.execute(text("INSERT INTO t VALUES ('a')"))

    async def insert_b_then_a_again() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES ('b')"))
            await conn.execute(text("INSERT INTO t VALUES ('a')"))

    with pytest.raises(IntegrityError):
        await insert_b_then_a_again()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == ["a"]


async def test_writers_in_one_process_take_turns_in_the_order_they_came(
    engine: AsyncEngine,
) -> None:
    """Seven transactions wait behind one that holds the write lock; each starts in turn.

    With a connection each, they waited in SQLite's busy handler, whose growing sleeps let a
    later one go first (this test failed so, every time it was tried)."""
    order: list[int] = []
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    holding = asyncio.Event()

    async def first() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (0)"))
            holding.set()
            await asyncio.sleep(0.3)
        order.append(0)

    async def writer(n: int) -> None:
        await holding.wait()
        await asyncio.sleep(0.02 * n)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            order.append(n)

    await asyncio.gather(first(), *(writer(n) for n in range(1, 8)))
    assert order == list(range(8))
