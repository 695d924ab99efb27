"""Tests of the local Bot API sandbox, driven through python-telegram-bot over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageOriginUser,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox import LocalBotApi

# PTB 22 warns that retry_after and live_period will become timedeltas; the tests accept both.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

GROUP = -1001234567890
ALICE = 1001
BOB = 1002


@contextlib.asynccontextmanager
async def running(
    api: LocalBotApi, *handlers: Any
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.05, allowed_updates=Update.ALL_TYPES)
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def drain(bot: Bot) -> list[Update]:
    """Fetch every pending update and confirm it, as one polling round would."""
    updates = list(await bot.get_updates(timeout=0, allowed_updates=Update.ALL_TYPES))
    if updates:
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return updates


async def raw(
    api: LocalBotApi, method: str, path: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    url = f"{api.root}{path}" if path else f"{api.base_url}{api.token}/{method}"
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as response:
        return response.status, await response.json()


# ---- basics ----


async def test_get_me_returns_the_configured_bot(bot: Bot, api: LocalBotApi) -> None:
    """getMe answers with the bot user PTB needs to initialize."""
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (900000001, "sitewalk_bot", True)
    assert api.calls[0].method == "getMe"
    assert api.calls[0].status == 200


async def test_polling_delivers_group_text_and_reply_goes_back(api: LocalBotApi) -> None:
    """A real Application polls a group text and its quoted reply is stored as a reply."""
    api.group(GROUP, "Site crew")
    api.user(ALICE, "Alice", "alice")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            f"echo: {update.effective_message.text}",
            reply_parameters=ReplyParameters(message_id=update.effective_message.message_id),
        )

    async with running(api, MessageHandler(filters.TEXT, echo)):
        posted = api.post_text(GROUP, ALICE, "收到")
        [reply] = await api.wait_sent(GROUP)

    assert reply["text"] == "echo: 收到"
    assert reply["from"]["id"] == api.bot_user["id"]
    assert reply["reply_to_message"]["message_id"] == posted["message_id"]
    assert reply["message_id"] == posted["message_id"] + 1
    send = next(call for call in api.calls if call.method == "sendMessage")
    assert send.params["reply_parameters"]["message_id"] == posted["message_id"]
    assert [c.method for c in api.calls[:2]] == ["getMe", "deleteWebhook"]


async def test_dm_needs_start_and_block_forbids_again(bot: Bot, api: LocalBotApi) -> None:
    """A DM before /start and after a block raise Forbidden; /start in between allows it."""
    api.user(ALICE, "Alice")
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await bot.send_message(ALICE, "hello")
    start = api.start_bot(ALICE, "chain-7")
    assert start["text"] == "/start chain-7"
    assert (await bot.send_message(ALICE, "hello")).chat.type == "private"
    api.block_bot(ALICE)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(ALICE, "hello again")
    updates = await drain(bot)
    assert updates[0].message is not None
    assert updates[0].message.text == "/start chain-7"
    assert updates[-1].my_chat_member is not None
    assert updates[-1].my_chat_member.new_chat_member.status == "kicked"


async def test_unknown_private_chat_is_not_found(bot: Bot) -> None:
    """Sending to a user id the sandbox never saw is "chat not found"."""
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(424242, "hi")


# ---- error injection ----


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (403, None, Forbidden),
        (429, 3, RetryAfter),
        (500, None, NetworkError),
        (502, None, NetworkError),
        (400, None, BadRequest),
        (409, None, Conflict),
        (401, None, InvalidToken),
    ],
)
async def test_injected_error_maps_to_ptb_exception(
    bot: Bot, api: LocalBotApi, status: int, retry_after: int | None, expected: type[TelegramError]
) -> None:
    """Each injected status reaches PTB as the exception its docs promise, once."""
    api.group(GROUP, "Site crew")
    api.inject("sendMessage", status=status, retry_after=retry_after)
    with pytest.raises(TelegramError) as caught:
        await bot.send_message(GROUP, "x")
    assert type(caught.value) is expected
    if retry_after is not None:
        assert isinstance(caught.value, RetryAfter)
        assert caught.value.retry_after in (3, dtm.timedelta(seconds=3))
    assert (await bot.send_message(GROUP, "x")).text == "x"
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [status, 200]


async def test_injection_filters_by_chat_and_counts_times(bot: Bot, api: LocalBotApi) -> None:
    """A chat-filtered injection hits only that chat, `times` times, and -1 lasts until cleared."""
    other = -1009999
    api.group(GROUP, "A")
    api.group(other, "B")
    api.inject("sendmessage", status=403, description="Forbidden: x", chat_id=GROUP, times=2)
    assert (await bot.send_message(other, "fine")).chat.id == other
    for _ in range(2):
        with pytest.raises(Forbidden, match=r"(?i)Forbidden: x"):
            await bot.send_message(GROUP, "no")
    await bot.send_message(GROUP, "yes")

    api.inject("sendMessage", status=500, times=-1)
    for _ in range(3):
        with pytest.raises(NetworkError):
            await bot.send_message(other, "down")
    api.clear_injections()
    await bot.send_message(other, "up")
    assert [m["text"] for m in api.sent(GROUP)] == ["yes"]
    assert [m["text"] for m in api.sent(other)] == ["fine", "up"]


async def test_injected_delay_makes_a_call_slow_but_successful(bot: Bot, api: LocalBotApi) -> None:
    """status=200 with a delay answers correctly after the delay."""
    api.group(GROUP, "A")
    api.inject("sendMessage", status=200, delay=0.3)
    began = time.monotonic()
    message = await bot.send_message(GROUP, "slow")
    assert time.monotonic() - began >= 0.3
    assert message.text == "slow"
    began = time.monotonic()
    await bot.send_message(GROUP, "fast")
    assert time.monotonic() - began < 0.3


# ---- media, locations ----


async def test_photo_get_file_and_download(bot: Bot, api: LocalBotApi) -> None:
    """A posted photo has distinct size ids, the largest keeps file_unique_id, and downloads."""
    posted = api.post_photo(GROUP, ALICE, caption="现场", file_unique_id="AQADevidence1")
    [update] = await drain(bot)
    assert update.message is not None
    sizes = update.message.photo
    assert len({s.file_unique_id for s in sizes}) == len(sizes) >= 2
    assert sizes[-1].file_unique_id == "AQADevidence1"
    assert sizes[-1].width > sizes[0].width
    assert update.message.caption == "现场"

    telegram_file = await bot.get_file(sizes[-1].file_id)
    data = await telegram_file.download_as_bytearray()
    assert bytes(data[:3]) == b"\xff\xd8\xff"
    assert len(data) == telegram_file.file_size == posted["photo"][-1]["file_size"]

    again = api.post_photo(GROUP, BOB, file_unique_id="AQADevidence1")
    assert again["photo"][-1]["file_unique_id"] == "AQADevidence1"
    assert again["photo"][-1]["file_id"] != posted["photo"][-1]["file_id"]
    fresh = api.post_photo(GROUP, BOB)
    assert fresh["photo"][-1]["file_unique_id"] != "AQADevidence1"


async def test_send_photo_by_file_id_reuses_the_file_and_uploads_work(
    bot: Bot, api: LocalBotApi
) -> None:
    """sendPhoto with a known file_id keeps its unique id; an upload gets a new one."""
    posted = api.post_photo(GROUP, ALICE, file_unique_id="AQADsame")
    sent = await bot.send_photo(
        GROUP, posted["photo"][-1]["file_id"], caption="<b>again</b>", parse_mode=ParseMode.HTML
    )
    assert sent.photo[-1].file_unique_id == "AQADsame"
    assert sent.caption == "again"
    assert sent.caption_entities[0].type == "bold"
    uploaded = await bot.send_photo(GROUP, b"\xff\xd8\xff\xe0 fake jpeg \xff\xd9")
    assert uploaded.photo[-1].file_unique_id != "AQADsame"
    data = await (await bot.get_file(uploaded.photo[-1].file_id)).download_as_bytearray()
    assert bytes(data) == b"\xff\xd8\xff\xe0 fake jpeg \xff\xd9"
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(GROUP, "no-such-file-id")


async def test_location_venue_and_live_edit_arrive_as_ptb_objects(api: LocalBotApi) -> None:
    """Locations, venues and live-location edits reach handlers as PTB Location/Venue objects."""
    seen: list[Update] = []

    async def collect(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update)

    async with running(api, MessageHandler(filters.ALL, collect)):
        live = api.post_location(
            GROUP, ALICE, 31.23, 121.47, horizontal_accuracy=15.0, live_period=900
        )
        api.post_venue(GROUP, BOB, 31.2, 121.4, "Block C", "88 Road")
        api.edit_location(GROUP, live["message_id"], 31.24, 121.48, horizontal_accuracy=5.0)
        await api.wait_for(lambda: len(seen) >= 3)

    first, venue, edit = seen
    assert first.message is not None
    assert first.message.location is not None
    assert first.message.location.live_period == dtm.timedelta(seconds=900)  # PTB_TIMEDELTA is on
    assert first.message.location.horizontal_accuracy == 15.0
    assert venue.message is not None
    assert venue.message.venue is not None
    assert venue.message.venue.title == "Block C"
    assert venue.message.location is not None
    assert edit.edited_message is not None
    assert edit.edited_message.location is not None
    assert edit.edited_message.location.latitude == 31.24
    assert edit.edited_message.location.live_period == dtm.timedelta(seconds=900)  # PTB_TIMEDELTA is on
    assert edit.edited_message.edit_date is not None
    stored = api.message(GROUP, live["message_id"])
    assert stored is not None
    assert stored["location"]["latitude"] == 31.24


async def test_user_text_edit_arrives_as_edited_message(bot: Bot, api: LocalBotApi) -> None:
    """edit_text enqueues an edited_message carrying the new text."""
    posted = api.post_text(GROUP, ALICE, "on my way")
    api.edit_text(GROUP, posted["message_id"], "/done now")
    updates = await drain(bot)
    edited = updates[1].edited_message
    assert edited is not None
    assert edited.text == "/done now"
    assert edited.entities[0].type == "bot_command"
    assert updates[0].message is not None
    assert updates[0].message.text == "on my way"


# ---- buttons, members, groups ----


async def test_callback_query_round_trip(api: LocalBotApi) -> None:
    """A pressed inline button reaches CallbackQueryHandler and answerCallbackQuery is recorded."""
    api.start_bot(ALICE)
    answered: list[str] = []

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.data is not None
        await query.answer("noted")
        await query.edit_message_text(f"chose {query.data}")
        answered.append(query.data)

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go:1")]])
        await context.bot.send_message(update.effective_chat.id, "Pick", reply_markup=keyboard)

    async with running(api, CommandHandler("start", on_start), CallbackQueryHandler(on_press)):
        [menu] = await api.wait_sent(ALICE)
        assert menu["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "go:1"
        with pytest.raises(ValueError, match=r"(?i)no button"):
            api.press_button(ALICE, ALICE, menu["message_id"], "go:2")
        query = api.press_button(ALICE, ALICE, menu["message_id"], "go:1")
        assert query["message"]["message_id"] == menu["message_id"]
        await api.wait_for(lambda: answered)
        await api.wait_for(lambda: api.sent(ALICE)[0]["text"] == "chose go:1")

    assert api.callback_answers[0]["text"] == "noted"
    assert api.callback_answers[0]["callback_query_id"] == query["id"]
    edited = api.message(ALICE, menu["message_id"])
    assert edited is not None
    assert "reply_markup" not in edited
    assert "edit_date" in edited


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("member", ChatMemberMember),
        ("administrator", ChatMemberAdministrator),
        ("creator", ChatMemberOwner),
        ("left", ChatMemberLeft),
    ],
)
async def test_get_chat_member_parses_in_ptb(
    bot: Bot, api: LocalBotApi, status: str, expected: type[Any]
) -> None:
    """getChatMember answers every status with the fields PTB 22 requires."""
    api.group(GROUP, "Crew")
    api.user(ALICE, "Alice")
    api.set_member_status(GROUP, ALICE, status)
    member = await bot.get_chat_member(GROUP, ALICE)
    assert type(member) is expected
    assert member.user.id == ALICE


async def test_add_bot_to_group_records_admin_status(bot: Bot, api: LocalBotApi) -> None:
    """add_bot_to_group sends my_chat_member left->administrator and getChatMember agrees."""
    api.group(GROUP, "Crew")
    api.user(ALICE, "Alice")
    api.add_bot_to_group(GROUP, ALICE)
    [update] = await drain(bot)
    change = update.my_chat_member
    assert change is not None
    assert (change.old_chat_member.status, change.new_chat_member.status) == (
        "left",
        "administrator",
    )
    assert change.from_user.id == ALICE
    me = await bot.get_chat_member(GROUP, api.bot_user["id"])
    assert isinstance(me, ChatMemberAdministrator)
    admins = await bot.get_chat_administrators(GROUP)
    assert [a.user.id for a in admins] == [api.bot_user["id"]]
    chat = await bot.get_chat(GROUP)
    assert (chat.title, chat.type) == ("Crew", "supergroup")


async def test_my_chat_member_handler_fires(api: LocalBotApi) -> None:
    """A ChatMemberHandler in a real Application sees the bot being added as a member."""
    statuses: list[str] = []

    async def on_change(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.my_chat_member is not None
        statuses.append(update.my_chat_member.new_chat_member.status)

    async with running(api, ChatMemberHandler(on_change)):
        api.add_bot_to_group(-4001, ALICE, as_admin=False)
        await api.wait_for(lambda: statuses)
    assert statuses == ["member"]


async def test_migrate_group_gives_chat_migrated_on_old_id(bot: Bot, api: LocalBotApi) -> None:
    """After migrate_group, sends to the old id raise ChatMigrated with the new id."""
    old, new = -4005, -1004005
    api.group(old, "Old group")
    api.set_member_status(old, ALICE, "creator")
    moved = api.migrate_group(old, new)
    assert moved["migrate_to_chat_id"] == new
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(old, "hello")
    assert caught.value.new_chat_id == new
    assert (await bot.send_message(new, "hello")).chat.type == "supergroup"
    updates = await drain(bot)
    assert updates[0].message is not None
    assert updates[0].message.migrate_to_chat_id == new
    assert updates[1].message is not None
    assert updates[1].message.migrate_from_chat_id == old
    assert (await bot.get_chat_member(new, ALICE)).status == "creator"


async def test_forwarded_message_carries_forward_origin(bot: Bot, api: LocalBotApi) -> None:
    """forwarded_from gives a forward_origin that PTB parses as MessageOriginUser."""
    api.user(BOB, "Bob", "bob")
    api.post_text(GROUP, ALICE, "look", forwarded_from=BOB)
    api.post_photo(GROUP, ALICE, forwarded_from=BOB, file_unique_id="AQADold")
    text, photo = await drain(bot)
    for update in (text, photo):
        assert update.message is not None
        origin = update.message.forward_origin
        assert isinstance(origin, MessageOriginUser)
        assert origin.sender_user.username == "bob"


async def test_anonymous_admin_message_has_sender_chat(bot: Bot, api: LocalBotApi) -> None:
    """sender_chat_id makes the message come from GroupAnonymousBot on behalf of the chat."""
    api.group(GROUP, "Crew")
    api.post_text(GROUP, ALICE, "announcement", sender_chat_id=GROUP)
    [update] = await drain(bot)
    assert update.message is not None
    assert update.message.sender_chat is not None
    assert update.message.sender_chat.id == GROUP
    assert update.message.from_user is not None
    assert update.message.from_user.id == 1087968824


async def test_command_entity_makes_command_handler_fire(api: LocalBotApi) -> None:
    """Commands get bot_command entities, so CommandHandler fires with args and @mentions."""
    seen: list[list[str]] = []

    async def on_status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(list(context.args or []))

    async with running(api, CommandHandler("status", on_status)):
        api.post_text(GROUP, ALICE, "/status site-3")
        api.post_text(GROUP, ALICE, "/status@sitewalk_bot")
        api.post_text(GROUP, ALICE, "/status@other_bot")
        api.post_text(GROUP, ALICE, "status")
        await api.wait_for(lambda: len(seen) >= 2)
        await asyncio.sleep(0.2)
    assert seen == [["site-3"], []]


async def test_reply_to_unknown_message_is_bad_request(bot: Bot, api: LocalBotApi) -> None:
    """A reply to a missing message fails unless allow_sending_without_reply is set."""
    api.group(GROUP, "Crew")
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(GROUP, "x", reply_parameters=ReplyParameters(message_id=77))
    sent = await bot.send_message(
        GROUP, "x", reply_parameters=ReplyParameters(77, allow_sending_without_reply=True)
    )
    assert sent.reply_to_message is None


async def test_text_limits_and_not_modified(bot: Bot, api: LocalBotApi) -> None:
    """Empty and over-long texts are refused, and an identical edit is "not modified"."""
    api.group(GROUP, "Crew")
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(GROUP, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(GROUP, "x" * 4097)
    sent = await bot.send_message(GROUP, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("x" * 4096, GROUP, sent.message_id)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    edited = await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=keyboard)
    assert not isinstance(edited, bool)
    assert edited.reply_markup == keyboard
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=keyboard)
    stored = api.message(GROUP, sent.message_id)
    assert stored is not None
    assert stored["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
    user_message = api.post_text(GROUP, ALICE, "mine")
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("hijack", GROUP, user_message["message_id"])


async def test_html_and_markdown_are_rendered_and_validated(bot: Bot, api: LocalBotApi) -> None:
    """parse_mode markup becomes plain text plus entities; broken markup is a 400."""
    api.group(GROUP, "Crew")
    sent = await bot.send_message(
        GROUP,
        '<b>Site</b> &lt;3&gt; <a href="https://x.test">map</a> 😀<i>go</i>',
        parse_mode=ParseMode.HTML,
    )
    assert sent.text == "Site <3> map 😀go"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 4),
        ("text_link", 9, 3),
        ("italic", 15, 2),
    ]
    assert sent.text_html == '<b>Site</b> &lt;3&gt; <a href="https://x.test">map</a> 😀<i>go</i>'
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(GROUP, "<b>open", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)Unsupported start tag"):
        await bot.send_message(GROUP, "<div>x</div>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(GROUP, "Done.", parse_mode=ParseMode.MARKDOWN_V2)
    v2 = await bot.send_message(
        GROUP, r"*Done*\. `a_b` [x](https://y.test)", parse_mode=ParseMode.MARKDOWN_V2
    )
    assert v2.text == "Done. a_b x"
    assert [e.type for e in v2.entities] == ["bold", "code", "text_link"]


async def test_reactions_are_recorded_and_validated(bot: Bot, api: LocalBotApi) -> None:
    """setMessageReaction records allowed emoji and refuses unknown messages and emoji."""
    posted = api.post_text(GROUP, ALICE, "收到")
    assert await bot.set_message_reaction(GROUP, posted["message_id"], "👀")
    assert api.reactions(GROUP)[0]["reaction"] == [{"type": "emoji", "emoji": "👀"}]
    assert api.reactions(-1) == []
    with pytest.raises(BadRequest, match=r"(?i)MESSAGE_ID_INVALID"):
        await bot.set_message_reaction(GROUP, 999, "👀")
    with pytest.raises(BadRequest, match=r"(?i)REACTION_INVALID"):
        await bot.set_message_reaction(GROUP, posted["message_id"], "✅")


async def test_reaction_updates_need_allowed_updates(bot: Bot, api: LocalBotApi) -> None:
    """message_reaction updates are held back until allowed_updates names them."""
    posted = api.post_text(GROUP, ALICE, "收到")
    api.react(GROUP, BOB, posted["message_id"], "👍")
    default = await bot.get_updates(timeout=0)
    assert [u.message is not None for u in default] == [True]
    api.react(GROUP, BOB, posted["message_id"], "🔥")
    updates = await bot.get_updates(
        offset=default[-1].update_id + 1, timeout=0, allowed_updates=Update.ALL_TYPES
    )
    assert [
        r.emoji for u in updates if u.message_reaction for r in u.message_reaction.new_reaction
    ] == ["👍", "🔥"]
    last = updates[-1].message_reaction
    assert last is not None
    assert [r.emoji for r in last.old_reaction] == ["👍"]


async def test_commands_are_stored_per_scope(bot: Bot, api: LocalBotApi) -> None:
    """setMyCommands stores per scope and language; getMyCommands and deleteMyCommands agree."""
    await bot.set_my_commands([BotCommand("status", "Show status")])
    await bot.set_my_commands(
        [BotCommand("help", "帮助")], scope=BotCommandScopeChat(GROUP), language_code="zh"
    )
    assert [c.command for c in await bot.get_my_commands()] == ["status"]
    assert api.commands({"type": "chat", "chat_id": GROUP}, "zh")[0]["description"] == "帮助"
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_webhook_blocks_get_updates_until_deleted(bot: Bot, api: LocalBotApi) -> None:
    """With a webhook set, getUpdates is a Conflict; deleteWebhook restores polling."""
    assert await bot.set_webhook("https://example.test/hook", secret_token="s3cret")
    assert api.webhook.secret_token == "s3cret"
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    assert (await bot.get_webhook_info()).url == "https://example.test/hook"
    assert await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


async def test_privacy_mode_hides_plain_group_chatter(bot: Bot, api: LocalBotApi) -> None:
    """With privacy_mode on, a non-admin bot sees commands and replies to it, not chatter."""
    api.privacy_mode = True
    api.group(GROUP, "Crew")
    api.post_text(GROUP, ALICE, "chatter")
    api.post_text(GROUP, ALICE, "/status")
    mine = await bot.send_message(GROUP, "question")
    api.post_text(GROUP, ALICE, "answer", reply_to=mine.message_id)
    assert [u.message.text for u in await drain(bot) if u.message] == ["/status", "answer"]
    api.set_member_status(GROUP, api.bot_user["id"], "administrator")
    api.post_text(GROUP, ALICE, "chatter")
    assert len(await drain(bot)) == 1


# ---- robustness, long polling, throughput ----


async def test_malformed_requests_get_json_envelopes(api: LocalBotApi) -> None:
    """Bad tokens, methods, bodies and parameters answer with envelopes, never a traceback."""
    api.group(GROUP, "Crew")
    status, body = await raw(api, "getMe", path="/bot999:WRONG/getMe")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await raw(api, "fooBar")
    assert (status, body["description"]) == (404, "Not Found: method not found")
    status, body = await raw(
        api, "sendMessage", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert body["ok"] is False
    assert body["error_code"] == 400
    status, body = await raw(api, "sendMessage", data={"chat_id": "abc", "text": "x"})
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await raw(
        api, "sendMessage", data={"chat_id": str(GROUP), "text": "x", "reply_markup": "{broken"}
    )
    assert status == 400
    status, body = await raw(api, "sendMessage", data={"chat_id": str(GROUP)})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await raw(api, "sendMessage", json=[1, 2])
    assert status == 400
    status, body = await raw(api, "getUpdates", data={"offset": "[]"})
    assert status == 400
    status, body = await raw(api, "x", path="/nowhere")
    assert status == 404
    assert body["ok"] is False
    # A numeric-looking text stays text, and JSON bodies work as well as forms.
    status, body = await raw(api, "sendMessage", json={"chat_id": GROUP, "text": "42"})
    assert (status, body["result"]["text"]) == (200, "42")
    status, body = await raw(api, "sendMessage", data={"chat_id": str(GROUP), "text": "007"})
    assert body["result"]["text"] == "007"
    assert all(call.status for call in api.calls)


async def test_long_poll_returns_promptly_when_an_update_arrives(
    bot: Bot, api: LocalBotApi
) -> None:
    """A 10 s long poll answers within 0.5 s of an update being enqueued."""
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    posted_at = time.monotonic()
    api.post_text(GROUP, ALICE, "now")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - posted_at < 0.5
    assert updates[0].message is not None
    assert updates[0].message.text == "now"


async def test_many_concurrent_long_polls_all_wake(api: LocalBotApi) -> None:
    """Fifty concurrent long polls are all answered by one update."""
    async with aiohttp.ClientSession() as session:

        async def poll() -> Any:
            url = f"{api.base_url}{api.token}/getUpdates"
            async with session.post(url, data={"timeout": "10"}) as response:
                return await response.json()

        polls = [asyncio.create_task(poll()) for _ in range(50)]
        await asyncio.sleep(0.3)
        api.post_text(GROUP, ALICE, "wake")
        results = await asyncio.wait_for(asyncio.gather(*polls), 3)
    assert all(len(r["result"]) == 1 for r in results)


async def test_stop_does_not_hang_with_pending_long_poll() -> None:
    """stop() ends a pending long poll at once instead of waiting out its timeout."""
    api = LocalBotApi()
    await api.start()
    async with aiohttp.ClientSession() as session:
        url = f"{api.base_url}{api.token}/getUpdates"
        poll = asyncio.create_task(session.post(url, data={"timeout": "30"}))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        await asyncio.wait_for(api.stop(), 3)
        assert time.monotonic() - began < 1.0
        with contextlib.suppress(aiohttp.ClientError):
            response = await asyncio.wait_for(poll, 3)
            assert json.loads(await response.text())["result"] == []
            response.release()


async def test_offsets_confirm_and_limit_batches(bot: Bot, api: LocalBotApi) -> None:
    """getUpdates honours limit, and an offset drops the confirmed updates."""
    for n in range(150):
        api.post_text(GROUP, ALICE, f"m{n}")
    first = await bot.get_updates(timeout=0)
    assert len(first) == 100
    again = await bot.get_updates(timeout=0, limit=5)
    assert [u.update_id for u in again] == [u.update_id for u in first[:5]]
    rest = await bot.get_updates(offset=first[-1].update_id + 1, timeout=0)
    assert len(rest) == 50
    assert api.pending_update_count == 50
    assert (await bot.get_updates(offset=-1, timeout=0))[0].update_id == rest[-1].update_id


async def test_thousands_of_updates_flow_quickly(api: LocalBotApi) -> None:
    """5,000 updates are enqueued and fetched over HTTP in well under a second of server time."""
    began = time.monotonic()
    for n in range(5000):
        api.post_text(GROUP, ALICE, f"m{n}")
    offset, fetched = 0, 0
    # Raw HTTP, because PTB's own parsing of 5,000 updates would dominate the timing.
    while fetched < 5000:
        status, body = await raw(api, "getUpdates", data={"offset": str(offset)})
        assert status == 200
        fetched += len(body["result"])
        offset = body["result"][-1]["update_id"] + 1
    assert time.monotonic() - began < 3.0
    assert api.pending_update_count == 100
    await raw(api, "getUpdates", data={"offset": str(offset)})
    assert api.pending_update_count == 0


async def test_wait_for_timeout_reports_recent_calls(bot: Bot, api: LocalBotApi) -> None:
    """wait_for's TimeoutError names the predicate and lists the last calls."""
    await bot.get_me()
    with pytest.raises(TimeoutError, match=r"(?i)getMe 200"):
        await api.wait_for(lambda: False, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"(?i)expected 1 message"):
        await api.wait_sent(GROUP, timeout=0.05)


