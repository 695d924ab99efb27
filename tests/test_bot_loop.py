"""The core loop end to end over real HTTP: report, #N, 收到 refused, photo, escalation DM."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Config
from escalation.hazard import HazardState
from tests.botkit import running_bot
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

REPORT = "3号楼塔吊配重块松动了,螺栓都看得见缝"
CRITICAL = "3号楼塔吊配重块松动,随时可能掉下来,下面还有人在干活"


async def test_hazard_report_gets_a_card_with_number_role_and_deadline(
    config: Config, database: Database
) -> None:
    """A hazard text in the group gets one reply to the report naming #1, level 1 and the time."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, "塔吊配重块松动了")
        card = (await bot.api.wait_sent(GROUP, 1))[0]
        assert "#1" in card["text"]
        assert "项目安全员" in card["text"]
        assert "安全员老王" in card["text"]
        assert "09:30" in card["text"]
        assert card["reply_to_message"]["message_id"] == report["message_id"]
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert hazard.card_message_id == card["message_id"]


async def test_chatter_is_ignored(config: Config, database: Database) -> None:
    """Ordinary chat gets no answer and registers nothing."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, "明天早上几点进场?")
        assert bot.api.sent(GROUP) == []
        assert await bot.hazards() == []


async def test_bare_ack_is_refused_once_then_only_a_reaction(
    config: Config, database: Database
) -> None:
    """收到 keeps the hazard open: the first gets one reminder, later ones only 👀."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, "塔吊配重块松动了")
        card = (await bot.api.wait_sent(GROUP, 1))[0]
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        await bot.say(SUPERVISOR_A, "收到!", reply_to=card["message_id"])
        await bot.say(CHIEF, "收到,请施工单位高度重视", reply_to=report["message_id"])
        texts = bot.group_texts()
        assert len(texts) == 2
        assert "「收到」不算到场确认" in texts[1]
        assert "#1" in texts[1]
        assert len(bot.api.reactions(GROUP)) == 2
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert len(await bot.events("acknowledged")) == 3


async def test_photo_reply_from_chain_member_stops_the_clock(
    config: Config, database: Database
) -> None:
    """A fresh photo replying to the report, from level 1, moves the hazard on site."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, "塔吊配重块松动了")
        bot.api.post_photo(GROUP, SAFETY, reply_to=report["message_id"])
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.ON_SITE
        assert "已到现场" in bot.group_texts()[-1]
        await bot.advance(timedelta(hours=2))
        assert bot.dms(SUPERVISOR_A) == []


async def test_forwarded_or_outsider_photo_does_not_count(
    config: Config, database: Database
) -> None:
    """A forwarded photo and a photo from outside the chain leave the hazard open."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, "塔吊配重块松动了")
        bot.api.post_photo(GROUP, SAFETY, reply_to=report["message_id"], forwarded_from=OUTSIDER)
        bot.api.post_photo(GROUP, OUTSIDER, reply_to=report["message_id"])
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        reasons = [e.detail["reason"] for e in await bot.events("evidence_refused")]
        assert reasons == ["forwarded", "not_in_chain"]


async def test_passed_deadline_dms_every_member_of_the_next_level_once(
    config: Config, database: Database
) -> None:
    """At 09:30 each supervisor who pressed Start gets one DM with #N and the report; the group
    one notice naming level 2; the DM lists who only typed 收到."""
    async with running_bot(config, database, start=T0) as bot:
        for user in (SUPERVISOR_A, SUPERVISOR_B):
            bot.api.start_bot(user)
        await bot.settle()
        report = await bot.say(REPORTER, REPORT)
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        await bot.advance(timedelta(minutes=29))
        assert bot.dms(SUPERVISOR_A) == [bot.dms(SUPERVISOR_A)[0]]  # only the /start greeting
        await bot.advance(timedelta(minutes=2))
        await bot.tick()
        for user in (SUPERVISOR_A, SUPERVISOR_B):
            dms = bot.dms(user)[1:]
            assert len(dms) == 1
            assert "#1" in dms[0]
            assert "配重块松动" in dms[0]
            assert "老王" in dms[0]  # who only typed 收到
        notices = [t for t in bot.group_texts() if "升级到第2级" in t]
        assert len(notices) == 1
        assert "监理" in notices[0]


async def test_unstarted_supervisor_is_recorded_and_named_with_a_start_link(
    config: Config, database: Database
) -> None:
    """A DM that gets 403 marks the person unreachable; the group notice gives a start link."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        notice = next(t for t in bot.group_texts() if "升级到第2级" in t)
        assert "监理李工" in notice.split("\n", 1)[1]
        assert "?start=" in notice
        failed = await bot.events("dm_failed")
        assert [e.actor_id for e in failed] == [SUPERVISOR_B]
        assert len(bot.dms(SUPERVISOR_A)) == 2  # greeting + escalation


async def test_start_in_dm_records_reachability(config: Config, database: Database) -> None:
    """/start in a private chat answers once and marks the person as reachable."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(CHIEF)
        await bot.settle()
        assert len(bot.dms(CHIEF)) == 1
        async with bot.runtime.uow() as uow:
            assert (await uow.people.get_many([CHIEF]))[CHIEF].started


async def test_restart_before_deadline_delivers_the_dm_once(
    config: Config, database: Database
) -> None:
    """Stop the bot before 09:30, start a new one after: the level-2 DM arrives exactly once."""
    from bot.sandbox import LocalBotApi
    from escalation.clock import FakeClock
    from tests.botkit import people

    async with LocalBotApi() as api:
        people(api)
        clock = FakeClock(T0)
        async with running_bot(config, database, start=T0, api=api, clock=clock) as bot:
            api.start_bot(SUPERVISOR_A)
            await bot.say(REPORTER, REPORT)
            await bot.advance(timedelta(minutes=20))
        clock.advance(timedelta(minutes=20))  # down from 09:20 to 09:40, across 09:30
        async with running_bot(config, database, start=T0, api=api, clock=clock) as bot:
            await bot.tick()
            await bot.tick()
            escalations = [t for t in bot.dms(SUPERVISOR_A) if "#1" in t]
            assert len(escalations) == 1
        async with running_bot(config, database, start=T0, api=api, clock=clock) as bot:
            await bot.tick()
            assert len([t for t in bot.dms(SUPERVISOR_A) if "#1" in t]) == 1


async def test_critical_report_stops_work_and_dms_level_one_at_once(
    config: Config, database: Database
) -> None:
    """A critical report's card demands 停工 and 撤离, level 1 is DMed now, deadlines halve."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SAFETY)
        await bot.say(REPORTER, CRITICAL)
        card = bot.group_texts()[0]
        assert "停工" in card
        assert "撤离" in card
        assert "09:15" in card
        assert any("#1" in t and "停" in t for t in bot.dms(SAFETY))
        [hazard] = await bot.hazards()
        assert hazard.critical
