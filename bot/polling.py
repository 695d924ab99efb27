"""Polling that confirms an update to Telegram only after it was handled, so a crash loses none.

PTB's Updater confirms a batch (by asking for the next offset) as soon as it has queued it, while
the application may still be handling it: a `kill -9` then loses hazard reports that Telegram will
never send again. Here the bot asks for the offset after the last *handled* update instead, and
drops updates it has already handed to the Updater, so each is handled at least once and, with
handlers that are idempotent per message, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ExtBot

from bot.webhook import AnswerAfterHandlingQueue

log = logging.getLogger(__name__)

CATCH_UP_WAIT_SECONDS = 1.0  # the longest a fetch waits for the application to catch up


@dataclass
class Cursor:
    """How far updates were handed to the Updater, and which of those are not handled yet."""

    delivered_up_to: int = -1
    floor: int = 0  # past updates that could not be parsed, so they are confirmed and gone
    unhandled: set[int] = field(default_factory=set)
    # Set while nothing delivered waits to be handled: the next fetch starts the moment the
    # last update is handled, where polling for that every 5 ms left the bot idle 2.5 ms a
    # batch on average (benchmarks/ingest.py).
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def delivered(self, update_ids: Iterable[int]) -> None:
        self.unhandled.update(update_ids)
        if self.unhandled:
            self.caught_up.clear()

    def handled(self, update_id: int) -> None:
        self.unhandled.discard(update_id)
        if not self.unhandled:
            self.caught_up.set()


class ConfirmAfterHandlingBot(ExtBot[Any]):
    """An ExtBot whose getUpdates offset never passes an update the application has not handled."""

    __slots__ = ("cursor",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():  # PTB freezes bot attributes after __init__
            self.cursor = Cursor()

    async def get_updates(self, offset: int | None = None, *args: Any, **kwargs: Any) -> Any:
        cursor = self.cursor
        # While delivered updates are still being handled, a fetch only brings them back and PTB
        # parses them all again: under load that re-parsing was most of the bot's CPU
        # (benchmarks/ingest.py). Let the application catch up first; bounded, so the final
        # confirming call at shutdown never waits on a queue nobody handles any more.
        if cursor.unhandled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cursor.caught_up.wait(), CATCH_UP_WAIT_SECONDS)
        if cursor.floor and offset is not None:
            offset = max(offset, cursor.floor)
        if cursor.unhandled and offset is not None:
            offset = min(offset, min(cursor.unhandled))
        try:
            updates = await super().get_updates(offset, *args, **kwargs)
        except TelegramError:
            raise
        except Exception:
            # PTB could not parse the batch. Its own Updater would drop the whole batch; here
            # the batch would come back for ever. Parse update by update, drop the bad ones.
            updates = await self._parse_one_by_one(offset)
        fresh = tuple(u for u in updates if u.update_id > cursor.delivered_up_to)
        if updates and not fresh:
            # Telegram answers at once while handled-but-unconfirmed updates remain: don't spin.
            await asyncio.sleep(0.05)
        if fresh:
            cursor.delivered_up_to = fresh[-1].update_id
            cursor.delivered(u.update_id for u in fresh)
        return fresh

    async def _parse_one_by_one(self, offset: int | None) -> tuple[Update, ...]:
        raw = await self._post("getUpdates", {"offset": offset, "timeout": 0, "limit": 100})
        good: list[Update] = []
        for item in raw if isinstance(raw, list) else []:
            try:
                update = Update.de_json(item, self)
            except Exception:
                update = None
            if update is None:
                update_id = item.get("update_id", 0) if isinstance(item, dict) else 0
                log.warning("dropped update %s: python-telegram-bot cannot parse it", update_id)
                self.cursor.floor = max(self.cursor.floor, int(update_id) + 1)
            else:
                good.append(update)
        return tuple(good)


class SitewalkApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Tells the delivery that an update was handled: the next getUpdates confirms it, and in
    webhook mode Telegram gets its answer (`bot/webhook.py`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Updates whose handlers left work to finish later (bot/batches.py): handled when done.
        self._held: set[int] = set()

    def hold(self, update: Update) -> Callable[[], None]:
        """The update's handling goes on after its handler returns: it counts as handled (is
        confirmed, or answered) only when the returned function is called."""
        self._held.add(update.update_id)
        return functools.partial(self._release, update.update_id)

    def _release(self, update_id: int) -> None:
        self._held.discard(update_id)
        self._handled(update_id)

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update) and update.update_id not in self._held:
                self._handled(update.update_id)

    def _handled(self, update_id: int) -> None:
        if isinstance(self.bot, ConfirmAfterHandlingBot):
            self.bot.cursor.handled(update_id)
        if isinstance(self.update_queue, AnswerAfterHandlingQueue):
            self.update_queue.handled(update_id)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            # Updates still queued were dropped unhandled: Telegram must not hear 200 for them.
            if isinstance(self.update_queue, AnswerAfterHandlingQueue):
                self.update_queue.give_up()