async def test_delete_message_hides_it_but_keeps_the_sent_record(
    bot: Bot, api: LocalBotApi
) -> None:
    """deleteMessage removes a message from message() while sent() still lists it."""
    api.group(GROUP, "Crew")
    sent = await bot.send_message(GROUP, "oops")
    assert await bot.delete_message(GROUP, sent.message_id)
    assert api.message(GROUP, sent.message_id) is None
    assert [m["text"] for m in api.sent(GROUP)] == ["oops"]
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(GROUP, sent.message_id)
    other = api.post_text(GROUP, ALICE, "mine")
    with pytest.raises(BadRequest, match=r"(?i)can't be deleted"):
        await bot.delete_message(GROUP, other["message_id"])


async def test_legacy_markdown_trimming_and_inline_commands(bot: Bot, api: LocalBotApi) -> None:
    """Legacy Markdown renders, texts are trimmed, and commands mid-text get entities."""
    api.group(GROUP, "Crew")
    sent = await bot.send_message(GROUP, "  *Due* in 1.5 h - see /help  ", parse_mode="Markdown")
    assert sent.text == "Due in 1.5 h - see /help"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 3),
        ("bot_command", 19, 5),
    ]
    with pytest.raises(BadRequest, match=r"(?i)can't find end"):
        await bot.send_message(GROUP, "*open", parse_mode="Markdown")


