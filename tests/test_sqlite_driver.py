"""SQLite's engine: statements on the event loop's thread, what waits on aiosqlite's, writers
queued in the process."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.sqlite_driver import InlineCursor


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


async def test_a_statement_with_rows_runs_without_a_trip_to_the_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        trips = Trips(monkeypatch)
        rows = (await conn.execute(text("SELECT 1, 'a' UNION SELECT 2, 'b'"))).all()
        assert trips.count == 0
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
        assert isinstance(conn.sync_connection.connection.dbapi_connection.cursor(), InlineCursor)  # type: ignore[union-attr]


async def test_a_transaction_costs_one_trip_its_commit(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN goes with the first statement, statements run inline, and the pool's rollback of a
    committed connection is skipped: a transaction with one INSERT is one trip, its COMMIT,
    where it was four. A transaction with no statement costs none; one left open is still
    rolled back, on the thread."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    trips = Trips(monkeypatch)
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
        await conn.execute(text("INSERT INTO t VALUES (2)"))
    assert trips.count == 1
    async with engine.begin():
        pass
    assert trips.count == 1
    async with engine.connect() as conn:  # not committed: rolled back when it closes
        await conn.execute(text("INSERT INTO t VALUES (3)"))
    assert trips.count == 2
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == [1, 2]


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


async def _ticking_while(work: Any) -> tuple[Any, int]:
    """What `work` returns (or raises) and how often the event loop ran a 10 ms sleep meanwhile."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        return await work, ticks
    finally:
        ticker.cancel()


async def test_waiting_for_another_process_s_lock_does_not_block_the_loop(tmp_path: Path) -> None:
    """Another process holds the write lock: the BEGIN waits for it on aiosqlite's thread while
    the bot goes on, and its transaction runs once the lock is free."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sitewalk.db", lock_wait_seconds=5)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
        other = sqlite3.connect(tmp_path / "sitewalk.db", timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.3, other.execute, "ROLLBACK")

        async def insert() -> None:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))

        _, ticks = await _ticking_while(insert())
        other.close()
        assert ticks >= 10  # the loop ran all along: 0.3 s of 10 ms sleeps
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == [1]
    finally:
        await engine.dispose()


async def test_a_begin_that_waits_too_long_fails_and_leaves_nothing_open(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sitewalk.db", lock_wait_seconds=0.2)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
        other = sqlite3.connect(tmp_path / "sitewalk.db", timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")

            async def insert() -> None:
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t VALUES (1)"))

            with pytest.raises(OperationalError, match="locked"):
                await _ticking_while(insert())
            other.execute("ROLLBACK")
        finally:
            other.close()
        async with engine.begin() as conn:  # the connection is usable: no transaction was left
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == [2]
    finally:
        await engine.dispose()


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
            order.append(0)
            holding.set()
            await asyncio.sleep(0.3)

    async def writer(n: int) -> None:
        await holding.wait()
        await asyncio.sleep(0.02 * n)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            order.append(n)

    await asyncio.gather(first(), *(writer(n) for n in range(1, 8)))
    assert order == list(range(8))
