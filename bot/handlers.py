"""Thin Telegram handlers: parse the update, call the service, let the outbox speak."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.service import GroupMessage, Sender
from escalation.classifier import Kind
from escalation.evidence import EvidenceInput, EvidenceKind

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

ANONYMOUS_ADMIN_ID = 1087968824


def runtime(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return context.application.bot_data["runtime"]  # type: ignore[no-any-return]


def sender_of(update: Update) -> Sender | None:
    """The person behind a message; None for other bots, which the bot ignores."""
    user = update.effective_user
    if user is None or (user.is_bot and user.id != ANONYMOUS_ADMIN_ID):
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


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A hazard report becomes #N; a bare 收到 replying to one is recorded, not accepted."""
    rt = runtime(context)
    gm = group_message(update)
    if gm is None or rt.config.project_for_chat(gm.chat_id) is None:
        return
    result = rt.classifier.classify(gm.text, is_reply=gm.reply_to is not None)
    if result.kind is Kind.HAZARD:
        await rt.service.report(gm, result)
    elif result.kind is Kind.ACK and gm.reply_to is not None:
        await rt.service.acknowledge(gm)
    else:
        return
    await rt.changed()


async def on_group_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo or location is evidence, unless its caption reports a new hazard."""
    rt = runtime(context)
    gm = group_message(update)
    msg = update.effective_message
    if gm is None or msg is None or rt.config.project_for_chat(gm.chat_id) is None:
        return
    if msg.photo and msg.caption:
        result = rt.classifier.classify(msg.caption, is_reply=gm.reply_to is not None)
        if result.kind is Kind.HAZARD:
            await rt.service.report(gm, result, photo_file_id=msg.photo[-1].file_id)
            await rt.changed()
            return
    await rt.service.evidence(gm, evidence_of(msg, gm.sender), msg.caption)
    await rt.changed()


def evidence_of(msg: Message, sender: Sender) -> EvidenceInput:
    forwarded = msg.forward_origin is not None
    if msg.venue is not None:
        return EvidenceInput(EvidenceKind.VENUE, sender.user_id, sender.username, forwarded)
    if msg.location is not None:
        loc = msg.location
        return EvidenceInput(
            EvidenceKind.LOCATION,
            sender.user_id,
            sender.username,
            forwarded,
            lat=loc.latitude,
            lon=loc.longitude,
            accuracy_m=loc.horizontal_accuracy,
        )
    photo_id = msg.photo[-1].file_unique_id if msg.photo else None
    return EvidenceInput(
        EvidenceKind.PHOTO, sender.user_id, sender.username, forwarded, file_unique_id=photo_id
    )


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start in a DM: from now on this person can receive escalation DMs."""
    sender = sender_of(update)
    msg = update.effective_message
    if sender is None or msg is None:
        return
    await msg.reply_text(await runtime(context).service.started(sender))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One place for errors: logged with the update's id, never with the token."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s failed", update_id, exc_info=context.error)
