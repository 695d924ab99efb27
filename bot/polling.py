"""Polling that confirms an update to Telegram only after it was handled, so a crash loses none.

PTB's Updater confirms a batch (by asking for the next offset) as soon as it has queued it, while
the application may still be handling it: a `kill -9` then loses hazard reports that Telegram will
never send again. Here the bot asks for the offset after the last *handled* update instead, and
drops updates it has already handed to the Updater, so each is handled at least once and, with
handlers that are idempotent per message, exactly once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot


@dataclass
class Cursor:
    """How far updates were handed to the Updater, and which of those are not handled yet."""

    delivered_up_to: int = -1
    unhandled: set[int] = field(default_factory=set)


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
        for _ in range(200):
            if not cursor.unhandled:
                break
            await asyncio.sleep(0.005)
        if cursor.unhandled and offset is not None:
            offset = min(offset, min(cursor.unhandled))
        updates = await super().get_updates(offset, *args, **kwargs)
        fresh = tuple(u for u in updates if u.update_id > cursor.delivered_up_to)
        if updates and not fresh:
            # Telegram answers at once while handled-but-unconfirmed updates remain: don't spin.
            await asyncio.sleep(0.05)
        if fresh:
            cursor.delivered_up_to = fresh[-1].update_id
            cursor.unhandled.update(u.update_id for u in fresh)
        return fresh


class SitewalkApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Records the last handled update on the bot, so the next getUpdates confirms it."""

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update) and isinstance(self.bot, ConfirmAfterHandlingBot):
                self.bot.cursor.unhandled.discard(update.update_id)
