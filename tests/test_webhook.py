"""Webhook mode: a wrong secret_token is refused, a delivery is answered once handled, and
neither secret ever reaches the log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import Bot, Update
from telegram.ext import ContextTypes, TypeHandler

from bot.app import build_application
from bot.config import Config
from bot.sandbox import LocalBotApi
from bot.webhook import AnswerAfterHandlingQueue, UpdateNotHandled
from escalation.clock import FakeClock
from tests.botkit import BotUnderTest, people, serving
from tests.conftest import CONFIG_TOML, GROUP, REPORTER, T0, Database

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "7123456789:AAH-realistic-looking-secret-half_0123456789"
SECRET = "webhook-secret-4f9c2d"
REPORT = "塔吊配重块松动了,螺栓都看得见缝"
CRITICAL = "3号楼塔吊配重块松动,随时可能掉下来,下面还有人在干活"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def report_update(api: LocalBotApi, update_id: int, text: str = REPORT) -> dict[str, Any]:
    """A hazard report in the group, stored in the sandbox as Telegram would have it."""
    state = api.world.chat(GROUP)
    message = api.world.new_message(state, api.world.user(REPORTER).user, {"text": text})
    return {"update_id": update_id, "message": message}


async def post(url: str, update: dict[str, Any], secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=json.dumps(update), headers=headers) as response,
    ):
        return response.status


@asynccontextmanager
async def webhook_bot(
    config: Config, database: Database, api: LocalBotApi
) -> AsyncIterator[tuple[BotUnderTest, str]]:
    """The real bot serving its webhook on a free local port (answering each delivery once it
    was handled, as in webhook mode); yields it and the webhook URL."""
    engine = database.engine()
    clock = FakeClock(T0)
    app = build_application(
        config,
        token=TOKEN,
        clock=clock,
        db=engine,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        sweep_every=3600,
        dispatcher_idle=0.05,
        rate_limit=False,
        webhook=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/sitewalk"
    webhook = serving(
        app,
        lambda updater: updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="sitewalk",
            webhook_url=url,
            secret_token=SECRET,
            allowed_updates=Update.ALL_TYPES,
        ),
    )
    try:
        async with webhook:
            yield BotUnderTest(api, app, clock), url
    finally:
        await engine.dispose()


async def test_wrong_or_missing_secret_token_is_refused(config: Config, database: Database) -> None:
    """Posts without the secret or with a wrong one get 403 and change nothing; the right one
    registers the hazard and its card is sent."""
    async with (
        LocalBotApi(token=TOKEN) as api,
        webhook_bot(config, database, api) as (bot, url),
    ):
        people(api)
        assert api.webhook.url == url
        assert api.webhook.secret_token == SECRET
        assert await post(url, report_update(api, 1), None) == 403
        assert await post(url, report_update(api, 2), "wrong-secret") == 403
        assert await post(url, report_update(api, 3), SECRET[:-1]) == 403
        await asyncio.sleep(0.3)  # what a refused post could have set off
        assert api.sent(GROUP) == []
        assert await bot.hazards() == []
        assert await post(url, report_update(api, 4), SECRET) == 200
        [card] = await api.wait_sent(GROUP, 1, timeout=10)
        assert "#1" in card["text"]


async def test_a_delivery_is_answered_only_once_its_update_is_handled(
    config: Config, database: Database
) -> None:
    """Telegram hears 200 only after the report is committed: a crash before that leaves the
    delivery unanswered, and Telegram delivers it again. (PTB alone answers once queued.)"""
    gate = asyncio.Event()

    async def held(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        await gate.wait()

    async with (
        LocalBotApi(token=TOKEN) as api,
        webhook_bot(config, database, api) as (bot, url),
    ):
        people(api)
        bot.app.add_handler(TypeHandler(Update, held), group=-1)  # before the bot's handlers
        delivery = asyncio.create_task(post(url, report_update(api, 1), SECRET))
        try:
            await asyncio.sleep(0.5)
            assert not delivery.done()  # queued, not handled: no answer yet
            assert await bot.hazards() == []
        finally:
            gate.set()  # a failed assertion must not leave the bot unable to stop
        assert await asyncio.wait_for(delivery, 10) == 200
        [hazard] = await bot.hazards()  # committed before the answer
        assert hazard.number == 1


async def test_a_delivery_whose_handling_failed_is_answered_too(
    config: Config, database: Database
) -> None:
    """An update that makes a handler fail is answered 200 all the same (and logged), as
    polling confirms it: Telegram must not redeliver it for ever."""

    async def broken(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("a handler failed")

    async with (
        LocalBotApi(token=TOKEN) as api,
        webhook_bot(config, database, api) as (bot, url),
    ):
        people(api)
        bot.app.add_handler(TypeHandler(Update, broken), group=-1)
        assert await asyncio.wait_for(post(url, report_update(api, 1), SECRET), 10) == 200


async def test_deliveries_left_waiting_at_shutdown_are_not_answered_200() -> None:
    """Updates the bot dropped unhandled when it stopped: their deliveries fail, so Telegram
    sends them again; updates handled before stay answered."""
    queue = AnswerAfterHandlingQueue()
    bot = Bot(TOKEN)
    first = Update.de_json({"update_id": 1}, bot)
    second = Update.de_json({"update_id": 2}, bot)
    assert first is not None
    assert second is not None
    answered = asyncio.create_task(queue.put(first))
    dropped = asyncio.create_task(queue.put(second))
    await asyncio.sleep(0)
    assert queue.qsize() == 2
    assert not answered.done()
    queue.handled(1)
    await answered
    queue.give_up()
    with pytest.raises(UpdateNotHandled):
        await dropped


async def test_debug_log_of_a_webhook_bot_never_shows_the_token_or_the_secret(
    tmp_path: Path,
) -> None:
    """`sitewalk run -v` in webhook mode, with a DM refused and a Bot API failure on the way:
    the log has debug lines where the token was redacted, and no trace of either secret.

    SQLite only: the command reads the database URL from the config file, and a PostgreSQL URL
    there could not be isolated in a schema of its own; the log does not depend on the database.
    """
    port = free_port()
    async with LocalBotApi(token=TOKEN) as api:
        people(api)
        config = tmp_path / "sitewalk.toml"
        config.write_text(
            CONFIG_TOML.replace(
                "admins = [111111111]",
                "admins = [111111111]\n[telegram]\n"
                f'api_base_url = "{api.root}"\nmode = "webhook"\n'
                f'[telegram.webhook]\nlisten = "127.0.0.1"\nport = {port}\n'
                f'url = "http://127.0.0.1:{port}/sitewalk"\nsecret_env = "SITEWALK_TEST_SECRET"\n'
                f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/run.db"',
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "SITEWALK_TOKEN": TOKEN, "SITEWALK_TEST_SECRET": SECRET}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            "--config",
            str(config),
            "-v",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        # Read while it runs: a debug log fills the pipe, and a full pipe blocks the bot.
        reading = asyncio.create_task(proc.stdout.read())
        try:
            url = f"http://127.0.0.1:{port}/sitewalk"  # served at the path of `url`
            await api.wait_for(lambda: api.webhook.url and _accepts(port), 30)
            api.inject("sendMessage", status=500, times=1)  # a failure, logged with its error
            assert await post(url, report_update(api, 1), "not-the-secret") == 403
            # A critical report DMs level 1 at once; the safety officer never pressed Start: 403.
            assert await post(url, report_update(api, 2, CRITICAL), SECRET) == 200
            [card] = await api.wait_sent(GROUP, 1, timeout=20)
            assert "#1" in card["text"]
            await api.wait_for(
                lambda: any(c.status == 403 and c.method == "sendMessage" for c in api.calls), 20
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
            output = (await reading).decode()
    assert code == 0, output[-2000:]
    assert " DEBUG " in output
    assert "<token>" in output  # PTB logs the Bot API URL at debug: redacted, not absent
    assert TOKEN not in output
    assert TOKEN.partition(":")[2] not in output
    assert SECRET not in output


def _accepts(port: int) -> bool:
    """The webhook server is listening (the bot sets the webhook before it serves)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
