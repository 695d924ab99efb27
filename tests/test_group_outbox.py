"""Outbox rows that carry a photo or an inline keyboard reach the local Bot API intact."""

from __future__ import annotations

from bot.config import Config
from bot.outbox_rows import enqueue_message
from tests.botkit import running_bot
from tests.conftest import GROUP, REPORTER, T0, Database

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

