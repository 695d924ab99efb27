"""The unit of work: one transaction per update, per batch of reports and 收到, or per sweep."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories import (
    EventRepository,
    EvidenceRepository,
    HazardRepository,
    OutboxRepository,
    PersonRepository,
    ProjectRepository,
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
    ) -> None:
        self._sessions = sessions
        self._before = before
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        if self._before is not None:
            await self._before()
        session = self._sessions()
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
        """Write everything pending: entities, then the events and outbox rows held back.

        (There is no savepoint: a savepoint rolled back could not take back the rows held.)
        """
        assert self._session is not None
        await self._session.flush()
        await self.events.write_pending()
        await self.outbox.write_pending()


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

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.before)
