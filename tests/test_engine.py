"""The escalation engine over real HTTP: whole chains on a fake clock, failures as data, two engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config, parse_config
from bot.engine import EscalationEngine
from bot.escalator import Escalator
from bot.outbox_rows import enqueue_message
from bot.texts import Texts
from storage.db import session_factory
from storage.models import HazardEvent, HazardRow, OutboxRow
from storage.uow import UnitOfWorkFactory
from tests.botkit import running_bot
from tests.conftest import (
    CHIEF,
    CONFIG_TOML,
    GROUP,
    REPORTER,
    SUPERVISOR_A,
    SUPERVISOR_B,
    T0,
    Database,
)

REPORT = "5号楼外架连墙件被拆了好几根,架子有点晃"


def escalation_dms(texts: list[str], number: int = 1) -> list[str]:
    return [t for t in texts if f"#{number}" in t]


async def test_a_whole_chain_on_a_fake_clock(config: Config, database: Database) -> None:
    """Level 2 at 09:30, level 3 at 10:00, two reminders at 11:00 and 11:30, then silence;
    every step is in the hazard's log exactly once."""
    async with running_bot(config, database, start=T0) as bot:
        for user in (SUPERVISOR_A, SUPERVISOR_B, CHIEF):
            bot.api.start_bot(user)
        await bot.say(REPORTER, REPORT)
        for _ in range(12):  # 09:00 → 12:00 in 15-minute steps
            await bot.advance(timedelta(minutes=15))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A))) == 1
        assert len(escalation_dms(bot.dms(SUPERVISOR_B))) == 1
        chief = escalation_dms(bot.dms(CHIEF))
        assert len(chief) == 3
        assert "提醒(1/2)" in chief[1]
        assert "提醒(2/2)" in chief[2]
        escalated = await bot.events("escalated")
        assert [e.detail["level"] for e in escalated] == [2, 3]
        assert [e.detail["repeat"] for e in await bot.events("reminded")] == [1, 2]
        [hazard] = await bot.hazards()
        assert hazard.deadline is None
        assert (hazard.level, hazard.repeats) == (3, 2)


async def test_catch_up_after_downtime_names_the_skipped_level(
    config: Config, database: Database
) -> None:
    """Waking at 10:05 after a stop at 09:10 goes straight to level 3 and says level 2 was
    skipped, with the time the hazard has been overdue since."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(CHIEF)
        await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=65))
        await bot.tick()
        [dm] = escalation_dms(bot.dms(CHIEF))
        assert "跳过了第 2 级" in dm
        assert "09:30" in dm
        assert escalation_dms(bot.dms(SUPERVISOR_A)) == []
        [event] = await bot.events("escalated")
        assert event.detail["skipped"] == [2]


async def test_blocked_supervisor_is_recorded_and_the_group_told_once(
    config: Config, database: Database
) -> None:
    """A started supervisor who blocked the bot: 403 is logged, they are marked unreachable,
    the group hears it once, and escalation goes on to level 3."""
    async with running_bot(config, database, start=T0) as bot:
        for user in (SUPERVISOR_A, SUPERVISOR_B, CHIEF):
            bot.api.start_bot(user)
        await bot.settle()
        bot.api.block_bot(SUPERVISOR_B)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        assert [e.actor_id for e in await bot.events("dm_failed")] == [SUPERVISOR_B]
        [told] = [t for t in bot.group_texts() if "无法私信" in t]
        assert "监理李工" in told
        assert "?start=" in told
        async with bot.runtime.uow() as uow:
            assert not (await uow.people.get_many([SUPERVISOR_B]))[SUPERVISOR_B].started
        await bot.advance(timedelta(minutes=31))
        assert len(escalation_dms(bot.dms(CHIEF))) == 1


async def test_groups_whose_chains_are_alike_each_get_their_own_start_link(
    database: Database,
) -> None:
    """Two groups with chains written alike share one chain snapshot in the sweep, which renders
    a level's notice once, around the #N: each group's notice still links to its own start."""
    other = GROUP - 1
    second = CONFIG_TOML.split("[[projects]]", 1)[1]
    second = second.replace(str(GROUP), str(other)).replace("邮政南苑小区改造", "第二个项目")
    config = parse_config(CONFIG_TOML + "[[projects]]" + second)
    async with running_bot(config, database, start=T0) as bot:
        bot.api.post_text(GROUP, REPORTER, REPORT)
        bot.api.post_text(other, REPORTER, REPORT)
        await bot.settle()
        await bot.advance(timedelta(minutes=31))
        for chat in (GROUP, other):
            texts = [m.get("text", "") for m in bot.api.sent(chat)]
            [told] = [t for t in texts if "无法私信" in t]
            assert f"?start=p{abs(chat)}" in told


async def test_notices_waiting_together_in_a_group_go_out_as_one_message(
    config: Config, database: Database
) -> None:
    """Two hazards escalating in the same sweep: each supervisor gets a DM per hazard, and the
    group one message naming both, which both notice rows record as sent."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.say(REPORTER, "3号楼塔吊配重块松动了")
        before = len(bot.group_texts())
        await bot.advance(timedelta(minutes=31))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A), 1)) == 1
        assert len(escalation_dms(bot.dms(SUPERVISOR_A), 2)) == 1
        [notice] = [t for t in bot.group_texts()[before:] if "🔺" in t]
        assert "#1" in notice
        assert "#2" in notice
        async with bot.runtime.uow() as uow:
            rows = [
                r for h in (1, 2) for r in await uow.outbox.for_hazard(h) if r.purpose == "notice"
            ]
        assert [r.status.value for r in rows] == ["sent", "sent"]
        assert rows[0].sent_message_id == rows[1].sent_message_id is not None


