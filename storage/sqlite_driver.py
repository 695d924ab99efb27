"""aiosqlite as SQLAlchemy's async SQLite driver, with one trip to its thread per statement.

SQLAlchemy's aiosqlite adapter makes a statement four trips to aiosqlite's worker thread: make
a cursor, execute, fetch the rows, close the cursor. Each trip is a future the thread resolves
by waking the event loop, and the loop is the bot's busiest resource: a statement cost its
thread 0.49-0.53 ms of CPU that way, and costs 0.28 ms here, where all four happen in one
function run on the worker thread (a micro-benchmark on one host; BENCHMARKS.md, fix 16). Only
the cursor changes; connections, transactions, errors and server-side cursors are SQLAlchemy's
and aiosqlite's own.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Result = tuple[Any, list[Any], int, int | None]


def _run(
    conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool
) -> _Result:
    """On aiosqlite's thread: the whole statement, and everything SQLAlchemy reads after it;
    first the transaction's BEGIN, if it waits for this statement."""
    cursor = conn.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        # rowcount after the rows: with RETURNING, SQLite counts rows as they are stepped.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement, rows and counts come back from the thread together."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor is made here (SQLAlchemy's adapter makes one, one trip): the
        # statement makes its own on the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        return None  # the rows are already here, and the thread's cursor is closed

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            begin, adapted._begin = adapted._begin, None
            result: _Result = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, begin, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """A connection whose transaction costs no trip of its own but its COMMIT.

    A small transaction (BEGIN, one UPDATE, COMMIT) took four trips: its BEGIN goes with its
    first statement now, and the rollback SQLAlchemy's pool does on a connection it takes back
    is skipped when no transaction is open (most have just committed), 0.70 ms of the event
    loop's CPU where it was 1.03 ms (BENCHMARKS.md, fix 17).
    """

    __slots__ = ("_begin",)
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None

    def begin_with_next_statement(self, sql: str) -> None:
        """Run `sql` (BEGIN IMMEDIATE) on the thread just before the next statement, in its
        trip. Nothing happens on this connection in between, so the lock is taken before the
        transaction's first statement either way; if the BEGIN fails, that statement does."""
        self._begin = sql

    def commit(self) -> None:
        if self._begin is not None:  # no statement ran: no transaction was opened
            self._begin = None
            return
        super().commit()

    def rollback(self) -> None:
        self._begin = None
        # in_transaction reads SQLite's autocommit flag: no statement runs meanwhile, since
        # SQLAlchemy holds the connection, and without a transaction there is nothing to undo.
        sqlite = self._connection._connection
        if sqlite is not None and not sqlite.in_transaction:
            return
        super().rollback()


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=...)`)."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDbapi:
    return OneTripDbapi(aiosqlite, sqlite3)
