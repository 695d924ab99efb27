"""HazardService.record_many: a batch's reports and 收到 share their statements, and each is
written as it would have been alone, in the order they came."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Config
from bot.escalator import Escalator
from bot.service import (
    AckOutcome,
    AckToWrite,
    GroupMessage,
    GroupWrite,
    HazardService,
    Reported,
    ReportToWrite,
    Sender,
)
from bot.texts import Texts
from escalation.classifier import Classifier
from escalation.clock import FakeClock
from storage.models import HazardEvent, HazardRow, OutboxRow
from storage.uow import UnitOfWorkFactory
from tests.conftest import CHIEF, GROUP, REPORTER, SAFETY, SUPERVISOR_A, T0

REPORTS = (
    "3号楼塔吊配重块松动了",
    "5号楼外架连墙件被拆了好几根",
    "6号楼基坑边堆土太高，有塌方危险",
)


class Batch:
    """Messages of one group, numbered as Telegram would, made into batch items."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._next_id = 100
        self._classifier = Classifier()

    def _msg(self, user: int, text: str, reply_to: int | None) -> GroupMessage:
        self._next_id += 1
        return GroupMessage(GROUP, self._next_id, Sender(user, None, f"user{user}"), reply_to, text)

    def report(self, text: str, user: int = REPORTER) -> ReportToWrite:
        classification = self._classifier.classify(text)
        return ReportToWrite(self._msg(user, text, None), classification, self._clock.now())

    def ack(self, user: int, reply_to: GroupWrite | None = None) -> AckToWrite:
        replied = reply_to.msg.message_id if reply_to is not None else None
        return AckToWrite(self._msg(user, "收到", replied), self._clock.now())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(config: Config, uow: UnitOfWorkFactory, clock: FakeClock) -> HazardService:
    texts = Texts("zh", "Asia/Shanghai")
    return HazardService(config, uow, clock, Escalator(config, uow, clock, texts))


def statements_of(db_engine: AsyncEngine) -> list[str]:
    """Every statement run from now on, transaction control left out."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(db_engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_three_reports_and_their_acks_run_as_many_statements_as_one(
    service: HazardService, db_engine: AsyncEngine, clock: FakeClock
) -> None:
    """Numbers, senders, the hazards and their cards are written set by set: a batch of three
    reports, each with a 收到, costs the statements of a batch of one."""
    batch = Batch(clock)
    await service.record_many([batch.report(REPORTS[0])])  # the project exists from here on
    statements = statements_of(db_engine)
    one = [batch.report(REPORTS[0])]
    one.append(batch.ack(SAFETY, one[0]))
    outcomes = await service.record_many(one)
    assert outcomes[1] is AckOutcome.REMINDED
    for_one, statements[:] = len(statements), []
    three: list[GroupWrite] = [batch.report(text) for text in REPORTS]
    for user, report in zip((SAFETY, CHIEF, SAFETY), list(three), strict=True):
        three.append(batch.ack(user, report))
    outcomes = await service.record_many(three)
    assert [o.number for o in outcomes[:3] if isinstance(o, Reported)] == [3, 4, 5]
    assert outcomes[3:] == [AckOutcome.REMINDED] * 3
    if db_engine.dialect.name == "sqlite":
        # The ORM inserts a row at a time where it cannot tell the rows of a multi-row
        # RETURNING apart (SQLite, without a sentinel column): two more, and nothing else.
        hazards = [s for s in statements if s.startswith("INSERT INTO hazards ")]
        assert len(hazards) == 3
        for_one += 2
    assert len(statements) == for_one


async def test_what_a_batch_holds_is_one_statement_on_postgresql_and_all_of_it_lands(
    service: HazardService, db_engine: AsyncEngine, uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """A 收到's reminder flag, the batch's events and outbox rows and its senders are held to
    the commit. On PostgreSQL they are one statement there (four were four round trips that the
    next getUpdates waited for); on either database each of them is written."""
    batch = Batch(clock)
    old = batch.report(REPORTS[0])
    await service.record_many([old])
    statements = statements_of(db_engine)
    ack, new = batch.ack(SAFETY, old), batch.report(REPORTS[1])
    outcomes = await service.record_many([ack, new])
    assert outcomes[0] is AckOutcome.REMINDED
    held = [s for s in statements if "INSERT INTO hazard_events" in s]
    assert len(held) == 1
    if db_engine.dialect.name == "postgresql":
        for part in ("INSERT INTO outbox", "INSERT INTO people", "SET ack_reminded"):
            assert part in held[0]
        writes = [s for s in statements if s.lstrip().startswith(("INSERT", "UPDATE", "WITH"))]
        assert len(writes) == 3  # the number, the hazard, and what was held
    (again,) = await service.record_many([batch.ack(CHIEF, old)])
    assert again is AckOutcome.REACTED  # the flag was written: no second reminder
    async with uow() as u:
        assert (await u.people.get_many([SAFETY]))[SAFETY].name == f"user{SAFETY}"
        first = await u.hazards.by_number(GROUP, 1)
        assert first is not None
        assert [e.kind for e in await u.events.for_hazard(first.id)] == [
            "reported",
            "acknowledged",
            "acknowledged",
        ]
        assert await u.outbox.has_key(f"{first.id}:ack_reminder")


async def test_a_bare_ack_does_not_count_a_report_made_after_it_in_the_batch(
    service: HazardService, clock: FakeClock
) -> None:
    """A chain member's 收到 replying to nothing answers the group's only open hazard; a report
    that came after it in the same batch does not make that hazard one of two."""
    batch = Batch(clock)
    (first,) = await service.record_many([batch.report(REPORTS[0])])
    clock.advance(timedelta(minutes=1))
    outcomes = await service.record_many([batch.ack(SAFETY), batch.report(REPORTS[1])])
    assert outcomes[0] is AckOutcome.REMINDED
    assert isinstance(first, Reported)
    assert isinstance(outcomes[1], Reported)
    assert outcomes[1].number == first.number + 1


async def test_the_bare_acks_of_a_batch_read_the_open_hazards_once(
    service: HazardService, db_engine: AsyncEngine, clock: FakeClock
) -> None:
    """Each 收到 replying to nothing needs its group's open hazards: a batch reads them in one
    query however many 收到 it holds, and each still answers the group's only open hazard."""
    batch = Batch(clock)
    await service.record_many([batch.report(REPORTS[0])])
    clock.advance(timedelta(minutes=1))
    statements = statements_of(db_engine)
    outcomes = await service.record_many(
        [batch.ack(SAFETY), batch.ack(CHIEF), batch.ack(SUPERVISOR_A)]
    )
    assert outcomes == [AckOutcome.REMINDED, AckOutcome.REACTED, AckOutcome.REACTED]
    assert len([s for s in statements if "FROM hazards" in s]) == 1


