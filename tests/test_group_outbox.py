"""Outbox rows that carry a photo or an inline keyboard reach the local Bot API intact."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.config import Config, parse_config
from bot.outbox import RENEW_AFTER, OutboxDispatcher
from bot.outbox_rows import enqueue_message
from storage.repositories import OutboxRepository
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import CONFIG_TOML, GROUP, REPORTER, SUPERVISOR_A, T0, Database

KEYBOARD = {"inline_keyboard": [[{"text": "我去现场", "callback_data": "go:1"}]]}


async def test_photo_row_is_sent_with_caption_and_keyboard(
    config: Config, database: Database
) -> None:
    """A row whose payload has a photo goes out as sendPhoto, caption and buttons included."""
    async with running_bot(config, database, start=T0) as bot:
        photo = bot.api.post_photo(GROUP, REPORTER)
        file_id = photo["photo"][-1]["file_id"]
        async with bot.runtime.uow() as uow:
            payload = {"photo": file_id, "reply_markup": KEYBOARD}
            enqueue_message(uow, None, "test", GROUP, "隐患 #1", T0, key="t1", payload=payload)
            await uow.commit()
        await bot.settle()
        [sent] = bot.api.sent(GROUP)
        assert sent["caption"] == "隐患 #1"
        assert sent["photo"][-1]["file_unique_id"] == photo["photo"][-1]["file_unique_id"]
        assert sent["reply_markup"] == KEYBOARD
        [row] = await bot.outbox()
        assert (row.method, row.sent_message_id) == ("sendPhoto", sent["message_id"])


async def test_text_too_long_for_a_caption_follows_its_photo(
    config: Config, database: Database
) -> None:
    """Over 1024 characters, the photo goes first and the text, with its buttons, replies to it."""
    async with running_bot(config, database, start=T0) as bot:
        photo = bot.api.post_photo(GROUP, REPORTER)
        file_id = photo["photo"][-1]["file_id"]
        long_text = "长" * 1500
        async with bot.runtime.uow() as uow:
            payload = {"photo": file_id, "reply_markup": KEYBOARD}
            enqueue_message(uow, None, "test", GROUP, long_text, T0, key="t2", payload=payload)
            await uow.commit()
        await bot.settle()
        first, second = bot.api.sent(GROUP)
        assert "photo" in first
        assert "caption" not in first
        assert second["text"] == long_text
        assert second["reply_to_message"]["message_id"] == first["message_id"]
        assert second["reply_markup"] == KEYBOARD


@pytest.mark.parametrize(
    ("language", "labels"),
    [
        ("zh", ["我去现场", "已安排人员", "叫停施工"]),
        ("en", ["I'm going", "Someone is sent", "Stop the work"]),
    ],
)
async def test_escalation_dm_names_its_buttons_and_is_sent_with_them(
    database: Database, language: str, labels: list[str]
) -> None:
    """The DM's row names its buttons (the same three for every hazard) instead of storing
    them; the DM reaches Telegram with all three, in the config's language, for its hazard."""
    config = parse_config(CONFIG_TOML.replace("[defaults]", f'[defaults]\nlanguage = "{language}"'))
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, "3号楼塔吊配重块松动了")
        await bot.advance(timedelta(minutes=31))
        [row] = [r for r in await bot.outbox() if r.recipient_id == SUPERVISOR_A]
        assert row.payload == {"buttons": "escalation", "language": language}
        dm = bot.api.sent(SUPERVISOR_A)[-1]
        assert "#1" in dm["text"]
        buttons = [b for line in dm["reply_markup"]["inline_keyboard"] for b in line]
        assert [b["text"] for b in buttons] == labels
        assert [b["callback_data"] for b in buttons] == [
            f"{action}:{row.hazard_id}" for action in ("go", "sent", "stop")
        ]


