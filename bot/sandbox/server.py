"""LocalBotApi: the sandbox Bot API served over real HTTP, with inspection and error injection."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from aiohttp import web

from bot.sandbox import methods
from bot.sandbox.params import ApiError, Params, read_params
from bot.sandbox.state import ApiCall, Injection, Json, Webhook
from bot.sandbox.users import UserSide
from bot.sandbox.world import World

T = TypeVar("T")

_log = logging.getLogger(__name__)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    502: "Bad Gateway",
}
_MAX_BODY = 64 * 1024 * 1024


class LocalBotApi(UserSide):
    """A Telegram Bot API for one bot token, bound to a local port.

    Usage::

        async with LocalBotApi() as api:
            app = (ApplicationBuilder().token(api.token).base_url(api.base_url)
                   .base_file_url(api.base_file_url).build())
            ...                                  # start polling
            api.start_bot(42)                    # the user side enqueues updates
            await api.wait_sent(42)              # then inspect what the bot did

    Modules: users (user-side actions), methods (Bot API handlers), world (shared state and
    rules), formatting (parse_mode), params (request decoding), state (dataclasses, queue).
    Call everything from the event loop thread that runs the server.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_id: int = 900000001,
        bot_username: str = "sitewalk_bot",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.world = World(
            {
                "id": bot_id,
                "is_bot": True,
                "first_name": "Sitewalk",
                "username": bot_username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )
        self.calls: list[ApiCall] = []
        self._injections: list[Injection] = []
        self._runner: web.AppRunner | None = None
        self._root: str | None = None

    # ---- lifecycle ----

    @property
    def root(self) -> str:
        if self._root is None:
            raise RuntimeError("LocalBotApi is not started; call start() or use `async with`")
        return self._root

    @property
    def base_url(self) -> str:
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        # Binding the socket ourselves is the public way to learn the port picked for port 0.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        self.world.updates.closed = False
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        self._runner = runner
        self.port = sock.getsockname()[1]
        self._root = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        # Pending long polls answer with no updates now, so shutdown does not wait on them.
        self.world.updates.close()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> LocalBotApi:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- HTTP ----

    async def _handle_api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        name = request.match_info["method"]
        found = methods.lookup(name)
        call = ApiCall(found[0] if found else name, {}, arrived)
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await read_params(request)
            call.params = params.values
            result = await self._dispatch(call, found, params)
        except ApiError as exc:
            return self._answer(call, exc.status, exc.envelope())
        except ConnectionError:
            # The client hung up mid-request (PTB cancels its poll on stop); nobody will read this.
            return self._answer(call, 499, ApiError(499, "Client Closed Request").envelope())
        except Exception as exc:  # a sandbox bug must still produce an envelope
            _log.exception("sandbox failed on %s", call.method)
            error = ApiError(500, f"Internal Server Error: sandbox failed: {exc!r}")
            return self._answer(call, 500, error.envelope())
        return self._answer(call, 200, {"ok": True, "result": result})

    async def _dispatch(
        self, call: ApiCall, found: tuple[str, methods.Handler] | None, params: Params
    ) -> Any:
        injection = self._take_injection(call.method, params.values)
        if injection is not None:
            if injection.delay > 0:
                await asyncio.sleep(injection.delay)
            if injection.status != 200:
                parameters = None
                if injection.retry_after is not None:
                    parameters = {"retry_after": injection.retry_after}
                raise ApiError(injection.status, injection.description, parameters)
        if found is None:
            raise ApiError(404, "Not Found: method not found")
        return await found[1](self.world, params)

    def _answer(self, call: ApiCall, status: int, body: Json) -> web.Response:
        call.status = status
        call.description = str(body.get("description", ""))
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
        )

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        file_id = self.world.file_paths.get(request.match_info["file_path"])
        if file_id is None:
            return _error_response(ApiError(404, "Not Found: file not found"))
        return web.Response(body=self.world.files[file_id].data, content_type="image/jpeg")

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return _error_response(ApiError(404, "Not Found"))

    # ---- error injection ----

    def inject(
        self,
        method: str,
        *,
        status: int = 500,
        description: str = "Internal Server Error",
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Script the next `times` calls of `method` (-1: until clear_injections()).

        status 200 with a delay makes the call slow but successful. When only the status is
        given, the description defaults to Telegram's wording for it.
        """
        if times == 0 or times < -1:
            raise ValueError("times must be positive, or -1 for forever")
        if description == "Internal Server Error" and status != 500:
            description = _DEFAULT_DESCRIPTIONS.get(status, description)
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
        self._injections.append(
            Injection(method.lower(), status, description, retry_after, chat_id, times, delay)
        )

    def clear_injections(self) -> None:
        self._injections.clear()

    def _take_injection(self, method: str, params: Json) -> Injection | None:
        for injection in self._injections:
            if injection.matches(method, params):
                if injection.remaining > 0:
                    injection.remaining -= 1
                    if injection.remaining == 0:
                        self._injections.remove(injection)
                return injection
        return None

    # ---- what the bot did ----

    def sent(self, chat_id: int | None = None) -> list[Json]:
        """Messages the bot sent, as they are now (after edits), oldest first."""
        chats = self.world.chats
        if chat_id is not None:
            state = chats.get(chat_id)
            return [] if state is None else [state.messages[m] for m in state.sent_by_bot]
        return [chats[c].messages[m] for c, m in self.world.sent_log]

    def reactions(self, chat_id: int | None = None) -> list[Json]:
        log = self.world.reaction_log
        if chat_id is None:
            return list(log)
        return [r for r in log if str(r.get("chat_id")) == str(chat_id)]

    @property
    def callback_answers(self) -> list[Json]:
        """Params of successful answerCallbackQuery calls."""
        return self.world.callback_answers

    def message(self, chat_id: int, message_id: int) -> Json | None:
        state = self.world.chats.get(chat_id)
        return None if state is None else self.world.find_message(state, message_id)

    def commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        return self.world.commands.get(key, [])

    @property
    def webhook(self) -> Webhook:
        return self.world.webhook

    @property
    def pending_update_count(self) -> int:
        """Updates of allowed types the bot has not confirmed yet (0 once it caught up)."""
        return self.world.updates.deliverable()

    @property
    def privacy_mode(self) -> bool:
        """When on, a non-admin bot sees only commands, replies to it and service messages."""
        return self.world.privacy_mode

    @privacy_mode.setter
    def privacy_mode(self, value: bool) -> None:
        self.world.privacy_mode = value

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the public API, and a poll needs it
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return cast(T, value)
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_report(predicate, timeout))
            # Polling keeps predicates free-form; 10 ms is far below any test's patience.
            await asyncio.sleep(0.01)

    async def wait_sent(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the public API
    ) -> list[Json]:
        def enough() -> list[Json] | None:
            sent = self.sent(chat_id)
            return sent if len(sent) >= count else None

        try:
            return await self.wait_for(enough, timeout)
        except TimeoutError as exc:
            got = len(self.sent(chat_id))
            raise TimeoutError(
                f"expected {count} message(s) sent to {chat_id}, got {got}; {exc}"
            ) from None

    def _timeout_report(self, predicate: Callable[[], object], timeout: float) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        lines = [f"{name} stayed falsy for {timeout} s; last calls:"]
        lines += [
            f"  {call.method} {call.status or 'pending'} {_short(call.params)}"
            for call in self.calls[-10:]
        ]
        if len(lines) == 1:
            lines.append("  (the bot made no calls)")
        return "\n".join(lines)


def _short(params: Json) -> str:
    text = json.dumps(params, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.envelope(), status=error.status)
