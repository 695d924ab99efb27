"""Acknowledgements written in batches: the 收到 of one fetched batch of updates share a commit.

A 收到 was one transaction of its own, and a transaction costs more CPU than the few rows it
writes (benchmarks/ingest.py; about a tenth of a busy group's messages are 收到). Its handler
now hands it here and returns, and the 收到 waiting when the bot next waits for anything are
written together (`HazardService.acknowledge_many`). Nothing is lost or reordered:

- an update whose 收到 is waiting is not confirmed to Telegram (nor answered, in webhook mode)
  until the batch holding it is committed; a crash before that has Telegram deliver it again;
- every other unit of work waits for the 收到 before it to be committed first (`drain`, run by
  `UnitOfWorkFactory.before`), so a photo after a 收到 finds it recorded, as it did before;
- a batch that fails is written again one 收到 at a time, so one bad message fails alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from telegram import Update

from bot.service import AckOutcome, GroupMessage, HazardService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WaitingAck:
    msg: GroupMessage
    at: datetime
    done: Callable[[], None]  # confirms the update that carried it


class AckBatcher:
    """Collects 收到 and writes them in one transaction per batch, in the order they came."""

    def __init__(
        self,
        service: HazardService,
        written: Callable[[], None],
        hold: Callable[[Update], Callable[[], None]],
    ) -> None:
        self._service = service
        self._written = written  # something was stored to send: wake the outbox
        self._hold = hold  # keeps an update unconfirmed until the function it returns is called
        self._waiting: list[WaitingAck] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, msg: GroupMessage, at: datetime, update: Update) -> None:
        """Queue a 收到; its update counts as handled once it is committed (or failed alone)."""
        self._waiting.append(WaitingAck(msg, at, self._hold(update)))
        if self._task is None:
            # Runs when the handlers next wait for something: after the rest of the fetched
            # batch, or before the first update that opens a transaction of its own.
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sitewalk-acks")

    async def drain(self) -> None:
        """Return once every 收到 submitted so far is committed."""
        while (task := self._task) is not None and task is not asyncio.current_task():
            await asyncio.shield(task)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        finally:
            self._task = None

    async def _write(self, batch: list[WaitingAck]) -> None:
        try:
            outcomes = await self._service.acknowledge_many([(a.msg, a.at) for a in batch])
        except Exception:
            if len(batch) > 1:
                log.warning("a batch of %d 收到 failed; writing them one by one", len(batch))
                for ack in batch:
                    await self._write([ack])
                return
            msg = batch[0].msg
            log.exception("收到 %s in chat %s could not be recorded", msg.message_id, msg.chat_id)
            outcomes = []
        if any(o is not AckOutcome.NOT_A_HAZARD_REPLY for o in outcomes):
            self._written()
        for ack in batch:
            ack.done()
