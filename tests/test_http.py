"""The bot's aiohttp client for the Bot API: PTB's timeouts, errors, uploads and proxies kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.app import build_application
from bot.config import load_config
from bot.http import AiohttpRequest
from escalation.clock import FakeClock
from storage.db import create_engine
from tests.conftest import CONFIG_TOML, T0
from tests.test_webhook import free_port


class Server:
    """A small HTTP server: answers with what it received, slowly under /slow."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.root = ""

    async def answer(self, request: web.Request) -> web.Response:
        self.seen.append(str(request.url))
        if request.path.endswith("/slow"):
            await asyncio.sleep(2)
        form = await request.post()
        parts = {
            name: (
                {"filename": v.filename, "type": v.content_type, "body": v.file.read().decode()}
                if isinstance(v, web.FileField)
                else v
            )
            for name, v in form.items()
        }
        body = {"ok": True, "result": {"type": request.content_type, "parts": parts}}
        return web.json_response(body)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    srv.root = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    req = AiohttpRequest(
        connection_pool_size=1, read_timeout=0.3, connect_timeout=0.2, pool_timeout=0.2
    )
    await req.initialize()
    yield req
    await req.shutdown()


def _proxy_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Only these proxy variables, whatever the machine running the tests has set."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def _params(**values: object) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


async def test_parameters_go_as_a_form_and_the_answer_comes_back(
    server: Server, request_: AiohttpRequest
) -> None:
    status, raw = await request_.do_request(
        f"{server.root}/bot1:T/sendMessage", "POST", _params(chat_id=-100, text="收到")
    )
    assert status == 200
    result = json.loads(raw)["result"]
    assert result["type"] == "application/x-www-form-urlencoded"
    assert result["parts"] == {"chat_id": "-100", "text": "收到"}


async def test_a_file_goes_as_multipart_with_its_name_and_type(
    server: Server, request_: AiohttpRequest
) -> None:
    photo = InputFile(b"not really a jpeg", filename="site.jpg")
    _, raw = await request_.do_request(
        f"{server.root}/bot1:T/sendPhoto", "POST", _params(chat_id=5, photo=photo)
    )
    result = json.loads(raw)["result"]
    assert result["type"] == "multipart/form-data"
    assert result["parts"]["chat_id"] == "5"
    [upload] = [p for p in result["parts"].values() if isinstance(p, dict)]
    assert upload["filename"] == "site.jpg"
    assert upload["type"] == "image/jpeg"


async def test_a_slow_answer_is_timed_out_as_ptb_means_it(
    server: Server, request_: AiohttpRequest
) -> None:
    with pytest.raises(TimedOut):
        await request_.do_request(f"{server.root}/bot1:T/slow", "POST")
    # A call may pass its own read timeout (the long poll does): then it waits that long.
    status, _ = await request_.do_request(f"{server.root}/bot1:T/slow", "POST", read_timeout=5)
    assert status == 200


async def test_no_free_connection_in_time_is_a_timeout_and_nothing_is_sent(
    server: Server, request_: AiohttpRequest
) -> None:
    slow = asyncio.create_task(
        request_.do_request(f"{server.root}/bot1:T/slow", "POST", read_timeout=5)
    )
    await asyncio.sleep(0.2)  # the pool's one connection is now busy
    with pytest.raises(TimedOut, match="Connect timeout"):
        await request_.do_request(f"{server.root}/bot1:T/getMe", "POST")
    await slow
    assert not any(url.endswith("/getMe") for url in server.seen)


async def test_nobody_listening_is_a_network_error(request_: AiohttpRequest) -> None:
    with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError"):
        await request_.do_request(f"http://127.0.0.1:{free_port()}/bot1:T/getMe", "POST")


async def test_shut_down_it_refuses_and_initialised_again_it_works(
    server: Server, request_: AiohttpRequest
) -> None:
    """`sitewalk run` checks the Bot API, shuts the bot down, then PTB initialises it again."""
    await request_.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request_.do_request(f"{server.root}/bot1:T/getMe", "POST")
    await request_.initialize()
    status, _ = await request_.do_request(f"{server.root}/bot1:T/getMe", "POST")
    assert status == 200


async def test_the_proxy_named_in_the_environment_is_used(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram is often reached through a proxy: HTTP(S)_PROXY counts, as with PTB's default."""
    _proxy_env(monkeypatch, HTTP_PROXY=server.root)
    async with AiohttpRequest() as req:
        status, _ = await req.do_request("http://api.telegram.invalid/bot1:T/getMe", "POST")
    assert status == 200  # the name does not resolve: only the proxy could have answered
    assert server.seen == ["http://api.telegram.invalid/bot1:T/getMe"]


async def test_no_proxy_is_respected(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _proxy_env(monkeypatch, HTTP_PROXY=f"http://127.0.0.1:{free_port()}", NO_PROXY="127.0.0.1")
    async with AiohttpRequest() as req:
        status, _ = await req.do_request(f"{server.root}/bot1:T/getMe", "POST")
    assert status == 200


async def test_the_bot_sends_through_this_client(tmp_path: Path) -> None:
    """The composition root wires this client, not PTB's httpx one."""
    config = tmp_path / "c.toml"
    config.write_text(CONFIG_TOML, encoding="utf-8")
    db = create_engine(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    app = build_application(load_config(config), token="1:T", clock=FakeClock(T0), db=db)
    assert isinstance(app.bot.request, AiohttpRequest)
    await db.dispose()


async def test_a_socks_proxy_is_a_clear_network_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp speaks to HTTP proxies only: a SOCKS one is named, not a traceback from inside."""
    _proxy_env(monkeypatch, ALL_PROXY="socks5://127.0.0.1:1080")
    async with AiohttpRequest() as req:
        with pytest.raises(NetworkError, match="only HTTP proxies"):
            await req.do_request("http://api.telegram.invalid/bot1:T/getMe", "POST")
