"""The composition root: builds the PTB application, the service and the engine from the config."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update
from telegram.ext import Application, ApplicationBuilder

from bot import handlers
from bot.batches import WriteBatcher
from bot.commands import publish_commands
from bot.config import Config
from bot.engine import EscalationEngine
from bot.escalator import Escalator
from bot.http import AiohttpRequest
from bot.outbox import OutboxDispatcher
from bot.polling import ConfirmAfterHandlingBot, SitewalkApplication
from bot.ratelimit import TelegramLimits
from bot.reload import ConfigReloader, changes_needing_restart, register_reload
from bot.service import HazardService
from bot.texts import Texts
from bot.webhook import AnswerAfterHandlingQueue
from escalation.classifier import Classifier, LexiconExtension
from escalation.clock import Clock
from storage.db import create_engine, migrate, session_factory
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

# How long stopping waits for the reports and 收到 being written (bot/batches.py) before it
# gives up on them (their updates stay unconfirmed: Telegram delivers them again).
WRITES_DRAIN_SECONDS = 10.0


@dataclass
class Runtime:
    """Everything the handlers need, built once and kept in `bot_data`."""

    config: Config
    clock: Clock
    db: AsyncEngine
    uow: UnitOfWorkFactory
    classifier: Classifier
    service: HazardService
    escalator: Escalator
    dispatcher: OutboxDispatcher
    engine: EscalationEngine
    writes: WriteBatcher
    owns_db: bool = False
    dispatcher_idle: float = 1.0
    started: bool = field(default=False)
    reloader: ConfigReloader | None = None
    # The bot's own process (`sitewalk run`, the demo): what start-up built is frozen out of
    # the garbage collector's walks (see settle_heap). Not for tests, which build many bots.
    own_process: bool = False
    _warming: asyncio.Task[None] | None = None

    def apply_config(self, config: Config) -> list[str]:
        """Use a new valid config from now on; hazards in flight keep their chain snapshot.

        Returns the settings (telegram, storage) that only a restart applies.
        """
        restart = changes_needing_restart(self.config, config)
        lex = config.lexicon
        texts = Texts(config.defaults.language, config.defaults.timezone)
        self.classifier = Classifier(
            LexiconExtension(
                tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard)
            )
        )
        self.classifier.warm()
        self.config = self.service.config = self.escalator.config = config
        self.service.texts = self.escalator.texts = texts
        return restart

    async def changed(self) -> None:
        """A handler committed something: send the outbox and re-arm the wake-up."""
        self.dispatcher.kick()
        await self.engine.arm()

    async def start(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Bring the schema up to date, then start the dispatcher and the engine's timers."""
        if self.started:
            return
        await migrate(self.db)
        self.escalator.bot_username = app.bot.username
        await publish_commands(app.bot, self.config.defaults.language)
        self.dispatcher.start(self.dispatcher_idle)
        assert app.job_queue is not None
        self.engine.start(app.job_queue)
        if self.own_process:
            settle_heap()
        self._warming = asyncio.create_task(self._warm_classifier(), name="sitewalk-warm")
        if self.reloader is not None:
            self.reloader.start()
        self.started = True

    async def warmed(self) -> None:
        """Return once start-up is complete: the catch-up done and the classifier loaded."""
        if self._warming is not None:
            await asyncio.shield(self._warming)

    async def _warm_classifier(self) -> None:
        """Load the classifier once the catch-up is done (a message before then loads it)."""
        await self.engine.caught_up.wait()
        self.classifier.warm()
        if self.own_process:
            gc.freeze()  # the model's table, a quarter of a million objects, lives as long

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        if self.reloader is not None:
            await self.reloader.stop()
        try:
            await asyncio.wait_for(self.writes.drain(), WRITES_DRAIN_SECONDS)
        except TimeoutError:  # their updates stay unconfirmed: Telegram delivers them again
            log.warning("stopped with reports or 收到 still being written")
        await self.dispatcher.stop()
        if self.owns_db:
            await self.db.dispose()
        self.started = False


