"""Building outbox rows: every message the bot will send is first a row in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.models import HazardFields, HazardRow, OutboxStatus
from storage.uow import UnitOfWork


def enqueue_message(
    uow: UnitOfWork,
    row: HazardRow | None,
    purpose: str,
    chat_id: int,
    text: str,
    now: datetime,
    *,
    key: str,
    reply_to: int | None = None,
    recipient: int | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """A sendMessage (sendPhoto when the payload has a photo) to make after commit.

    `key` is unique per intended delivery.
    """
    uow.outbox.add(
        outbox_values(
            row,
            purpose,
            "sendPhoto" if payload and payload.get("photo") else "sendMessage",
            chat_id,
            text,
            now,
            key=key,
            reply_to=reply_to,
            recipient=recipient,
            payload=payload,
        )
    )


def enqueue_reaction(
    uow: UnitOfWork,
    row: HazardRow | None,
    chat_id: int,
    message_id: int,
    emoji: str,
    now: datetime,
    *,
    key: str,
) -> None:
    """A reaction instead of a reply, where a reaction says enough."""
    uow.outbox.add(
        outbox_values(
            row,
            "reaction",
            "setMessageReaction",
            chat_id,
            None,
            now,
            key=key,
            payload={"message_id": message_id, "emoji": emoji},
        )
    )


def outbox_values(
    row: HazardFields | None,
    purpose: str,
    method: str,
    chat_id: int,
    text: str | None,
    now: datetime,
    *,
    key: str,
    reply_to: int | None = None,
    recipient: int | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An outbox row as plain values, for a bulk insert (the sweep writes thousands at once)."""
    return {
        "hazard_id": row.id if row is not None else None,
        "purpose": purpose,
        "method": method,
        "chat_id": chat_id,
        "recipient_id": recipient,
        "text": text,
        "reply_to_message_id": reply_to,
        "payload": payload or {},
        "dedupe_key": key,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }
