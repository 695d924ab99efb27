"""The sandbox's user side for odd clients: any content, unseen edits, forged buttons, raw updates."""

from __future__ import annotations

import pytest
from telegram import Bot, Update
from telegram.error import BadRequest

from bot.sandbox import LocalBotApi

GROUP = -1001234567890
CHANNEL = -1009876543210
ALICE = 1001


async def fetch(bot: Bot) -> list[Update]:
    updates = list(await bot.get_updates(timeout=0, allowed_updates=Update.ALL_TYPES))
    if updates:
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return updates


async def test_post_content_carries_any_message_kind_and_sender(bot: Bot, api: LocalBotApi) -> None:
    """A sticker from a user, a dice on behalf of a channel and a senderless post parse in PTB."""
    sticker = {
        "file_id": "CAAC1",
        "file_unique_id": "AgAD1",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    first = api.post_content(GROUP, ALICE, {"sticker": sticker})
    api.post_content(GROUP, None, {"dice": {"emoji": "🎲", "value": 3}}, sender_chat_id=CHANNEL)
    api.post_content(GROUP, None, {"text": "hello"}, reply_to=first["message_id"])
    [a, b, c] = [u.message for u in await fetch(bot)]
    assert a is not None
    assert a.sticker is not None
    assert a.from_user is not None
    assert a.from_user.id == ALICE
    assert b is not None
    assert b.dice is not None
    assert b.sender_chat is not None
    assert b.sender_chat.id == CHANNEL
    assert b.from_user is not None
    assert b.from_user.username == "Channel_Bot"
    assert c is not None
    assert c.from_user is None
    assert c.reply_to_message is not None
    assert c.reply_to_message.message_id == first["message_id"]
    with pytest.raises(ValueError, match="no message"):
        api.post_content(GROUP, ALICE, {"text": "x"}, reply_to=999)


async def test_edit_unseen_edits_a_message_the_bot_never_got(bot: Bot, api: LocalBotApi) -> None:
    """edit_unseen sends an edited_message for an id the chat never stored, and refuses real ones."""
    api.edit_unseen(GROUP, ALICE, 777, "/hazard 1 changed")
    [update] = await fetch(bot)
    assert update.edited_message is not None
    assert update.edited_message.message_id == 777
    assert update.edited_message.entities[0].type == "bot_command"
    posted = api.post_text(GROUP, ALICE, "real")
    with pytest.raises(ValueError, match="exists"):
        api.edit_unseen(GROUP, ALICE, posted["message_id"], "x")


async def test_forged_callbacks_parse_and_can_be_answered(bot: Bot, api: LocalBotApi) -> None:
    """Forged presses on a stored, an inaccessible and no message all parse and can be answered."""
    stored = api.post_text(GROUP, ALICE, "a message without buttons")
    api.forge_callback(ALICE, "go:1", chat_id=GROUP, message_id=stored["message_id"])
    api.forge_callback(ALICE, "x" * 64, chat_id=GROUP, message_id=424242)
    api.forge_callback(ALICE, "pg:hz::2")
    updates = [u for u in await fetch(bot) if u.callback_query is not None]
    [on_stored, on_gone, inline] = [u.callback_query for u in updates]
    assert on_stored is not None
    assert on_stored.message is not None
    assert on_stored.message.message_id == stored["message_id"]
    assert on_gone is not None
    assert on_gone.message is not None
    assert not on_gone.message.is_accessible  # PTB keeps the Message class, with date 0
    assert inline is not None
    assert inline.message is None
    assert inline.inline_message_id is not None
    for query in (on_stored, on_gone, inline):
        assert await bot.answer_callback_query(query.id, "?")
    assert len(api.callback_answers) == 3


async def test_post_update_enqueues_other_kinds_and_refuses_unknown(
    bot: Bot, api: LocalBotApi
) -> None:
    """post_update delivers an inline query as given, and rejects an update type Telegram lacks."""
    user = api.user(ALICE, "Alice")
    api.post_update("inline_query", {"id": "q1", "from": user, "query": "塔吊", "offset": ""})
    [update] = await fetch(bot)
    assert update.inline_query is not None
    assert update.inline_query.query == "塔吊"
    with pytest.raises(ValueError, match="unknown update type"):
        api.post_update("telepathy", {})


async def test_call_log_keeps_the_error_description(bot: Bot, api: LocalBotApi) -> None:
    """A refused call is logged with Telegram's description, so tests can tell refusals apart."""
    api.start_bot(ALICE)
    with pytest.raises(BadRequest):
        await bot.send_message(ALICE, "x" * 4097)
    [refused] = [c for c in api.calls if c.method == "sendMessage"]
    assert refused.status == 400
    assert refused.description == "Bad Request: message is too long"
