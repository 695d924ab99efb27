"""A running bot for tests: the local Bot API, the real PTB polling loop, a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application, Updater

from bot.app import Runtime, build_application, runtime_of
from bot.config import Config
from bot.sandbox import LocalBotApi
from escalation.clock import FakeClock
from storage.models import HazardEvent, HazardRow, OutboxRow, OutboxStatus
from tests.conftest import (
    CHIEF,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    SUPERVISOR_B,
    Database,
)

Json = dict[str, Any]


class BotUnderTest:
    """The bot as a group sees it, with helpers to move the fake clock and read the database."""

    def __init__(self, api: LocalBotApi, app: Application[Any, Any, Any, Any, Any, Any],
                 clock: FakeClock) -> None:
        self.api = api
        self.app = app
        self.clock = clock

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.app)

    async def settle(self) -> None:
        """Wait until every pending update is handled and the outbox is empty."""
        await self.api.wait_for(lambda: self.api.pending_update_count == 0, timeout=5)
        await self.app.update_queue.join()
        await self.outbox_quiet()

    async def outbox_quiet(self) -> None:
        """Wait until no ready outbox row is waiting or in flight (the background sender too)."""
        await self.runtime.dispatcher.drain()

        async def ready() -> int:
            async with self.runtime.uow() as uow:
                stmt = select(func.count()).where(
                    OutboxRow.status == OutboxStatus.PENDING,
                    OutboxRow.not_before <= self.clock.now(),
                )
                return int((await uow.hazards._s.execute(stmt)).scalar_one())

        for _ in range(500):
            if await ready() == 0:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("outbox rows still pending")

    async def advance(self, delta: timedelta) -> None:
        """Move the fake clock, then let the engine and the dispatcher do what fell due."""
        self.clock.advance(delta)
        await self.tick()

    async def tick(self) -> None:
        await self.runtime.engine.tick()
        await self.outbox_quiet()

    async def say(self, user: int, text: str, reply_to: int | None = None) -> Json:
        msg = self.api.post_text(GROUP, user, text, reply_to=reply_to)
        await self.settle()
        return msg

    async def hazards(self) -> list[HazardRow]:
        async with self.runtime.uow() as uow:
            session = uow.hazards._s
            return list((await session.execute(select(HazardRow).order_by(HazardRow.id))).scalars())

    async def events(self, kind: str | None = None) -> list[HazardEvent]:
        async with self.runtime.uow() as uow:
            stmt = select(HazardEvent).order_by(HazardEvent.id)
            if kind:
                stmt = stmt.where(HazardEvent.kind == kind)
            return list((await uow.hazards._s.execute(stmt)).scalars())

    async def outbox(self) -> list[OutboxRow]:
        async with self.runtime.uow() as uow:
            stmt = select(OutboxRow).order_by(OutboxRow.id)
            return list((await uow.hazards._s.execute(stmt)).scalars())

    def group_texts(self) -> list[str]:
        return [m.get("text", "") for m in self.api.sent(GROUP)]

    def dms(self, user: int) -> list[str]:
        return [m.get("text", "") for m in self.api.sent(user)]


def people(api: LocalBotApi) -> None:
    api.group(GROUP, "清江浦房产2021老小区改造")
    api.user(REPORTER, "安全巡查员", "inspector")
    api.user(SAFETY, "老王", "wang_safety")
    api.user(SUPERVISOR_A, "张工", "zhang_sup")
    api.user(SUPERVISOR_B, "李工", "li_sup")
    api.user(CHIEF, "赵工", "zhao_chief")
    api.user(OUTSIDER, "路人", "passerby")


@asynccontextmanager
async def serving(
    app: Application[Any, Any, Any, Any, Any, Any],
    start_updater: Callable[[Updater], Awaitable[object]],
) -> AsyncIterator[None]:
    """The bot started as `sitewalk run` starts it, its Updater as given; stopped in reverse."""
    async with app:
        await runtime_of(app).start(app)
        assert app.updater is not None
        await start_updater(app.updater)
        await app.start()
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()
            await runtime_of(app).stop()


@asynccontextmanager
async def running_bot(
    config: Config,
    database: Database,
    *,
    start: datetime,
    api: LocalBotApi | None = None,
    clock: FakeClock | None = None,
) -> AsyncIterator[BotUnderTest]:
    """Start the real bot against the local Bot API; stop it cleanly afterwards."""
    own_api = api is None
    api = api or LocalBotApi()
    if own_api:
        await api.start()
        people(api)
    clock = clock or FakeClock(start)
    engine = database.engine()
    app = build_application(
        config, token=api.token, clock=clock, db=engine, base_url=api.base_url,
        base_file_url=api.base_file_url, sweep_every=3600, dispatcher_idle=0.05,
        rate_limit=False,
    )
    try:
        polling = serving(app, lambda updater: updater.start_polling(
            poll_interval=0.01, timeout=1, allowed_updates=Update.ALL_TYPES))
        async with polling:
            yield BotUnderTest(api, app, clock)
    finally:
        await engine.dispose()
        if own_api:
            await api.stop()
