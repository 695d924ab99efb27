"""Outbox rows that carry a photo or an inline keyboard reach the local Bot API intact."""

from __future__ import annotations

from bot.config import Config
from bot.outbox import OutboxDispatcher
from bot.outbox_rows import enqueue_message
from tests.botkit import running_bot
from tests.conftest import GROUP, REPORTER, SUPERVISOR_A, T0, Database

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


async def test_a_slow_group_does_not_hold_back_a_dm(config: Config, database: Database) -> None:
    """With one sender place per kind, a DM written while a group's message takes 2 s to send
    goes out at once: DMs and groups have places of their own."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.settle()  # the reply to /start is out of the way
        await bot.runtime.dispatcher.stop()  # only the dispatcher under test sends
        bot.api.inject("sendMessage", status=200, delay=2.0, chat_id=GROUP)
        dispatcher = OutboxDispatcher(bot.runtime.uow, bot.app.bot, bot.clock, max_chats=1)
        dispatcher.start(idle_seconds=5)
        try:
            async with bot.runtime.uow() as uow:
                enqueue_message(uow, None, "notice", GROUP, "群通知", T0, key="g1")
                await uow.commit()
            dispatcher.kick()
            await bot.api.wait_for(
                lambda: any(c.method == "sendMessage" for c in bot.api.calls), timeout=1
            )
            async with bot.runtime.uow() as uow:
                enqueue_message(uow, None, "dm", SUPERVISOR_A, "私信", T0, key="d1")
                await uow.commit()
            dispatcher.kick()
            await bot.api.wait_for(lambda: "私信" in bot.dms(SUPERVISOR_A), timeout=1)
            assert bot.api.sent(GROUP) == []  # the group's message is still on its way
            await bot.api.wait_for(lambda: bool(bot.api.sent(GROUP)), timeout=3)
        finally:
            await dispatcher.stop()
