"""Polling that confirms an update to Telegram only after it was handled, so a crash loses none.

PTB's Updater confirms a batch (by asking for the next offset) as soon as it has queued it, while
the application may still be handling it: a `kill -9` then loses hazard reports that Telegram will
never send again. Here the bot asks for the offset after the last *handled* update instead, and
drops updates it has already handed to the Updater, so each is handled at least once and, with
handlers that are idempotent per message, exactly once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot


@dataclass
class Cursor:
    """How far updates were handed to the Updater, and how far they were handled."""

    delivered_up_to: int = -1
    handled_up_to: int | None = None


class ConfirmAfterHandlingBot(ExtBot[Any]):
    """An ExtBot whose getUpdates offset trails the last update the application handled."""

    __slots__ = ("cursor",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with self._unfrozen():  # PTB freezes bot attributes after __init__
            self.cursor = Cursor()

    async def get_updates(self, offset: int | None = None, *args: Any, **kwargs: Any) -> Any:
        cursor = self.cursor
        if cursor.handled_up_to is not None and offset is not None:
            offset = min(offset, cursor.handled_up_to + 1)
        updates = await super().get_updates(offset, *args, **kwargs)
        fresh = tuple(u for u in updates if u.update_id > cursor.delivered_up_to)
        if updates and not fresh:
            # Telegram answers at once while handled-but-unconfirmed updates remain: don't spin.
            await asyncio.sleep(0.05)
        if fresh:
            cursor.delivered_up_to = fresh[-1].update_id
        return fresh


class SitewalkApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Records the last handled update on the bot, so the next getUpdates confirms it."""

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update) and isinstance(self.bot, ConfirmAfterHandlingBot):
                cursor = self.bot.cursor
                cursor.handled_up_to = max(cursor.handled_up_to or 0, update.update_id)
