"""Webhook delivery that answers Telegram only after the update was handled, so a crash loses none.

PTB's webhook handler answers 200 as soon as `update_queue.put(update)` returns, while the
update may still wait in the queue: a `kill -9` then loses a hazard report that Telegram will
never send again. With this queue, `put` returns once the application has handled the update
(and committed what it writes). A crash before that leaves Telegram without an answer, and
Telegram delivers the update again; the handlers are idempotent per message, as for polling.
"""

from __future__ import annotations

import asyncio

from telegram import Update


class UpdateNotHandled(Exception):
    """The bot stopped before handling a delivered update: Telegram must deliver it again."""


class AnswerAfterHandlingQueue(asyncio.Queue[object]):
    """The update queue in webhook mode: `put` of an Update waits until it was handled.

    Other objects (PTB's stop signal) go through at once. Telegram may deliver an update again
    while the first delivery still waits (it timed out on its side): both are answered when
    the update is first handled.
    """

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}

    async def put(self, item: object) -> None:
        if not isinstance(item, Update):
            await super().put(item)
            return
        handled = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(item.update_id, []).append(handled)
        await super().put(item)
        await handled

    def handled(self, update_id: int) -> None:
        """The application is done with this update (errors included): answer its delivery."""
        for waiting in self._waiting.pop(update_id, ()):
            if not waiting.done():
                waiting.set_result(None)

    def give_up(self) -> None:
        """The bot is stopping: deliveries still waiting are answered with an error, not 200."""
        waiting, self._waiting = self._waiting, {}
        for update_id, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_exception(UpdateNotHandled(f"update {update_id} was not handled"))
