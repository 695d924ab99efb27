"""Outbox rows that carry a photo or an inline keyboard reach the local Bot API intact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import Config
from bot.outbox_rows import enqueue_message
from storage.models import OutboxRow
from storage.repositories import OutboxRepository
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



async def test_kicks_close_together_share_one_claim(
    config: Config, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of kicks (a busy group's every 收到 kicks) is answered by a few claims, one per
    fill gap, not one each; the message the first kick announced still goes out at once."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.settle()
        claims = 0
        claim = OutboxRepository.claim

        async def counted(self: OutboxRepository, *args: Any, **kwargs: Any) -> list[OutboxRow]:
            nonlocal claims
            claims += 1
            return await claim(self, *args, **kwargs)

        monkeypatch.setattr(OutboxRepository, "claim", counted)
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
        # Two claims (DMs, groups) per fill: five gaps' worth, and one for the sender's end.
        assert claims <= 2 * (5 + 1)
