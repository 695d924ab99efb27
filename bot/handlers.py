"""Thin Telegram handlers: parse the update, call the service, let the outbox speak."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING, Any

from telegram import (
    CallbackQuery,
    Chat,
    ChatMember,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
    User,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.service import Evidence, GroupMessage, Photo, Reported, Sender
from escalation.classifier import Kind
from escalation.evidence import EvidenceInput, EvidenceKind

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

ANONYMOUS_ADMIN_ID = 1087968824
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() also accepts "²"
_ADMINS = (ChatMember.OWNER, ChatMember.ADMINISTRATOR)
_GROUP_CHATS = (Chat.GROUP, Chat.SUPERGROUP)
_JOINED = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.RESTRICTED)


def runtime(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return context.application.bot_data["runtime"]  # type: ignore[no-any-return]


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Every handler of the bot, in the order PTB tries them."""
    new = ~filters.UpdateType.EDITED
    group = filters.ChatType.GROUPS & new
    private = filters.ChatType.PRIVATE & new
    media = filters.PHOTO | filters.LOCATION | filters.VENUE
    # First: nearly every update is group text, and no command is (GroupText leaves them out),
    # so trying it ahead of the commands changes no outcome and spares each message ten checks.
    app.add_handler(MessageHandler(GroupText(), on_group_text))
    for name, callback in _GROUP_COMMANDS.items():
        app.add_handler(CommandHandler(name, callback, group))
    app.add_handler(CommandHandler("start", on_start, private))
    app.add_handler(CommandHandler("mine", on_mine, private))
    app.add_handler(CommandHandler("help", on_help_private, private))
    app.add_handler(MessageHandler(group & media, on_group_media))
    app.add_handler(MessageHandler(private & media, on_private_media))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edit))
    app.add_handler(ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(CallbackQueryHandler(on_page, pattern=r"^pg:"))
    app.add_handler(CallbackQueryHandler(on_which_hazard, pattern=r"^ev:"))
    app.add_handler(CallbackQueryHandler(on_dm_button, pattern=r"^(go|sent|stop):"))
    app.add_handler(CallbackQueryHandler(on_other_button))


class GroupText(filters.UpdateFilter):
    """A new text message in a group, not starting with a command: the filter
    `ChatType.GROUPS & ~UpdateType.EDITED & TEXT & ~COMMAND` in one call instead of seven, since
    every update of a busy group goes through it (benchmarks/ingest.py)."""

    __slots__ = ()

    def filter(self, update: Update) -> bool:
        msg = update.message  # not an edit; a channel post or business message is no group's
        if msg is None or not msg.text or msg.chat.type not in _GROUP_CHATS:
            return False
        first = msg.entities[0] if msg.entities else None
        return first is None or first.type != MessageEntity.BOT_COMMAND or first.offset != 0


# ---- parsing ---------------------------------------------------------------------------------


def sender_of(update: Update) -> Sender | None:
    """The person behind a message; None for other bots and channels, which the bot ignores.

    An anonymous group admin posts as the group itself (`sender_chat`), via @GroupAnonymousBot.
    """
    msg = update.effective_message
    chat = update.effective_chat
    return _person(
        msg.sender_chat if msg is not None else None,
        update.effective_user,
        chat.id if chat is not None else None,
    )


def _person(sender_chat: Chat | None, user: User | None, chat_id: int | None) -> Sender | None:
    if sender_chat is not None:
        if sender_chat.id != chat_id:
            return None  # a channel post, or someone posting as a channel
        return Sender(ANONYMOUS_ADMIN_ID, None, sender_chat.title or "", anonymous=True)
    if user is None or user.is_bot:
        return None
    return Sender(user.id, user.username, user.full_name)


def group_message(update: Update) -> GroupMessage | None:
    msg = update.effective_message
    sender = sender_of(update)
    if msg is None or sender is None:
        return None
    reply_to = msg.reply_to_message.message_id if msg.reply_to_message else None
    return GroupMessage(
        msg.chat_id, msg.message_id, sender, reply_to, msg.text or msg.caption or ""
    )


def evidence_of(msg: Message, sender: Sender) -> Evidence:
    forwarded = msg.forward_origin is not None
    if msg.venue is not None:
        return Evidence(
            EvidenceInput(EvidenceKind.VENUE, sender.user_id, sender.username, forwarded)
        )
    if msg.location is not None:
        loc = msg.location
        live = loc.live_period is not None
        return Evidence(
            EvidenceInput(
                EvidenceKind.LOCATION,
                sender.user_id,
                sender.username,
                forwarded,
                lat=loc.latitude,
                lon=loc.longitude,
                accuracy_m=loc.horizontal_accuracy,
            ),
            live=live,
        )
    photo_id = msg.photo[-1].file_unique_id if msg.photo else None
    return Evidence(
        EvidenceInput(
            EvidenceKind.PHOTO, sender.user_id, sender.username, forwarded, file_unique_id=photo_id
        )
    )


def photo_of(msg: Message) -> Photo | None:
    if not msg.photo:
        return None
    return Photo(msg.photo[-1].file_id, msg.photo[-1].file_unique_id)


# ---- group messages --------------------------------------------------------------------------


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A hazard report becomes #N; a bare 收到 is recorded, not accepted."""
    rt = runtime(context)
    msg = update.message  # GroupText let only a new group message with text through
    if msg is None or await rt.service.project_for(msg.chat_id) is None:
        return
    result = rt.classifier.classify(msg.text or "", is_reply=msg.reply_to_message is not None)
    # Most messages are neither: the sender is looked at only for what the bot keeps.
    if result.kind is Kind.OTHER or (gm := group_message(update)) is None:
        return  # chatter, or a bot's or a channel's message
    # Written with the other reports and 收到 of this batch of updates (bot/batches.py); the
    # update is confirmed once that is committed, and a report's card and deadline follow it.
    if result.kind is Kind.HAZARD:
        rt.writes.report(gm, result, rt.clock.now(), update)
    elif result.kind is Kind.ACK:
        rt.writes.acknowledge(gm, rt.clock.now(), update)


async def _reported(rt: Runtime, result: Reported | None) -> None:
    """A report was committed: send its card, and wake the engine by its deadline."""
    rt.dispatcher.kick()
    if result is not None and result.deadline is not None:
        await rt.engine.wake_by(result.deadline)


async def on_group_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or location is evidence, unless its caption reports a new hazard."""
    rt = runtime(context)
    gm = group_message(update)
    msg = update.effective_message
    if gm is None or msg is None or await rt.service.project_for(gm.chat_id) is None:
        return
    if msg.photo and msg.caption:
        result = rt.classifier.classify(msg.caption, is_reply=gm.reply_to is not None)
        if result.kind is Kind.HAZARD:
            await _reported(rt, await rt.service.report(gm, result, photo=photo_of(msg)))
            return
    await rt.service.evidence(gm, evidence_of(msg, gm.sender), msg.caption)
    await rt.changed()


async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit: a report edited into a hazard is registered, and a live location moves.

    Nothing else counts: an edited 收到 stays a 收到, and no edit becomes evidence.
    """
    rt = runtime(context)
    gm = group_message(update)
    msg = update.edited_message
    if gm is None or msg is None:
        return
    if msg.location is not None:
        await rt.service.live_location_moved(gm, evidence_of(msg, gm.sender))
    elif msg.chat.type != msg.chat.PRIVATE and (msg.text or (msg.photo and msg.caption)):
        if await rt.service.project_for(gm.chat_id) is None:
            return
        result = rt.classifier.classify(gm.text, is_reply=gm.reply_to is not None)
        if result.kind is not Kind.HAZARD or await rt.service.is_evidence(gm):
            return
        await rt.service.report(gm, result, photo=photo_of(msg))
    await rt.changed()


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: the project and its hazards move to the new chat id."""
    msg = update.effective_message
    if msg is None:
        return
    if msg.migrate_to_chat_id is not None:
        old, new = msg.chat_id, msg.migrate_to_chat_id
    elif msg.migrate_from_chat_id is not None:
        old, new = msg.migrate_from_chat_id, msg.chat_id
    else:
        return
    await runtime(context).service.membership.migrated(old, new)


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The bot was added to a group (introduce itself), or blocked / unblocked in a DM."""
    change = update.my_chat_member
    if change is None:
        return
    rt = runtime(context)
    old, new = change.old_chat_member.status, change.new_chat_member.status
    if change.chat.type == change.chat.PRIVATE:
        await rt.service.membership.private_chat(change.chat.id, blocked=new == ChatMember.BANNED)
        return
    if old in _JOINED or new not in _JOINED:
        return  # not a join: a promotion, a demotion, or leaving
    await rt.service.membership.joined_group(
        change.chat.id,
        change.chat.title or "",
        admin=new == ChatMember.ADMINISTRATOR,
        reads_all=bool(context.bot.can_read_all_group_messages),
        when=int(change.date.timestamp()),
    )
    await rt.changed()


# ---- group commands --------------------------------------------------------------------------


async def _configured(update: Update, context: ContextTypes.DEFAULT_TYPE) -> GroupMessage | None:
    """The command's message, when it comes from a person in a configured group."""
    gm = group_message(update)
    if gm is None or await runtime(context).service.project_for(gm.chat_id) is None:
        return None
    return gm


async def on_hazards(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/hazards: the open hazards with level and time left."""
    if gm := await _configured(update, context):
        await runtime(context).service.commands.hazards(gm)
        await runtime(context).changed()


async def on_hazard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/hazard N: one hazard's timeline."""
    if gm := await _configured(update, context):
        await runtime(context).service.commands.hazard(gm, context.args or [])
        await runtime(context).changed()


async def on_chain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/chain: the roles and people, and who can be reached by DM."""
    if gm := await _configured(update, context):
        await runtime(context).service.commands.chain(gm)
        await runtime(context).changed()


async def on_dismiss(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/dismiss N reason: a false alarm, by the reporter or an admin."""
    if gm := await _configured(update, context):
        admin = await is_admin(gm, context)
        await runtime(context).service.commands.dismiss(gm, context.args or [], is_admin=admin)
        await runtime(context).changed()


async def on_report(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/report text, or /report in reply to a message: a hazard the classifier did not see.

    Anyone in the group may report, as with any report. The classifier still names the category
    and severity; only its "not a hazard" is overruled, and `matched` says so.
    """
    gm = await _configured(update, context)
    msg = update.effective_message
    if gm is None or msg is None:
        return
    rt = runtime(context)
    text = " ".join(context.args or []).strip()
    target = gm
    original = msg.reply_to_message
    if not text and original is not None and (original.text or original.caption):
        author = _author_of(original)
        if author is None:
            return  # a bot's or a channel's message is not a report
        target = GroupMessage(
            gm.chat_id, original.message_id, author, None, original.text or original.caption or ""
        )
    elif text:
        target = dataclasses.replace(gm, text=text)
    else:
        await rt.service.commands.usage_report(gm)
        rt.dispatcher.kick()
        return
    result = rt.classifier.classify(target.text, is_reply=False)
    forced = dataclasses.replace(
        result, kind=Kind.HAZARD, why=(*result.matched, "rule:reported_by_command")
    )
    photo = photo_of(original) if target is not gm and original is not None else None
    await _reported(rt, await rt.service.report(target, forced, photo=photo))


def _author_of(msg: Message) -> Sender | None:
    """Who wrote a message reported on their behalf; None for bots and channels."""
    return _person(msg.sender_chat, msg.from_user, msg.chat_id)


async def on_id(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/id: answered in unconfigured groups too, since that is where it is needed first."""
    gm = group_message(update)
    chat = update.effective_chat
    if gm is not None and chat is not None:
        await runtime(context).service.commands.ids(gm, chat.title or "")
        await runtime(context).changed()


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if gm := await _configured(update, context):
        await runtime(context).service.commands.help(gm)
        await runtime(context).changed()


async def is_admin(gm: GroupMessage, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """An admin of sitewalk (config `admins`), or of the group; asked of Telegram when needed."""
    if gm.sender.anonymous or gm.sender.user_id in runtime(context).config.admins:
        return True
    try:
        member = await context.bot.get_chat_member(gm.chat_id, gm.sender.user_id)
    except TelegramError as exc:
        log.warning("could not check admin rights in %s: %s", gm.chat_id, exc)
        return False
    return member.status in _ADMINS


_GROUP_COMMANDS = {
    "hazards": on_hazards,
    "hazard": on_hazard,
    "chain": on_chain,
    "report": on_report,
    "dismiss": on_dismiss,
    "id": on_id,
    "help": on_help,
}


# ---- private chat ----------------------------------------------------------------------------


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start [payload] in a DM: this person can now receive DMs, bound to the link's project."""
    sender = sender_of(update)
    msg = update.effective_message
    if sender is None or msg is None:
        return
    payload = context.args[0] if context.args else None
    await msg.reply_text(await runtime(context).service.commands.start(sender, payload))


async def on_mine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mine: the hazards waiting for this person."""
    sender = sender_of(update)
    msg = update.effective_message
    if sender is None or msg is None:
        return
    page = await runtime(context).service.commands.mine(sender)
    await msg.reply_text(page.text, reply_markup=_markup(page.keyboard))


async def on_help_private(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    msg = update.effective_message
    if msg is not None:
        await msg.reply_text(runtime(context).service.commands.help_private())


async def on_private_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or location in a DM: evidence when it replies to a hazard's DM."""
    rt = runtime(context)
    gm = group_message(update)
    msg = update.effective_message
    if gm is None or msg is None:
        return
    await rt.service.evidence_by_dm(gm, evidence_of(msg, gm.sender))
    await rt.changed()


# ---- buttons ---------------------------------------------------------------------------------


async def on_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """‹ › under a long list: the message is edited to show the page asked for."""
    query, presser = _pressed(update)
    message = query.message if query and isinstance(query.message, Message) else None
    if query is None or presser is None or message is None:
        return
    kind, _, tail = (query.data or "").removeprefix("pg:").partition(":")
    arg, _, page_no = tail.rpartition(":")
    page = await runtime(context).service.commands.page(
        message.chat_id, kind, arg, _small_int(page_no) or 1, sender=presser
    )
    await query.answer()
    if page.text != message.text:
        await _edit(message, page.text, page.keyboard)


async def on_which_hazard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """ev:N under "which hazard is this for?": the sender's photo goes to #N."""
    query, presser = _pressed(update)
    message = query.message if query and isinstance(query.message, Message) else None
    number = _small_int((query.data or "").removeprefix("ev:")) if query else None
    if query is None or presser is None or message is None or number is None:
        return
    rt = runtime(context)
    answer, settled = await rt.service.choose_hazard(
        message.chat_id, message.message_id, presser, number
    )
    await query.answer(answer)
    if settled:
        await _edit(message, f"{message.text}\n→ {answer}", None)
    await rt.changed()


async def on_dm_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """我去现场 / 已安排人员 / 叫停施工 under an escalation DM (go:ID, sent:ID, stop:ID)."""
    query, presser = _pressed(update)
    if query is None or presser is None:
        return
    action, _, rest = (query.data or "").partition(":")
    hazard_id = _small_int(rest)
    rt = runtime(context)
    if hazard_id is None:
        await query.answer(rt.service.texts.button_unknown())
        return
    await query.answer(await rt.service.buttons.pressed(presser, action, hazard_id))
    await rt.changed()


async def on_other_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Data this bot never put on a button (old or forged): a short answer, nothing else."""
    if update.callback_query is not None:
        await update.callback_query.answer(runtime(context).service.texts.button_unknown())


def _pressed(update: Update) -> tuple[CallbackQuery | None, Sender | None]:
    query = update.callback_query
    if query is None or query.from_user is None:
        return query, None
    user = query.from_user
    return query, Sender(user.id, user.username, user.full_name)


async def _edit(message: Message, text: str, keyboard: dict[str, Any] | None) -> None:
    """Edit the bot's message under a button; one that is gone, or not the bot's, is left alone."""
    try:
        await message.edit_text(text, reply_markup=_markup(keyboard))
    except BadRequest as exc:
        log.info("could not edit message %s in %s: %s", message.message_id, message.chat_id, exc)


def _small_int(text: str) -> int | None:
    """A number from button data, small enough for an INTEGER column; forged data gives None."""
    return int(text) if _DIGITS.fullmatch(text) else None


def _markup(keyboard: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup.de_json(keyboard) if keyboard else None


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One place for errors: logged with the update's id, never with the token."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s failed", update_id, exc_info=context.error)