def _record(monkeypatch: pytest.MonkeyPatch, method: str) -> list[Any]:
    """What each call of an OutboxRepository method returned, in order."""
    results: list[Any] = []
    original = getattr(OutboxRepository, method)

    async def recorded(self: OutboxRepository, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(OutboxRepository, method, recorded)
    return results


async def test_kicks_close_together_share_one_claim(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of kicks (a busy group's every 收到 kicks) is answered by a few claims, one per
    fill gap, not one each; the message the first kick announced still goes out at once."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.settle()
        claims = _record(monkeypatch, "claim")
        async with bot.runtime.uow() as uow:
            enqueue_message(uow, None, "test", GROUP, "一条", T0, key="burst")
            await uow.commit()
        loop = asyncio.get_running_loop()
        started = loop.time()
        kicks = 0
        while loop.time() - started < 0.2:  # four fill gaps of kicks, one every 2 ms
            bot.runtime.dispatcher.kick()
            kicks += 1
            await asyncio.sleep(0.002)
        await bot.api.wait_for(lambda: bot.group_texts() == ["一条"], timeout=1)
        assert kicks >= 40
        # One claim (DMs and groups together) per fill: five gaps' worth, and one for the
        # sender's end.
        assert len(claims) <= 5 + 1


async def _enqueue_dms(bot: BotUnderTest, *texts: str) -> None:
    async with bot.runtime.uow() as uow:
        for text in texts:
            enqueue_message(uow, None, "test", SUPERVISOR_A, text, bot.clock.now(), key=text)
        await uow.commit()
    bot.runtime.dispatcher.kick()


async def _sending(bot: BotUnderTest, text: str) -> None:
    """Wait until the local Bot API has received (not yet answered) the send of `text`."""
    await bot.api.wait_for(
        lambda: any(c.params.get("text") == text and c.status == 0 for c in bot.api.calls),
        timeout=5,
    )


async def test_a_fresh_lease_is_not_renewed_and_an_aged_one_is(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows sent right after their claim go without renewing the lease (it cost a transaction
    per message); a row that waited behind a slow send past RENEW_AFTER is renewed first."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.settle()
        greeted = len(bot.dms(SUPERVISOR_A))
        renewals = _record(monkeypatch, "renew_many")
        await _enqueue_dms(bot, "a1", "a2")
        await bot.api.wait_for(lambda: bot.dms(SUPERVISOR_A)[greeted:] == ["a1", "a2"], timeout=5)
        assert renewals == []

        bot.api.inject("sendMessage", status=200, delay=0.5, chat_id=SUPERVISOR_A)
        await _enqueue_dms(bot, "b1", "b2")
        await _sending(bot, "b1")
        bot.clock.advance(RENEW_AFTER + timedelta(seconds=1))
        await bot.api.wait_for(
            lambda: bot.dms(SUPERVISOR_A)[greeted + 2 :] == ["b1", "b2"], timeout=5
        )
        assert [len(renewed) for renewed in renewals] == [1]


async def test_a_row_whose_lease_ran_out_and_was_taken_is_left_to_its_taker(
    config: Config, database: Database
) -> None:
    """While a slow send outlasts the lease of the next row, another sender claims that row: this
    sender leaves it, and it still goes out, once, when the taker's lease runs out."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.settle()
        greeted = len(bot.dms(SUPERVISOR_A))
        bot.api.inject("sendMessage", status=200, delay=0.5, chat_id=SUPERVISOR_A)
        await _enqueue_dms(bot, "c1", "c2")
        await _sending(bot, "c1")
        bot.clock.advance(timedelta(seconds=31))  # past the 30 s lease of both rows
        async with bot.runtime.uow() as uow:
            # Only a lease marks a row in flight, so the taker gets c1 too (the documented
            # duplicate of a crash); this sender marks c1 sent when its answer comes.
            taken = await uow.outbox.claim(
                bot.clock.now(), timedelta(seconds=30), 10, chat_id=SUPERVISOR_A
            )
            await uow.commit()
        assert [row.text for row in taken] == ["c1", "c2"]
        await bot.api.wait_for(lambda: bot.dms(SUPERVISOR_A)[greeted:] == ["c1"], timeout=5)
        await asyncio.sleep(0.3)
        assert bot.dms(SUPERVISOR_A)[greeted:] == ["c1"]
        await bot.advance(timedelta(seconds=31))  # the taker died: its lease runs out
        assert bot.dms(SUPERVISOR_A)[greeted:] == ["c1", "c2"]


async def test_stop_ends_the_dispatcher_even_right_after_a_kick(
    config: Config, database: Database
) -> None:
    """A kick in the same moment as stop (a sender's end kicks, and stop cancels the senders)
    must not swallow the cancellation: asyncio.wait_for of Python 3.11 returned the wake-up's
    result instead, the loop went on, and stop, hence the bot's shutdown, waited for ever."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.settle()
        dispatcher = OutboxDispatcher(bot.runtime.uow, bot.app.bot, bot.clock)
        dispatcher.start(idle_seconds=60)
        await asyncio.sleep(0.2)  # its first claim found nothing: it waits for a kick
        dispatcher.kick()
        await asyncio.wait_for(dispatcher.stop(), 5)