def build_application(
    config: Config,
    *,
    token: str,
    clock: Clock,
    db: AsyncEngine | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
    sweep_every: float = 15.0,
    dispatcher_idle: float = 1.0,
    rate_limit: bool = True,
    config_path: str | Path | None = None,
    reload_every: float = 2.0,
    own_process: bool = False,
    webhook: bool | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The one place where the bot is wired: clock, database and Bot API URL are injected.

    `webhook` (by default: what the config's `mode` says) answers each webhook delivery only
    once its update was handled; polling confirms handled updates through getUpdates instead.
    """
    api = config.telegram.api_base_url.rstrip("/")
    bot = ConfirmAfterHandlingBot(
        token,
        base_url=base_url or f"{api}/bot",
        base_file_url=base_file_url or f"{api}/file/bot",
        request=AiohttpRequest(connection_pool_size=256),
        get_updates_request=AiohttpRequest(connection_pool_size=1),
        rate_limiter=TelegramLimits() if rate_limit else None,
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .application_class(SitewalkApplication)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if webhook is None:
        webhook = config.telegram.mode == "webhook"
    if webhook:
        # Not for polling: the Updater puts a fetched batch one update at a time, and would
        # then wait for each to be handled before queueing the next.
        builder = builder.update_queue(AnswerAfterHandlingQueue())
    app = builder.build()

    owns_db = db is None
    engine_db = db if db is not None else create_engine(config.storage.url)
    uow = UnitOfWorkFactory(session_factory(engine_db))
    lex = config.lexicon
    classifier = Classifier(
        LexiconExtension(tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard))
    )
    texts = Texts(config.defaults.language, config.defaults.timezone)
    escalator = Escalator(config, uow, clock, texts)
    service = HazardService(config, uow, clock, escalator)
    dispatcher = OutboxDispatcher(uow, app.bot, clock, on_unreachable=escalator.dm_refused)
    postgres = engine_db.dialect.name == "postgresql"
    engine = EscalationEngine(
        escalator,
        dispatcher,
        clock,
        sweep_every=sweep_every,
        # PostgreSQL hands concurrent sweeps disjoint batches (SKIP LOCKED); SQLite has one writer.
        sweepers=4 if postgres else 1,
        # Bigger batches share a batch's statements, its people and its chains' names among more
        # hazards (in turns, 3 x 500 took 16-28% longer than 4 x 1,000 over 50,000 overdue);
        # on SQLite a batch holds the one write lock that handlers wait for, so it stays small.
        batch=1000 if postgres else 200,
    )
    # SitewalkApplication, as application_class above says: it confirms updates as handled.
    writes = WriteBatcher(
        service, dispatcher.kick, engine.wake_by, cast(SitewalkApplication, app).hold
    )
    # Every other transaction begins after the reports and 收到 handled before it are written
    # (bot/batches.py).
    uow.before = writes.drain
    app.bot_data["runtime"] = Runtime(
        config,
        clock,
        engine_db,
        uow,
        classifier,
        service,
        escalator,
        dispatcher,
        engine,
        writes,
        owns_db=owns_db,
        dispatcher_idle=dispatcher_idle,
        own_process=own_process,
    )

    if config_path is not None:  # a file to watch: hot reload, and /reload for admins
        runtime = runtime_of(app)
        runtime.reloader = ConfigReloader(Path(config_path), runtime, every=reload_every)
    register_reload(app)
    handlers.register(app)
    app.add_error_handler(handlers.on_error)
    return app


def settle_heap() -> None:
    """Freeze what start-up built (PTB, SQLAlchemy, the config) out of the collector's walks.

    CPython's cyclic collector walks every tracked object in a full collection, and a catch-up
    allocates enough to run dozens of them: 30% of its CPU went there (benchmarks/catchup.py),
    spent walking objects that live as long as the process. Frozen objects are still freed by
    reference counting; only cycles among them are left, and start-up's live forever anyway.
    (A larger young generation saved a little more, and cost 30 MB of peak memory.)
    """
    gc.collect()
    gc.freeze()


def runtime_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Runtime:
    return app.bot_data["runtime"]  # type: ignore[no-any-return]


async def _post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    await runtime_of(app).start(app)


async def _post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    await runtime_of(app).stop()


ALL_UPDATES = Update.ALL_TYPES
