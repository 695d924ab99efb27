"""Bare 收到 in the group: recognised, recorded, answered once, then only with a reaction."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Config
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
OTHER_REPORT = "5号楼外架连墙件被拆了好几根"


def group_messages(bot: BotUnderTest) -> list[str]:
    """Every message (not reaction) the bot put in the group, by Bot API call."""
    return [
        c.method
        for c in bot.api.calls
        if c.status == 200
        and c.method in ("sendMessage", "sendPhoto")
        and str(c.params.get("chat_id")) == str(GROUP)
    ]


async def test_first_ack_gets_the_reminder_with_time_left(
    config: Config, database: Database
) -> None:
    """收到 at 09:06 to a 09:30 hazard: one reply naming #1 and the 24 minutes left."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=6))
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        assert bot.group_texts()[-1] == (
            "「收到」不算到场确认:请到现场后回复照片或位置,#1 还剩 24 分钟"
        )


async def test_later_acks_get_a_reaction_and_no_text(config: Config, database: Database) -> None:
    """After the one reminder, each further 收到 gets 👀 on its own message and no text."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        second = await bot.say(SUPERVISOR_A, "好的", reply_to=report["message_id"])
        third = await bot.say(CHIEF, "👍", reply_to=report["message_id"])
        assert len(bot.group_texts()) == 2
        reactions = bot.api.reactions(GROUP)
        assert [int(r["message_id"]) for r in reactions] == [
            second["message_id"],
            third["message_id"],
        ]
        assert all("👀" in str(r["reaction"]) for r in reactions)


async def test_each_ack_is_recorded_with_who_when_and_what(
    config: Config, database: Database
) -> None:
    """Every 收到 is an event with the person, the time and the words typed."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=2))
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        bot.clock.advance(timedelta(minutes=2))
        await bot.say(SUPERVISOR_A, "收到,请施工单位注意安全", reply_to=report["message_id"])
        acks = await bot.events("acknowledged")
        assert [(e.actor_id, e.at, e.detail["text"]) for e in acks] == [
            (SAFETY, T0 + timedelta(minutes=2), "收到"),
            (SUPERVISOR_A, T0 + timedelta(minutes=4), "收到,请施工单位注意安全"),
        ]


async def test_plain_ack_from_the_chain_right_after_the_card_counts(
    config: Config, database: Database
) -> None:
    """收到 replying to nothing, from a chain member within 10 minutes of the only open hazard's
    card, is that hazard's acknowledgement; from an outsider it is chat."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=3))
        await bot.say(OUTSIDER, "收到")
        assert await bot.events("acknowledged") == []
        await bot.say(SUPERVISOR_B, "收到")
        [ack] = await bot.events("acknowledged")
        assert ack.actor_id == SUPERVISOR_B
        assert "#1" in bot.group_texts()[-1]


async def test_plain_ack_is_chat_when_late_or_ambiguous(config: Config, database: Database) -> None:
    """A plain 收到 after the window, or while two hazards are open, is not taken as an answer."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=11))
        await bot.say(SAFETY, "收到")
        await bot.say(REPORTER, OTHER_REPORT)
        await bot.say(SAFETY, "收到")
        assert await bot.events("acknowledged") == []
        assert len(bot.group_texts()) == 2  # the two cards


async def test_ack_to_a_hazard_already_on_site_is_left_alone(
    config: Config, database: Database
) -> None:
    """Once someone is on site, a 收到 to that hazard is neither recorded nor answered."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        bot.api.post_photo(GROUP, SAFETY, reply_to=report["message_id"])
        await bot.settle()
        before = len(bot.group_texts())
        await bot.say(CHIEF, "收到", reply_to=report["message_id"])
        assert len(bot.group_texts()) == before
        assert bot.api.reactions(GROUP) == []
        assert await bot.events("acknowledged") == []


async def test_who_only_acknowledged_is_in_the_dm_and_the_timeline(
    config: Config, database: Database
) -> None:
    """The escalation DM and /hazard 1 both list who only typed 收到, with the time."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        report = await bot.say(REPORTER, REPORT)
        bot.clock.advance(timedelta(minutes=2))
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        await bot.advance(timedelta(minutes=29))
        dm = bot.dms(SUPERVISOR_A)[-1]
        assert "只回复了「收到」:老王 09:02" in dm
        await bot.say(REPORTER, "/hazard 1")
        timeline = bot.group_texts()[-1]
        assert "只回复了「收到」" in timeline
        assert "09:02" in timeline
        assert "升级到第2级" in timeline


async def test_happy_path_costs_at_most_three_group_messages(
    config: Config, database: Database
) -> None:
    """Report → card → twelve people type 收到 (replies and plain) → photo → confirmation:
    the bot puts at most three messages in the group; the rest are reactions."""
    async with running_bot(config, database, start=T0) as bot:
        people = [SAFETY, SUPERVISOR_A, SUPERVISOR_B, CHIEF, OUTSIDER, REPORTER]
        report = await bot.say(REPORTER, REPORT)
        card = bot.api.sent(GROUP)[0]
        for i, user in enumerate(people * 2):
            reply_to = (report, card, None)[i % 3]
            text = ("收到", "好的", "收到!")[i % 3]
            bot.api.post_text(
                GROUP, user, text, reply_to=reply_to["message_id"] if reply_to else None
            )
        await bot.settle()
        bot.api.post_photo(GROUP, SAFETY, reply_to=report["message_id"])
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.ON_SITE
        sent = group_messages(bot)
        assert len(sent) <= 3
        assert len(sent) == 3  # card, the one reminder, the confirmation
        assert len(bot.api.reactions(GROUP)) >= 7
