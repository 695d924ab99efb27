"""Group messages written in batches: the reports and 收到 of one fetched batch share a commit.

A report and a 收到 were each a transaction of their own, and a transaction costs more CPU than
the few rows it writes (benchmarks/ingest.py; about a tenth of a busy group's messages are 收到,
a few are reports). Their handler now hands them here and returns, and those waiting when the
bot next waits for anything are written together, in the order they came
(`HazardService.record_many`). Nothing is lost or reordered:

- an update whose message is waiting is not confirmed to Telegram (nor answered, in webhook
  mode) until the batch holding it is committed; a crash before that has Telegram deliver it
  again;
- every other unit of work waits for the messages before it to be committed first (`drain`,
  run by `UnitOfWorkFactory.before`), so a photo after a 收到 finds it recorded, as it did
  before;
- a batch that fails is written again one message at a time, so one bad message fails alone;
- a report's card and the engine's wake-up follow its commit, as they did when it was alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from telegram import Update

from bot.service import (
    AckOutcome,
    AckToWrite,
    GroupMessage,
    GroupWrite,
    HazardService,
    Reported,
    ReportToWrite,
)
from escalation.classifier import Classification

log = logging.getLogger(__name__)

_ANSWERED = (AckOutcome.REMINDED, AckOutcome.REACTED)  # a 收到 that wrote something to send


@dataclass(frozen=True, slots=True)
class Waiting:
    item: GroupWrite
    done: Callable[[], None]  # confirms the update that carried it


class WriteBatcher:
    """Collects reports and 收到 and writes them in one transaction per batch, in order."""

    def __init__(
        self,
        service: HazardService,
        written: Callable[[], None],
        deadline_set: Callable[[datetime], Awaitable[None]],
        hold: Callable[[Update], Callable[[], None]],
    ) -> None:
        self._service = service
        self._written = written  # something was stored to send: wake the outbox
        self._deadline_set = deadline_set  # a report set a deadline: wake the engine by then
        self._hold = hold  # keeps an update unconfirmed until the function it returns is called
        self._waiting: list[Waiting] = []
        self._task: asyncio.Task[None] | None = None

    def report(
        self, msg: GroupMessage, classification: Classification, at: datetime, update: Update
    ) -> None:
        """Queue a hazard report; its update counts as handled once it is committed."""
        self._submit(ReportToWrite(msg, classification, at), update)

    def acknowledge(self, msg: GroupMessage, at: datetime, update: Update) -> None:
        """Queue a 收到; its update counts as handled once it is committed (or failed alone)."""
        self._submit(AckToWrite(msg, at), update)

    def _submit(self, item: GroupWrite, update: Update) -> None:
        self._waiting.append(Waiting(item, self._hold(update)))
        if self._task is None:
            # Runs when the handlers next wait for something: after the rest of the fetched
            # batch, or before the first update that opens a transaction of its own.
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sitewalk-writes")

    async def drain(self) -> None:
        """Return once every message submitted so far is committed."""
        while (task := self._task) is not None and task is not asyncio.current_task():
            await asyncio.shield(task)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        finally:
            self._task = None

    async def _write(self, batch: list[Waiting]) -> None:
        try:
            outcomes = await self._service.record_many([w.item for w in batch])
        except Exception:
            if len(batch) > 1:
                log.warning("a batch of %d messages failed; writing them one by one", len(batch))
                for waiting in batch:
                    await self._write([waiting])
                return
            msg = batch[0].item.msg
            log.exception("message %s in chat %s not recorded", msg.message_id, msg.chat_id)
            outcomes = []
        if any(isinstance(o, Reported) or o in _ANSWERED for o in outcomes):
            self._written()
        deadlines = [o.deadline for o in outcomes if isinstance(o, Reported) and o.deadline]
        if deadlines:
            try:
                await self._deadline_set(min(deadlines))
            except Exception:  # the batch is committed; the next sweep is the safety net
                log.exception("could not wake the engine by a new deadline")
        for waiting in batch:
            waiting.done()