async def test_rate_limited_dm_waits_retry_after_then_arrives_once(
    config: Config, database: Database
) -> None:
    """A 429 with retry_after=20 leaves the DM pending until 20 s later; it is sent once."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        bot.api.inject("sendMessage", status=429, retry_after=20, chat_id=SUPERVISOR_A)
        await bot.advance(timedelta(minutes=31))
        assert escalation_dms(bot.dms(SUPERVISOR_A)) == []
        await bot.advance(timedelta(seconds=10))
        assert escalation_dms(bot.dms(SUPERVISOR_A)) == []
        await bot.advance(timedelta(seconds=11))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A))) == 1
        await bot.advance(timedelta(minutes=5))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A))) == 1


async def test_server_errors_are_retried_with_backoff_then_given_up(
    config: Config, database: Database
) -> None:
    """Two 502s then success delivers once; a DM that keeps failing is given up and logged,
    while the other supervisor's DM and the escalation itself go on."""
    async with running_bot(config, database, start=T0) as bot:
        for user in (SUPERVISOR_A, SUPERVISOR_B, CHIEF):
            bot.api.start_bot(user)
        await bot.say(REPORTER, REPORT)
        bot.api.inject(
            "sendMessage", status=502, description="Bad Gateway", chat_id=SUPERVISOR_A, times=2
        )
        bot.api.inject("sendMessage", status=500, chat_id=SUPERVISOR_B, times=-1)
        await bot.advance(timedelta(minutes=31))
        for _ in range(8):
            await bot.advance(timedelta(minutes=1))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A))) == 1
        assert escalation_dms(bot.dms(SUPERVISOR_B)) == []
        [failed] = await bot.events("delivery_failed")
        assert failed.actor_id == SUPERVISOR_B
        assert "network" in failed.detail["reason"]
        await bot.advance(timedelta(minutes=30))
        assert len(escalation_dms(bot.dms(CHIEF))) == 1


