"""Reports and 收到 written in batches (bot/batches.py): one commit per batch, in order,
confirmed after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import pytest
from sqlalchemy import event

from bot.config import Config
from bot.service import AckOutcome, GroupWrite, Reported
from escalation.hazard import HazardState
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import (
    CHIEF,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    SUPERVISOR_B,
    T0,
    Database,
)

REPORT = "3号楼塔吊配重块松动了"
SITE = (33.5975, 119.0153)

Batch = Sequence[GroupWrite]
Outcomes = list[Reported | AckOutcome | None]


Write = Callable[[Batch], Awaitable[Outcomes]]


def around_writes(
    bot: BotUnderTest,
    monkeypatch: pytest.MonkeyPatch,
    wrapper: Callable[[Batch, Write], Awaitable[Outcomes]],
) -> None:
    """Run every batch the service is asked to write through `wrapper(batch, write)`."""
    service = bot.runtime.service
    original = service.record_many

    async def wrapped(items: Batch) -> Outcomes:
        return await wrapper(items, original)

    monkeypatch.setattr(service, "record_many", wrapped)


def batch_sizes(bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every batch the service is asked to write."""
    sizes: list[int] = []

    async def counted(items: Batch, write: Write) -> Outcomes:
        sizes.append(len(items))
        return await write(items)

    around_writes(bot, monkeypatch, counted)
    return sizes


