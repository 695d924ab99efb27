"""The outbox dispatcher: sends committed notifications, and records every failure as data."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, ReactionTypeEmoji, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.buttons import reply_markup
from escalation.clock import Clock
from storage.models import OutboxRow, OutboxStatus
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
NOTICE_SEPARATOR = "\n\n"

RATE_LIMIT_CAP = 20
# Kicks closer together than this share one claim: a busy group's every 收到 kicks, and each
# claim is a transaction, while what it finds is paced at 28 messages a second anyway.
FILL_GAP_SECONDS = 0.05
# A lease younger than this is not renewed before its send: it was just taken, nobody else can
# hold it, and the renewal was a transaction for every message (most are sent right away).
RENEW_AFTER = timedelta(seconds=5)
# The longest the engine's catch-up may hold sending back (see OutboxDispatcher.hold).
MAX_HOLD = timedelta(seconds=30)

UnreachableHook = Callable[[UnitOfWork, OutboxRow], Awaitable[None]]


class OutboxDispatcher:
    """Claims ready rows with a lease, sends them outside any transaction, then marks them.

    A crash after a send and before its mark resends that one message when the lease runs out;
    a crash before the commit that wrote a row sends nothing, and the sweep redoes the step.

    Each chat has at most one sender at a time, which sends its rows in order, so a card still
    comes before the reminder that replies to it; chats are served concurrently, so a group
    held back by Telegram's 20 a minute does not delay the DMs or the other groups. Group
    notices waiting back to back in one group go out as one message: under a burst the group
    reads one list, not a queue that drains for minutes.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        bot: Bot,
        clock: Clock,
        *,
        lease: timedelta = timedelta(seconds=30),
        batch: int = 100,
        max_chats: int = 64,
        max_attempts: int = 5,
        backoff: timedelta = timedelta(seconds=2),
        on_unreachable: UnreachableHook | None = None,
        max_hold: timedelta = MAX_HOLD,
    ) -> None:
        self._on_unreachable = on_unreachable
        self.max_hold = max_hold
        self._open = asyncio.Event()
        self._open.set()
        self._release_later: asyncio.TimerHandle | None = None
        self._uow = uow
        self._bot = bot
        self._clock = clock
        self._lease = lease
        self._batch = batch
        self._max_chats = max_chats
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._senders: dict[int, asyncio.Task[int]] = {}
        self._task: asyncio.Task[None] | None = None

    # ---- running in the background -----------------------------------------------------------

    def kick(self) -> None:
        """Something was committed to the outbox: send it soon."""
        self._wake.set()

    def hold(self) -> None:
        """Sending waits until `release` (or at most `max_hold`): the engine is catching up.

        Recording a backlog of escalations and sending them compete for one CPU, and sending is
        paced at 28 messages a second whatever happens: the last DM of a backlog goes out no
        later for a pause at the start, and every step is committed (visible, and safe from a
        crash) far sooner. Messages already handed to Telegram are not affected.
        """
        if not self._open.is_set():
            return
        self._open.clear()
        loop = asyncio.get_running_loop()
        self._release_later = loop.call_later(self.max_hold.total_seconds(), self.release)

    def release(self) -> None:
        if self._release_later is not None:
            self._release_later.cancel()
            self._release_later = None
        self._open.set()

    async def _held(self) -> None:
        if not self._open.is_set():
            await self._open.wait()

    def start(self, idle_seconds: float = 1.0) -> None:
        self._task = asyncio.create_task(self._run(idle_seconds), name="sitewalk-outbox")

    async def stop(self) -> None:
        self.release()
        tasks = [t for t in (self._task, *self._senders.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._senders.clear()

    async def _run(self, idle_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._held()
            filled_at = loop.time()
            try:
                await self._fill()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("outbox claim failed; retrying")
            # Not asyncio.wait_for: on Python 3.11 a cancel that meets a wake-up (stop cancels
            # the senders, and each sender's end kicks) returned the wake-up and was lost, so
            # the loop went on and stop() waited for ever. A timeout scope lets the cancel through.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_seconds):
                    await self._wake.wait()
            # Kicks that come meanwhile are answered by the next claim, not by one claim each.
            if (pause := filled_at + FILL_GAP_SECONDS - loop.time()) > 0:
                await asyncio.sleep(pause)
            self._wake.clear()

    async def _fill(self) -> list[asyncio.Task[int]]:
        """Start a sender for each chat with ready rows that has none yet; returns them.

        DMs and groups have `max_chats` senders each: groups waiting out their 20 a minute
        must not hold the places that the next escalation DMs need. Both are claimed in one
        statement, so a fill is one transaction: a claim for each was a third of the bot's
        transactions under a busy mix (benchmarks/ingest.py).
        """
        started: list[asyncio.Task[int]] = []
        dms, groups = self._room(private=True), self._room(private=False)
        while dms or groups:
            async with self._uow.one_statement() as uow:
                rows = await uow.outbox.claim(
                    self._clock.now(),
                    self._lease,
                    dms,
                    groups_limit=groups,
                    skip_chats=list(self._senders),
                )
                await uow.commit()
            by_chat: dict[int, list[OutboxRow]] = {}
            for row in rows:
                by_chat.setdefault(row.chat_id, []).append(row)
            for chat_id, chat_rows in by_chat.items():
                task = asyncio.create_task(self._send_chat(chat_id, chat_rows))
                self._senders[chat_id] = task
                task.add_done_callback(functools.partial(self._sender_done, chat_id))
                started.append(task)
            # A kind whose claim came back full may have more rows, for chats still free.
            taken_dms = sum(1 for row in rows if row.chat_id > 0)
            dms = self._room(private=True) if dms and taken_dms == dms else 0
            groups = self._room(private=False) if groups and len(rows) - taken_dms == groups else 0
        return started

    def _room(self, *, private: bool) -> int:
        """How many rows of DMs (or of groups) the next claim may take: one per free sender,
        at most a batch."""
        return max(0, min(self._max_chats - self._busy(private), self._batch))

    def _busy(self, private: bool) -> int:
        return sum(1 for chat_id in self._senders if (chat_id > 0) == private)

    def _sender_done(self, chat_id: int, task: asyncio.Task[int]) -> None:
        self._senders.pop(chat_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox sender for a chat failed", exc_info=task.exception())
        self._wake.set()  # room for another chat, and this one may have more rows

    # ---- one pass ----------------------------------------------------------------------------

    async def drain(self) -> int:
        """Send everything that is ready now and wait for it; returns how many rows were handled."""
        handled = 0
        while True:
            started = await self._fill()
            if not started:
                if not self._senders:
                    return handled
                started = list(self._senders.values())
            for result in await asyncio.gather(*started, return_exceptions=True):
                handled += result if isinstance(result, int) else 0

    async def _send_chat(self, chat_id: int, rows: list[OutboxRow]) -> int:
        """Send one chat's rows in order; back-to-back group notices go out as one message."""
        queue = deque(rows)
        handled = 0
        while queue:
            batch = [queue.popleft()]
            if _mergeable(batch[0]):
                if not queue:  # notices that arrived since the claim join this one
                    queue.extend(await self._claim_chat(chat_id))
                size = len(batch[0].text or "")
                while queue and _mergeable(queue[0]):
                    size += len(NOTICE_SEPARATOR) + len(queue[0].text or "")
                    if size > TEXT_LIMIT:
                        break
                    batch.append(queue.popleft())
            handled += len(batch)
            await self._held()
            held = await self._renew(batch)
            if held:
                await self._deliver(held)
        return handled

    async def _claim_chat(self, chat_id: int) -> Sequence[OutboxRow]:
        async with self._uow.one_statement() as uow:
            rows = await uow.outbox.claim(
                self._clock.now(), self._lease, self._batch, chat_id=chat_id
            )
            await uow.commit()
        return rows

    async def _renew(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """Extend our lease just before sending, unless it is fresh; leaves out rows another
        sender took (which only an expired lease allows)."""
        now = self._clock.now()
        fresh = now + self._lease - RENEW_AFTER
        if all(row.claimed_until is not None and row.claimed_until >= fresh for row in rows):
            return rows
        until = now + self._lease
        held = [(row.id, row.claimed_until) for row in rows if row.claimed_until is not None]
        async with self._uow() as uow:
            renewed = await uow.outbox.renew_many(held, until)
            await uow.commit()
        for row in rows:
            if row.id in renewed:
                row.claimed_until = until
        return [row for row in rows if row.id in renewed]

    async def _deliver(self, rows: list[OutboxRow]) -> None:
        """Send one message for `rows` (one row, or notices merged) and mark every row."""
        row = rows[0]
        text = NOTICE_SEPARATOR.join(r.text or "" for r in rows)
        try:
            sent = await self._call(row, text)
        except Forbidden as exc:
            await self._unreachable(rows, exc.message)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            # Telegram asked us to wait: not the message's fault, so it gets a larger allowance.
            await self._retry(
                rows,
                f"429 retry after {seconds:g}s",
                timedelta(seconds=seconds),
                limit=RATE_LIMIT_CAP,
            )
        except ChatMigrated as exc:
            await self._migrated(rows, exc.new_chat_id)
        except BadRequest as exc:
            await self._failed(rows, f"400 {exc.message}")
        except NetworkError as exc:  # 5xx and timeouts: bounded retries with backoff
            await self._retry(
                rows,
                f"network: {exc.message}",
                self._backoff * 2**row.attempts,
                limit=self._max_attempts,
            )
        except Exception as exc:  # anything else is logged, never fatal to the dispatcher
            log.exception("outbox row %s failed unexpectedly", row.id)
            await self._failed(rows, f"unexpected: {type(exc).__name__}")
        else:
            await self._sent(rows, sent)

    async def _call(self, row: OutboxRow, text: str) -> Message | None:
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
        raw_markup = reply_markup(payload, row.hazard_id)
        markup = InlineKeyboardMarkup.de_json(raw_markup, self._bot) if raw_markup else None
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

    async def _sent(self, rows: list[OutboxRow], message: Message | None) -> None:
        message_id = message.message_id if message is not None else None
        cards = [
            row.hazard_id
            for row in rows
            if message_id is not None and row.purpose == "card" and row.hazard_id is not None
        ]
        # A card's message id is kept with the mark: one statement on PostgreSQL, and one
        # transaction on SQLite, where a unit of one statement is an ordinary transaction.
        async with self._uow.one_statement() as uow:
            await uow.outbox.mark_sent(
                [row.id for row in rows], self._clock.now(), message_id, cards=cards
            )
            await uow.commit()

    async def _unreachable(self, rows: list[OutboxRow], reason: str) -> None:
        """403: the person never pressed Start or blocked the bot. Recorded; escalation goes on."""
        log.info("outbox chat %s unreachable: %s", rows[0].chat_id, reason)
        async with self._uow() as uow:
            for current in await self._current(uow, rows):
                current.status = OutboxStatus.UNREACHABLE
                current.last_error = f"403 {reason}"
                current.claimed_until = None
                current.attempts += 1
                if current.recipient_id is not None:
                    surprise = await uow.people.mark_unreachable(current.recipient_id, reason)
                    # The group notice already named those never started; one who blocked the
                    # bot since is news, and the group hears it once.
                    if surprise and self._on_unreachable is not None:
                        await self._on_unreachable(uow, current)
                self._event(uow, current, "dm_failed", f"403 {reason}")
            await uow.commit()

    async def _retry(
        self, rows: list[OutboxRow], error: str, wait: timedelta, *, limit: int
    ) -> None:
        async with self._uow() as uow:
            for current in await self._current(uow, rows):
                current.last_error = error
                current.claimed_until = None
                current.attempts += 1
                if current.attempts >= limit:
                    current.status = OutboxStatus.FAILED
                    self._event(uow, current, "delivery_failed", error)
                    log.warning(
                        "outbox row %s gave up after %s attempts: %s",
                        current.id,
                        current.attempts,
                        error,
                    )
                else:
                    current.not_before = self._clock.now() + wait
            await uow.commit()

    async def _failed(self, rows: list[OutboxRow], error: str) -> None:
        async with self._uow() as uow:
            for current in await self._current(uow, rows):
                current.status = OutboxStatus.FAILED
                current.last_error = error
                current.claimed_until = None
                current.attempts += 1
                self._event(uow, current, "delivery_failed", error)
                log.warning("outbox row %s failed: %s", current.id, error)
            await uow.commit()

    async def _migrated(self, rows: list[OutboxRow], new_chat_id: int) -> None:
        """The group became a supergroup: move the project and resend to the new id."""
        async with self._uow() as uow:
            await uow.projects.move_chat(rows[0].chat_id, new_chat_id)
            for current in await self._current(uow, rows):
                current.chat_id = new_chat_id
                current.claimed_until = None
            await uow.commit()

    @staticmethod
    async def _current(uow: UnitOfWork, rows: list[OutboxRow]) -> list[OutboxRow]:
        """The rows as this transaction sees them."""
        return await uow.outbox.get_many([row.id for row in rows])

    def _event(self, uow: UnitOfWork, row: OutboxRow, kind: str, reason: str) -> None:
        if row.hazard_id is not None:
            uow.events.append(
                row.hazard_id,
                kind,
                self._clock.now(),
                actor_id=row.recipient_id,
                reason=reason,
                purpose=row.purpose,
            )


def _mergeable(row: OutboxRow) -> bool:
    """A plain group notice: no reply, no buttons, nothing that must stay a message of its own."""
    return (
        row.purpose == "notice"
        and row.method == "sendMessage"
        and row.reply_to_message_id is None
        and reply_markup(row.payload or {}, row.hazard_id) is None
    )