async def test_slow_bot_api_still_delivers(config: Config, database: Database) -> None:
    """A Bot API that takes 0.3 s per sendMessage slows delivery but loses nothing."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        bot.api.inject("sendMessage", status=200, delay=0.3, times=-1)
        await bot.advance(timedelta(minutes=31))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A))) == 1


async def test_a_poisoned_hazard_never_blocks_the_others(
    config: Config, database: Database
) -> None:
    """A hazard whose stored chain is corrupt is postponed and logged; the next one escalates."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.say(REPORTER, "2号楼配电箱门坏了,电线裸露在外面")
        async with bot.runtime.uow() as uow:
            await uow.hazards._s.execute(
                update(HazardRow).where(HazardRow.number == 1).values(chain=[{"broken": True}])
            )
            await uow.commit()
        await bot.advance(timedelta(minutes=31))
        assert len(escalation_dms(bot.dms(SUPERVISOR_A), number=2)) == 1
        [error] = await bot.events("engine_error")
        first, _second = await bot.hazards()
        assert error.hazard_id == first.id
        assert first.level == 1
        assert first.deadline is not None
        assert first.deadline > bot.clock.now()


async def test_config_change_never_alters_a_hazard_in_flight(
    config: Config, database: Database
) -> None:
    """The chain is copied onto the hazard when it opens: a new level 2 applies to new hazards."""
    other = parse_config(CONFIG_TOML.replace(f"id = {SUPERVISOR_B}", f"id = {CHIEF}"))
    async with running_bot(config, database, start=T0) as bot:
        for user in (SUPERVISOR_A, SUPERVISOR_B, CHIEF):
            bot.api.start_bot(user)
        await bot.say(REPORTER, REPORT)
        bot.runtime.service.config = other
        bot.runtime.escalator.config = other
        await bot.advance(timedelta(minutes=31))
        assert len(escalation_dms(bot.dms(SUPERVISOR_B))) == 1
        assert escalation_dms(bot.dms(CHIEF)) == []


async def _escalations_per_hazard(s: AsyncSession) -> list[tuple[int, int]]:
    """(hazard id, how many `escalated` events it has), one row per escalated hazard."""
    result = await s.execute(
        select(HazardEvent.hazard_id, func.count())
        .where(HazardEvent.kind == "escalated")
        .group_by(HazardEvent.hazard_id)
    )
    return [(int(h), int(n)) for h, n in result.all()]


async def test_two_engines_on_one_database_apply_each_level_once(
    config: Config, database: Database
) -> None:
    """Two escalators with their own connections sweep the same 60 due hazards concurrently:
    every hazard is escalated once and every DM row is written once."""
    async with running_bot(config, database, start=T0) as bot:
        for i in range(60):
            bot.api.post_text(GROUP, REPORTER, f"{i}号塔吊配重块松动")
        await bot.settle()
        assert len(await bot.hazards()) == 60
        bot.clock.advance(timedelta(minutes=31))
        engines = [database.engine() for _ in range(2)]
        try:
            escalators = [
                Escalator(
                    config,
                    UnitOfWorkFactory(session_factory(e)),
                    bot.clock,
                    Texts("zh", "Asia/Shanghai"),
                )
                for e in engines
            ]

            async def run(esc: Escalator) -> int:
                total = 0
                while (step := await esc.sweep(limit=7)) > 0:
                    total += step
                return total

            counts = await asyncio.gather(*(run(e) for e in escalators))
        finally:
            for e in engines:
                await e.dispose()
        assert sum(counts) == 60
        async with bot.runtime.uow() as uow:
            s = uow.hazards._s
            per_hazard = await _escalations_per_hazard(s)
            assert len(per_hazard) == 60
            assert {n for _, n in per_hazard} == {1}
            dm_rows = (
                await s.execute(select(func.count()).where(OutboxRow.purpose == "dm"))
            ).scalar_one()
            assert dm_rows == 120