async def test_the_same_report_twice_in_a_batch_is_registered_once(
    service: HazardService, uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """Delivered twice before either was written (a webhook retried): one hazard, one card."""
    report = Batch(clock).report(REPORTS[0])
    first, second = await service.record_many([report, report])
    assert isinstance(first, Reported)
    assert first.deadline is not None
    assert second == Reported(first.number, None)
    async with uow() as u:
        session = u.hazards._s
        assert len((await session.execute(select(HazardRow))).scalars().all()) == 1
        cards = await session.execute(select(OutboxRow).where(OutboxRow.purpose == "card"))
        assert len(cards.scalars().all()) == 1


async def test_events_and_messages_are_written_in_the_order_their_items_came(
    service: HazardService, uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """Reports are inserted before the 收到 are read, yet a 收到 to an older hazard that came
    before a new report gets its reminder queued before the new card, and its event first."""
    batch = Batch(clock)
    old = batch.report(REPORTS[0])
    await service.record_many([old])
    clock.advance(timedelta(minutes=1))
    ack, new = batch.ack(SUPERVISOR_A, old), batch.report(REPORTS[1])
    to_new = batch.ack(SAFETY, new)
    outcomes = await service.record_many([ack, new, to_new])
    assert outcomes[0] is AckOutcome.REMINDED
    assert outcomes[2] is AckOutcome.REMINDED
    async with uow() as u:
        session = u.hazards._s
        rows = (await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars().all()
        assert [(r.purpose, r.reply_to_message_id) for r in rows[1:]] == [
            ("ack_reminder", ack.msg.message_id),
            ("card", new.msg.message_id),
            ("ack_reminder", to_new.msg.message_id),
        ]
        events = (await session.execute(select(HazardEvent).order_by(HazardEvent.id))).scalars()
        assert [(e.kind, e.actor_id) for e in events.all()[1:]] == [
            ("acknowledged", SUPERVISOR_A),
            ("reported", REPORTER),
            ("acknowledged", SAFETY),
        ]


async def test_the_same_ack_twice_in_a_batch_is_recorded_and_answered_once(
    service: HazardService, uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """Delivered twice before either was written: one event, one reminder, and no failure."""
    batch = Batch(clock)
    report = batch.report(REPORTS[0])
    await service.record_many([report])
    ack = batch.ack(SAFETY, report)
    assert await service.record_many([ack, ack]) == [
        AckOutcome.REMINDED,
        AckOutcome.ALREADY_RECORDED,
    ]
    async with uow() as u:
        session = u.hazards._s
        kinds = (await session.execute(select(HazardEvent.kind))).scalars().all()
        assert sorted(kinds) == ["acknowledged", "reported"]
        purposes = (await session.execute(select(OutboxRow.purpose))).scalars().all()
        assert sorted(purposes) == ["ack_reminder", "card"]


async def test_a_bare_ack_delivered_again_is_not_recorded_twice(
    service: HazardService, uow: UnitOfWorkFactory, clock: FakeClock
) -> None:
    """A 收到 replying to nothing finds its hazard as the group's only open one; delivered again
    after a restart, it is known as recorded all the same."""
    batch = Batch(clock)
    await service.record_many([batch.report(REPORTS[0])])
    ack = batch.ack(SAFETY)
    assert await service.record_many([ack]) == [AckOutcome.REMINDED]
    assert await service.record_many([ack]) == [AckOutcome.ALREADY_RECORDED]
    async with uow() as u:
        kinds = (await u.hazards._s.execute(select(HazardEvent.kind))).scalars().all()
        assert sorted(kinds) == ["acknowledged", "reported"]