async def test_json_get_and_multipart_requests_are_understood(api: LocalBotApi) -> None:
    """Parameters arrive the same way from a JSON body, a query string or multipart fields."""
    api.group(GROUP, "Crew")
    status, body = await raw(api, "sendMessage", json={"chat_id": GROUP, "text": "json"})
    assert (status, body["result"]["chat"]["id"]) == (200, GROUP)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{api.base_url}{api.token}/getChat", params={"chat_id": str(GROUP)}) as got,
    ):
        assert (await got.json())["result"]["title"] == "Crew"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(GROUP))
    form.add_field("photo", b"\xff\xd8\xff raw", filename="site.jpg", content_type="image/jpeg")
    status, body = await raw(api, "sendPhoto", data=form)
    assert status == 200
    assert body["result"]["photo"][-1]["file_size"] == len(b"\xff\xd8\xff raw")


async def test_get_chat_for_a_started_user(bot: Bot, api: LocalBotApi) -> None:
    """getChat answers a ChatFullInfo that PTB parses, for private chats too."""
    api.user(ALICE, "Alice", "alice")
    api.start_bot(ALICE)
    chat = await bot.get_chat(ALICE)
    assert (chat.type, chat.username, chat.first_name) == ("private", "alice", "Alice")


async def test_get_me_reports_the_privacy_setting(bot: Bot, api: LocalBotApi) -> None:
    """getMe's can_read_all_group_messages is the opposite of privacy_mode, as @BotFather sets it."""
    assert (await bot.get_me()).can_read_all_group_messages is True
    api.privacy_mode = True
    assert (await bot.get_me()).can_read_all_group_messages is False
