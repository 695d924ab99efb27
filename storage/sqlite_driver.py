"""aiosqlite as SQLAlchemy's async SQLite driver, with statements run on the event loop's thread.

SQLAlchemy's aiosqlite adapter sends every statement to aiosqlite's worker thread, in four trips
(make a cursor, execute, fetch, close). Each trip is a future that the thread resolves by waking
the event loop, and the two threads then take turns at the GIL: under a busy group's load the
trips, not the statements, were the cost. Fix 16 made them one trip a statement; fix 17
(BENCHMARKS.md) runs the statement where the bot runs instead. A statement of this bot takes
microseconds: its pages are in memory, and it runs inside a transaction that already holds
SQLite's write lock, so nothing makes it wait.

What can wait still goes to the thread, where waiting blocks nothing:
- the COMMIT, which waits for the disk (fsync);
- a ROLLBACK;
- a BEGIN that finds another process holding the write lock (the CLI beside a running bot),
  retried there with the wait the engine was given.

Connections, transactions, errors and server-side cursors are SQLAlchemy's and aiosqlite's own.
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
from sqlalchemy.util import EMPTY_DICT, await_

_Result = tuple[Any, list[Any], int, int | None]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Result:
    """The whole statement, and everything SQLAlchemy reads after it."""
    cursor = conn.cursor()
    try:
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


def _begin_waiting(conn: sqlite3.Connection, begin: str, wait_ms: int) -> None:
    """On aiosqlite's thread: `begin`, waiting up to `wait_ms` for another process's lock."""
    conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        conn.execute(begin)
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that runs its statement at once, on the calling thread, rows and counts
    included."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor is made here (SQLAlchemy's adapter makes one, a trip to the
        # thread): each statement makes its own.
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
        return None  # the rows are already here, and the statement's cursor is closed

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._statement(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._statement(operation, seq_of_parameters, many=True)

    async def _statement(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted: InlineConnection = self._adapt_connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            await adapted.open_transaction()
            result = _run(adapted.sqlite, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)


class InlineConnection(AsyncAdapt_aiosqlite_connection):
    """A connection whose statements run inline, and whose transaction begins with the first.

    The BEGIN waits for the transaction's first statement, so a transaction with one UPDATE
    costs one trip to the thread, its COMMIT; the rollback SQLAlchemy's pool does on every
    connection it takes back is skipped when no transaction is open (most have just
    committed). A small transaction took four trips at fix 16.
    """

    __slots__ = ("_begin", "_lock_wait_ms", "_wait_off_the_loop")
    _cursor_cls = InlineCursor

    def __init__(self, dbapi: Any, connection: Any, lock_wait_ms: int) -> None:
        super().__init__(dbapi, connection)
        self._begin: str | None = None
        self._lock_wait_ms = lock_wait_ms
        self._wait_off_the_loop = False

    @property
    def sqlite(self) -> sqlite3.Connection:
        return self._connection._conn  # type: ignore[no-any-return]

    def wait_for_locks_off_the_loop(self) -> None:
        """From now on nothing on this connection waits for a lock on the loop's thread: SQLite
        fails at once where another process holds the lock, and the BEGIN that met it waits
        on aiosqlite's thread. Only for a database in WAL mode, where the BEGIN is all that
        waits (a COMMIT or a statement in a transaction holding the write lock never does)."""
        self.sqlite.execute("PRAGMA busy_timeout = 0")
        self._wait_off_the_loop = True

    def begin_with_next_statement(self, sql: str) -> None:
        """Run `sql` (BEGIN IMMEDIATE) just before the next statement. Nothing happens on this
        connection in between, so the lock is taken before the transaction's first statement
        either way; if the BEGIN fails, that statement does."""
        self._begin = sql

    async def open_transaction(self) -> None:
        """Run the BEGIN that waits for this statement, if any."""
        begin, self._begin = self._begin, None
        if begin is None:
            return
        try:
            self.sqlite.execute(begin)
        except sqlite3.OperationalError as error:
            if not (self._wait_off_the_loop and _busy(error)):
                raise
            await self._connection._execute(
                _begin_waiting, self.sqlite, begin, self._lock_wait_ms
            )

    def cursor(self, server_side: bool = False) -> Any:
        if server_side and self._begin is not None:  # aiosqlite's own cursor: begin here
            await_(self.open_transaction())
        return super().cursor(server_side)

    def commit(self) -> None:
        if self._begin is not None:  # no statement ran: no transaction was opened
            self._begin = None
            return
        super().commit()

    def rollback(self) -> None:
        self._begin = None
        # in_transaction reads SQLite's autocommit flag: without a transaction there is
        # nothing to undo.
        sqlite = self._connection._connection
        if sqlite is not None and not sqlite.in_transaction:
            return
        super().rollback()


class InlineDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=...)`)."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        # aiosqlite opens the connection on its thread; statements then run on the loop's.
        # SQLAlchemy never uses a connection from two places at once.
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        wait_ms = round(1000 * float(kw.get("timeout", 5.0)))  # sqlite3's default is 5 s
        return InlineConnection(self, adapted._connection, wait_ms)


def dbapi() -> InlineDbapi:
    return InlineDbapi(aiosqlite, sqlite3)
