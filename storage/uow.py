"""The unit of work: one transaction per update, per batch of reports and 收到, or per sweep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.repositories import (
    EventRepository,
    EvidenceRepository,
    HazardRepository,
    OutboxRepository,
    PersonRepository,
    ProjectRepository,
    write_held,
)


class UnitOfWork:
    """`async with uow:` opens a transaction; nothing is kept unless `commit()` is called."""

    projects: ProjectRepository
    people: PersonRepository
    hazards: HazardRepository
    events: EventRepository
    evidence: EvidenceRepository
    outbox: OutboxRepository

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        before: Callable[[], Awaitable[None]] | None = None,
        *,
        bind: AsyncEngine | None = None,
    ) -> None:
        self._sessions = sessions
        self._before = before
        self._bind = bind  # another engine than the sessions' (see one_statement)
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        if self._before is not None:
            await self._before()
        session = self._sessions() if self._bind is None else self._sessions(bind=self._bind)
        self._session = session
        self.projects = ProjectRepository(session)
        self.people = PersonRepository(session)
        self.hazards = HazardRepository(session)
        self.events = EventRepository(session)
        self.evidence = EvidenceRepository(session)
        self.outbox = OutboxRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # close() rolls back what was not committed, and leaves loaded rows readable (detached).
        await self._session.close()
        self._session = None

    async def commit(self) -> None:
        assert self._session is not None
        await self.flush()
        await self._session.commit()

    async def flush(self) -> None:
        """Write everything pending: entities, then the rows the repositories hold back.

        (There is no savepoint: a savepoint rolled back could not take back the rows held.)
        """
        assert self._session is not None
        await write_held(self._session, self.hazards, self.events, self.outbox, self.people)


class UnitOfWorkFactory:
    """Makes a fresh UnitOfWork per use; what services are given instead of a session.

    `before` runs ahead of every unit of work: the bot writes reports and acknowledgements in
    batches (`bot/batches.py`) and lets every other transaction begin only once those handled
    before it are committed, so that each sees the database as one update at a time would have
    left it.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.before = before
        engine = sessions.kw.get("bind")
        self._autocommit: AsyncEngine | None = None
        if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
            self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.before)

    def one_statement(self) -> UnitOfWork:
        """A unit of work for what one statement does, atomic by itself (the outbox's lease of
        rows, or its mark of a sent message).

        On PostgreSQL it runs without BEGIN and COMMIT, two round trips to the server of its
        three; on SQLite it is an ordinary transaction, which costs no trip of its own there
        (`storage/sqlite_driver.py`). A second statement in it would commit on its own.
        """
        return UnitOfWork(self.sessions, self.before, bind=self._autocommit)