async def test_concurrent_sweepers_of_one_tick_escalate_each_hazard_once(
    config: Config, database: Database
) -> None:
    """A tick with three sweepers taking batches of 4 (as the bot runs on PostgreSQL, with
    smaller numbers) escalates all 30 due hazards, each once, and counts each once. On SQLite
    they take turns at the write lock and come to the same."""
    async with running_bot(config, database, start=T0) as bot:
        for i in range(30):
            bot.api.post_text(GROUP, REPORTER, f"{i}号塔吊配重块松动")
        await bot.settle()
        assert len(await bot.hazards()) == 30
        bot.clock.advance(timedelta(minutes=31))
        runtime = bot.runtime
        engine = EscalationEngine(
            runtime.escalator, runtime.dispatcher, bot.clock, batch=4, sweepers=3
        )
        assert await engine.tick() == 30
        assert await engine.tick() == 0
        async with runtime.uow() as uow:
            s = uow.hazards._s
            per_hazard = await _escalations_per_hazard(s)
            assert len(per_hazard) == 30
            assert {n for _, n in per_hazard} == {1}
            dm_keys = (
                (await s.execute(select(OutboxRow.dedupe_key).where(OutboxRow.purpose == "dm")))
                .scalars()
                .all()
            )
            assert len(set(dm_keys)) == len(dm_keys) == 60  # one each to level 2's two members
        assert {h.level for h in await bot.hazards()} == {2}


class _Watched:
    """A dispatcher stand-in that records what the engine asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def hold(self) -> None:
        self.calls.append("hold")

    def release(self) -> None:
        self.calls.append("release")

    def kick(self) -> None:
        self.calls.append("kick")


async def test_a_backlog_holds_sending_until_the_tick_is_done(
    config: Config, database: Database
) -> None:
    """A tick that finds more due hazards than one batch holds the dispatcher back while it
    records them (one CPU records and sends), and releases it when the tick ends; a tick with
    less than a batch never holds it."""
    async with running_bot(config, database, start=T0) as bot:
        for i in range(9):
            bot.api.post_text(GROUP, REPORTER, f"{i}号塔吊配重块松动")
        await bot.settle()
        bot.clock.advance(timedelta(minutes=31))
        watched = _Watched()
        engine = EscalationEngine(bot.runtime.escalator, watched, bot.clock, batch=4)  # type: ignore[arg-type]
        assert await engine.tick() == 9
        assert watched.calls[0] == "hold"
        assert watched.calls[-1] == "release"
        assert "hold" not in watched.calls[watched.calls.index("release") :]
        watched.calls.clear()
        bot.clock.advance(timedelta(minutes=31))  # level 3 for the nine, in batches of 20
        engine = EscalationEngine(bot.runtime.escalator, watched, bot.clock, batch=20)  # type: ignore[arg-type]
        assert await engine.tick() == 9
        assert "hold" not in watched.calls


async def test_held_sending_waits_for_release_or_the_longest_hold(
    config: Config, database: Database
) -> None:
    """While held, a committed message waits; release sends it. A hold nobody releases ends
    by itself after `max_hold`, so a stuck catch-up can never silence the bot."""
    async with running_bot(config, database, start=T0) as bot:
        dispatcher = bot.runtime.dispatcher
        dispatcher.hold()
        async with bot.runtime.uow() as uow:
            enqueue_message(uow, None, "test", GROUP, "第一条", T0, key="held-1")
            await uow.commit()
        dispatcher.kick()
        await asyncio.sleep(0.5)
        assert bot.group_texts() == []
        dispatcher.release()
        await bot.api.wait_for(lambda: bot.group_texts() == ["第一条"], timeout=5)

        dispatcher.max_hold = timedelta(seconds=0.3)
        dispatcher.hold()
        async with bot.runtime.uow() as uow:
            enqueue_message(uow, None, "test", GROUP, "第二条", T0, key="held-2")
            await uow.commit()
        dispatcher.kick()
        await asyncio.sleep(0.1)
        assert bot.group_texts() == ["第一条"]
        await bot.api.wait_for(lambda: bot.group_texts() == ["第一条", "第二条"], timeout=5)
