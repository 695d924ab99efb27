"""Telegram's limits: texts under 4096 characters, long lists paged, sends rate-limited."""

from __future__ import annotations

from datetime import timedelta

from bot.app import build_application
from bot.config import Config
from bot.ratelimit import TelegramLimits
from escalation.clock import FakeClock
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import GROUP, REPORTER, SUPERVISOR_A, T0, Database

REPORT = "3号楼塔吊配重块松动了"
CROWD = range(20001, 20041)  # forty people who each type 收到


async def crowd_acknowledges(bot: BotUnderTest, report_id: int) -> None:
    for user in CROWD:
        bot.api.user(user, f"工人{user}")
        bot.api.post_text(GROUP, user, "收到", reply_to=report_id)
    await bot.settle()


def all_sent_texts(bot: BotUnderTest) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in bot.api.sent()]


async def test_a_huge_report_still_gives_a_card_and_dms_under_the_limit(
    config: Config, database: Database
) -> None:
    """A 5000-character report is quoted shortened: the card and the DMs stay under 4096."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT + "。" + "现场情况很复杂" * 700)
        await bot.advance(timedelta(minutes=31))
        texts = all_sent_texts(bot)
        assert any("#1" in t for t in bot.dms(SUPERVISOR_A))
        assert max(len(t) for t in texts) < 4096
        assert "…" in bot.group_texts()[0]


async def test_forty_acknowledgers_fit_in_the_dm(config: Config, database: Database) -> None:
    """Forty people who only typed 收到: the DM names thirty, says how many more, stays short."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        report = await bot.say(REPORTER, REPORT)
        await crowd_acknowledges(bot, report["message_id"])
        await bot.advance(timedelta(minutes=31))
        dm = bot.dms(SUPERVISOR_A)[-1]
        assert "等 10 人" in dm
        assert len(dm) < 4096
        assert len(bot.api.reactions(GROUP)) == 39


async def test_a_long_timeline_is_paged(config: Config, database: Database) -> None:
    """/hazard 1 with forty acknowledgements comes in pages under 4096, turned with › buttons."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await crowd_acknowledges(bot, report["message_id"])
        await bot.say(REPORTER, "/hazard 1")
        first = bot.api.sent(GROUP)[-1]
        assert "第 1/3 页" in first["text"]
        pages = [first["text"]]
        for number in (2, 3):
            bot.api.press_button(REPORTER, GROUP, first["message_id"], f"pg:tl:1:{number}")
            await bot.settle()
            turned = bot.api.message(GROUP, first["message_id"])
            assert turned is not None
            pages.append(turned["text"])
        assert "第 3/3 页" in pages[-1]
        assert "只回复了「收到」" in pages[-1]
        assert all(len(p) < 4096 for p in pages)
        assert all(p.startswith("隐患 #1") for p in pages)


def test_sends_go_through_the_rate_limiter(config: Config) -> None:
    """The application built for production wraps every Bot API call in Telegram's limits."""
    app = build_application(
        config, token="123:TEST", clock=FakeClock(T0), base_url="http://127.0.0.1:9/bot"
    )
    assert isinstance(app.bot.rate_limiter, TelegramLimits)