def paused_writes(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every batch before it is written: `entered` is set when one waits, and it goes
    on once `release` is set."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(items: Batch, write: Write) -> Outcomes:
        entered.set()
        await release.wait()
        return await write(items)

    around_writes(bot, monkeypatch, slow)
    return entered, release


def failing_writes(bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every batch holding a message whose id is in the returned list fails to be written."""
    poisoned: list[int] = []

    async def flaky(items: Batch, write: Write) -> Outcomes:
        if any(item.msg.message_id in poisoned for item in items):
            raise RuntimeError("cannot be written")
        return await write(items)

    around_writes(bot, monkeypatch, flaky)
    return poisoned


async def test_acks_fetched_together_share_one_commit_and_read_as_one_by_one(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three 收到 posted at once: one batch; still one reminder, then a 👀 each, in order."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        sizes = batch_sizes(bot, monkeypatch)
        acks = [
            bot.api.post_text(GROUP, user, "收到", reply_to=report["message_id"])
            for user in (SAFETY, SUPERVISOR_A, CHIEF)
        ]
        await bot.settle()
        assert sizes == [3]
        texts = bot.group_texts()
        assert len(texts) == 2
        assert texts[1].startswith("「收到」不算到场确认")
        assert [int(r["message_id"]) for r in bot.api.reactions(GROUP)] == [
            acks[1]["message_id"],
            acks[2]["message_id"],
        ]
        events = await bot.events("acknowledged")
        assert [e.actor_id for e in events] == [SAFETY, SUPERVISOR_A, CHIEF]


async def test_an_update_is_confirmed_only_once_its_ack_is_committed(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the batch's transaction has not committed, Telegram still holds the update."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        entered, release = paused_writes(bot, monkeypatch)
        bot.api.post_text(GROUP, SAFETY, "收到", reply_to=report["message_id"])
        try:
            await asyncio.wait_for(entered.wait(), 5)
            await asyncio.sleep(1.5)  # longer than polling waits before asking again
            assert bot.api.pending_update_count == 1
        finally:
            release.set()
        await bot.settle()
        assert bot.api.pending_update_count == 0
        assert len(await bot.events("acknowledged")) == 1


async def test_a_photo_after_a_waiting_ack_finds_it_recorded(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """收到 then on-site evidence, fetched together: the 收到 is written first, as it came."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        sizes = batch_sizes(bot, monkeypatch)
        bot.api.post_text(GROUP, SAFETY, "收到", reply_to=report["message_id"])
        bot.api.post_location(GROUP, SAFETY, *SITE, reply_to=report["message_id"])
        bot.api.post_text(GROUP, SUPERVISOR_A, "收到", reply_to=report["message_id"])
        await bot.settle()
        assert sizes == [1, 1]  # the location waited for the first; the last came after
        kinds = [e.kind for e in await bot.events() if e.kind in ("acknowledged", "on_site")]
        # The second 收到 came after the visit: the hazard was no longer open, as before batches.
        assert kinds == ["acknowledged", "on_site"]
        assert [h.state for h in await bot.hazards()] == [HazardState.ON_SITE]


async def test_a_batch_that_fails_is_written_one_by_one_so_one_bad_ack_fails_alone(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 收到 that cannot be written does not take the others of its batch with it, and
    every update is confirmed; the bot goes on answering."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        poisoned = failing_writes(bot, monkeypatch)
        first = bot.api.post_text(GROUP, SAFETY, "收到", reply_to=report["message_id"])
        bad = bot.api.post_text(GROUP, SUPERVISOR_A, "收到", reply_to=report["message_id"])
        last = bot.api.post_text(GROUP, CHIEF, "收到", reply_to=report["message_id"])
        poisoned.append(bad["message_id"])
        await bot.settle()
        assert bot.api.pending_update_count == 0
        events = await bot.events("acknowledged")
        assert [e.detail["message_id"] for e in events] == [
            first["message_id"],
            last["message_id"],
        ]
        await bot.say(REPORTER, "5号楼外架连墙件被拆了好几根")
        assert "#2" in bot.group_texts()[-1]


async def test_a_batch_writes_in_as_many_statements_for_five_acks_as_for_two(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's writes are one statement per table, not one per 收到 or per sender: 收到 come
    at different moments, and writing them grouped by time ran one statement each."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])  # the reminder, once
        writes: list[str] = []

        def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            # What recording a 收到 writes (on PostgreSQL its INSERTs share one WITH statement,
            # storage/repositories.py: write_held); the outbox's claims and marks are UPDATEs.
            if "INSERT INTO" in statement or "dedupe_key =" in statement:
                writes.append(statement)

        event.listen(bot.runtime.db.sync_engine, "before_cursor_execute", record)
        counts: list[int] = []

        async def counted(acks: Batch, write: Write) -> Outcomes:
            before = len(writes)
            outcomes = await write(acks)
            counts.append(len(writes) - before)
            assert outcomes == [AckOutcome.REACTED] * len(acks)
            return outcomes

        around_writes(bot, monkeypatch, counted)
        for batch in ((SUPERVISOR_A, CHIEF), (SUPERVISOR_B, OUTSIDER, REPORTER, SAFETY, CHIEF)):
            for user in batch:
                bot.api.post_text(GROUP, user, "收到", reply_to=report["message_id"])
            await bot.settle()
        assert counts[0] == counts[1] > 0
        assert len(await bot.events("acknowledged")) == 8
        assert len(bot.api.reactions(GROUP)) == 7


async def test_reports_and_the_acks_to_them_fetched_together_share_one_commit(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report, a 收到 to it and another report, posted at once: one batch, written in order
    (the 收到 finds the report before it), each report with its card, and the engine woken
    once, by the earliest deadline."""
    async with running_bot(config, database, start=T0) as bot:
        sizes = batch_sizes(bot, monkeypatch)
        writes = bot.runtime.writes
        woken: list[datetime] = []
        wake = writes._deadline_set

        async def recorded(when: datetime) -> None:
            woken.append(when)
            await wake(when)

        monkeypatch.setattr(writes, "_deadline_set", recorded)
        first = bot.api.post_text(GROUP, REPORTER, REPORT)
        bot.api.post_text(GROUP, SAFETY, "收到", reply_to=first["message_id"])
        bot.api.post_text(GROUP, REPORTER, "5号楼外架连墙件被拆了好几根，随时会塌")
        await bot.settle()
        assert sizes == [3]
        hazards = await bot.hazards()
        assert [h.number for h in hazards] == [1, 2]
        assert hazards[0].report_message_id == first["message_id"]
        assert [e.actor_id for e in await bot.events("acknowledged")] == [SAFETY]
        texts = bot.group_texts()
        assert any("#1" in t for t in texts)
        assert any("#2" in t for t in texts)
        assert any(t.startswith("「收到」不算到场确认") for t in texts)
        assert woken == [min(h.deadline for h in hazards if h.deadline is not None)]


async def test_a_report_is_confirmed_only_once_it_is_committed(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the batch holding a report has not committed, Telegram still holds its update
    and no card is sent; after the commit, both follow."""
    async with running_bot(config, database, start=T0) as bot:
        entered, release = paused_writes(bot, monkeypatch)
        bot.api.post_text(GROUP, REPORTER, REPORT)
        try:
            await asyncio.wait_for(entered.wait(), 5)
            await asyncio.sleep(1.5)  # longer than polling waits before asking again
            assert bot.api.pending_update_count == 1
            assert bot.group_texts() == []
        finally:
            release.set()
        await bot.settle()
        assert bot.api.pending_update_count == 0
        assert [h.number for h in await bot.hazards()] == [1]
        assert "#1" in bot.group_texts()[-1]


async def test_a_report_that_cannot_be_written_fails_alone(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report that fails does not take the report and 收到 of its batch with it: they are
    written one by one, every update is confirmed, and the next report gets the next #N."""
    async with running_bot(config, database, start=T0) as bot:
        poisoned = failing_writes(bot, monkeypatch)
        bad = bot.api.post_text(GROUP, REPORTER, REPORT)
        poisoned.append(bad["message_id"])
        good = bot.api.post_text(GROUP, SUPERVISOR_B, "5号楼外架连墙件被拆了好几根，随时会塌")
        bot.api.post_text(GROUP, SAFETY, "收到", reply_to=good["message_id"])
        await bot.settle()
        assert bot.api.pending_update_count == 0
        hazards = await bot.hazards()
        assert [(h.number, h.report_message_id) for h in hazards] == [(1, good["message_id"])]
        assert [e.actor_id for e in await bot.events("acknowledged")] == [SAFETY]
        await bot.say(REPORTER, "6号楼基坑边堆土太高")
        assert [h.number for h in await bot.hazards()] == [1, 2]


async def test_messages_delivered_again_are_neither_recorded_nor_answered_twice(
    config: Config, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """After a crash between a batch's commit and its confirmation, Telegram delivers its
    updates again: the report keeps its #N, each 收到 keeps its one event and its one answer
    (the reminder, or a 👀), and nothing fails on the way."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        first = bot.api.post_text(GROUP, SAFETY, "收到", reply_to=report["message_id"])
        second = bot.api.post_text(GROUP, SUPERVISOR_A, "收到", reply_to=report["message_id"])
        await bot.settle()
        texts, reactions = bot.group_texts(), bot.api.reactions(GROUP)
        assert len(texts) == 2  # the card and the reminder
        assert len(reactions) == 1
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for message in (report, first, second):
                bot.api.world.enqueue("message", message)
            await bot.settle()
            await bot.outbox_quiet()
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert [h.number for h in await bot.hazards()] == [1]
        assert [e.actor_id for e in await bot.events("acknowledged")] == [SAFETY, SUPERVISOR_A]
        assert bot.group_texts() == texts
        assert bot.api.reactions(GROUP) == reactions


async def test_a_wake_up_that_fails_leaves_the_batch_committed_and_confirmed(
    config: Config,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The engine cannot be woken by a new deadline: the report is registered all the same,
    its card sent and its update confirmed; the error is logged, and the sweep stays the net."""
    async with running_bot(config, database, start=T0) as bot:

        async def broken(_when: datetime) -> None:
            raise RuntimeError("no job queue")

        monkeypatch.setattr(bot.runtime.writes, "_deadline_set", broken)
        with caplog.at_level(logging.ERROR):
            await bot.say(REPORTER, REPORT)
        assert bot.api.pending_update_count == 0
        assert [h.number for h in await bot.hazards()] == [1]
        assert "#1" in bot.group_texts()[-1]
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            "could not wake the engine by a new deadline"
        ]
        await bot.say(REPORTER, "5号楼外架连墙件被拆了好几根，随时会塌")
        assert [h.number for h in await bot.hazards()] == [1, 2]
