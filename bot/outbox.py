"""The outbox dispatcher: sends committed notifications, and records every failure as data."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, ReactionTypeEmoji, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from escalation.clock import Clock
from storage.models import OutboxRow, OutboxStatus
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024

RATE_LIMIT_CAP = 20

UnreachableHook = Callable[[UnitOfWork, OutboxRow], Awaitable[None]]


class OutboxDispatcher:
    """Claims ready rows with a lease, sends them outside any transaction, then marks them.

    A crash after a send and before its mark resends that one message when the lease runs out;
    a crash before the commit that wrote a row sends nothing, and the sweep redoes the step.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        bot: Bot,
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=30),
        batch: int = 100,
        concurrency: int = 16,
        max_attempts: int = 5,
        backoff: timedelta = timedelta(seconds=2),
        on_unreachable: UnreachableHook | None = None,
    ) -> None:
        self._on_unreachable = on_unreachable
        self._uow = uow
        self._bot = bot
        self._clock = clock
        self._lease = lease
        self._batch = batch
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    # ---- running in the background -----------------------------------------------------------

    def kick(self) -> None:
        """Something was committed to the outbox: send it soon."""
        self._wake.set()

    def start(self, idle_seconds: float = 1.0) -> None:
        self._task = asyncio.create_task(self._run(idle_seconds), name="sitewalk-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, idle_seconds: float) -> None:
        while True:
            try:
                await self.drain()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("outbox drain failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_seconds)
            self._wake.clear()

    # ---- one pass ----------------------------------------------------------------------------

    async def drain(self) -> int:
        """Send everything that is ready now; returns how many rows were handled.

        Chats are served concurrently, each in order: a group held back by Telegram's
        20-per-minute limit does not delay the DMs behind it, and a card still comes before
        the reminder that replies to it.
        """
        handled = 0
        while True:
            async with self._uow() as uow:
                rows = await uow.outbox.claim(self._clock.now(), self._lease, self._batch)
                await uow.commit()
            if not rows:
                return handled
            by_chat: dict[int, list[OutboxRow]] = {}
            for row in rows:
                by_chat.setdefault(row.chat_id, []).append(row)
            await asyncio.gather(*(self._send_in_order(chat) for chat in by_chat.values()))
            handled += len(rows)

    async def _send_in_order(self, rows: list[OutboxRow]) -> None:
        for row in rows:
            async with self._slots:
                if await self._renew(row):
                    await self._deliver(row)

    async def _renew(self, row: OutboxRow) -> bool:
        """Extend our lease just before sending; False when another sender took the row."""
        assert row.claimed_until is not None
        until = self._clock.now() + self._lease
        async with self._uow() as uow:
            renewed = await uow.outbox.renew(row.id, row.claimed_until, until)
            await uow.commit()
        if renewed:
            row.claimed_until = until
        return renewed

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            sent = await self._call(row)
        except Forbidden as exc:
            await self._unreachable(row, exc.message)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            # Telegram asked us to wait: not the message's fault, so it gets a larger allowance.
            await self._retry(
                row,
                f"429 retry after {seconds:g}s",
                timedelta(seconds=seconds),
                limit=RATE_LIMIT_CAP,
            )
        except ChatMigrated as exc:
            await self._migrated(row, exc.new_chat_id)
        except BadRequest as exc:
            await self._failed(row, f"400 {exc.message}")
        except NetworkError as exc:  # 5xx and timeouts: bounded retries with backoff
            await self._retry(
                row,
                f"network: {exc.message}",
                self._backoff * 2**row.attempts,
                limit=self._max_attempts,
            )
        except Exception as exc:  # anything else is logged, never fatal to the dispatcher
            log.exception("outbox row %s failed unexpectedly", row.id)
            await self._failed(row, f"unexpected: {type(exc).__name__}")
        else:
            await self._sent(row, sent)

    async def _call(self, row: OutboxRow) -> Message | None:
        payload: dict[str, Any] = row.payload or {}
        if row.method == "setMessageReaction":
            await self._bot.set_message_reaction(
                chat_id=row.chat_id,
                message_id=payload["message_id"],
                reaction=[ReactionTypeEmoji(payload["emoji"])],
            )
            return None
        reply = (
            ReplyParameters(row.reply_to_message_id, allow_sending_without_reply=True)
            if row.reply_to_message_id
            else None
        )
        raw_markup = payload.get("reply_markup")
        markup = InlineKeyboardMarkup.de_json(raw_markup, self._bot) if raw_markup else None
        text = row.text or ""
        if row.method == "sendPhoto":
            fits = len(text) <= CAPTION_LIMIT
            photo = await self._bot.send_photo(
                chat_id=row.chat_id,
                photo=payload["photo"],
                caption=text if fits else None,
                reply_parameters=reply,
                reply_markup=markup if fits else None,
            )
            if fits:
                return photo
            # Captions stop at 1024 characters: a longer text follows as a reply to its photo.
            reply = ReplyParameters(photo.message_id, allow_sending_without_reply=True)
        return await self._bot.send_message(
            chat_id=row.chat_id, text=text, reply_parameters=reply, reply_markup=markup
        )

    # ---- marking -----------------------------------------------------------------------------

    async def _sent(self, row: OutboxRow, message: Message | None) -> None:
        async with self._uow() as uow:
            current = await uow.outbox.get(row.id)
            if current is None:
                return
            current.status = OutboxStatus.SENT
            current.sent_at = self._clock.now()
            current.attempts += 1
            current.claimed_until = None
            if message is not None:
                current.sent_message_id = message.message_id
                if current.purpose == "card" and current.hazard_id is not None:
                    hazard = await uow.hazards.get(current.hazard_id)
                    if hazard is not None:
                        hazard.card_message_id = message.message_id
            await uow.commit()

    async def _unreachable(self, row: OutboxRow, reason: str) -> None:
        """403: the person never pressed Start or blocked the bot. Recorded; escalation goes on."""
        log.info("outbox row %s: recipient %s unreachable: %s", row.id, row.recipient_id, reason)
        async with self._uow() as uow:
            current = await uow.outbox.get(row.id)
            if current is None:
                return
            current.status = OutboxStatus.UNREACHABLE
            current.last_error = f"403 {reason}"
            current.claimed_until = None
            current.attempts += 1
            if current.recipient_id is not None:
                surprise = await uow.people.mark_unreachable(current.recipient_id, reason)
                # The group notice already named those never started; one who blocked the bot
                # since is news, and the group hears it once.
                if surprise and self._on_unreachable is not None:
                    await self._on_unreachable(uow, current)
            if current.hazard_id is not None:
                uow.events.append(
                    current.hazard_id,
                    "dm_failed",
                    self._clock.now(),
                    actor_id=current.recipient_id,
                    reason=f"403 {reason}",
                    purpose=current.purpose,
                )
            await uow.commit()

    async def _retry(self, row: OutboxRow, error: str, wait: timedelta, *, limit: int) -> None:
        async with self._uow() as uow:
            current = await uow.outbox.get(row.id)
            if current is None:
                return
            current.last_error = error
            current.claimed_until = None
            current.attempts += 1
            if current.attempts >= limit:
                current.status = OutboxStatus.FAILED
                if current.hazard_id is not None:
                    uow.events.append(
                        current.hazard_id,
                        "delivery_failed",
                        self._clock.now(),
                        actor_id=current.recipient_id,
                        reason=error,
                        purpose=current.purpose,
                    )
                log.warning(
                    "outbox row %s gave up after %s attempts: %s", row.id, current.attempts, error
                )
            else:
                current.not_before = self._clock.now() + wait
            await uow.commit()

    async def _failed(self, row: OutboxRow, error: str) -> None:
        async with self._uow() as uow:
            current = await uow.outbox.get(row.id)
            if current is None:
                return
            current.status = OutboxStatus.FAILED
            current.last_error = error
            current.claimed_until = None
            current.attempts += 1
            if current.hazard_id is not None:
                uow.events.append(
                    current.hazard_id,
                    "delivery_failed",
                    self._clock.now(),
                    actor_id=current.recipient_id,
                    reason=error,
                    purpose=current.purpose,
                )
            await uow.commit()
        log.warning("outbox row %s failed: %s", row.id, error)

    async def _migrated(self, row: OutboxRow, new_chat_id: int) -> None:
        """The group became a supergroup: move the project and resend to the new id."""
        async with self._uow() as uow:
            await uow.projects.move_chat(row.chat_id, new_chat_id)
            current = await uow.outbox.get(row.id)
            if current is not None:
                current.chat_id = new_chat_id
                current.claimed_until = None
            await uow.commit()
