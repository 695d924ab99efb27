"""The bot's HTTP client for the Bot API: PTB's request interface on aiohttp instead of httpx.

Every message the bot sends is one HTTP call, and through PTB's default client (httpx) one call
cost about 1.1 ms of CPU on this project's host, through this one about 0.4 ms
(`python benchmarks/run.py --only sending`, BENCHMARKS.md fix 11). PTB supports networking
backends of one's own through `BaseRequest`; this one keeps PTB's timeouts, its errors
(TimedOut, NetworkError) and the proxy variables that httpx honours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
from telegram._utils.defaultvalue import DefaultValue  # what HTTPXRequest itself checks for
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_CONNECT_TIMEOUT_TEXT = (
    "Connect timeout: no free connection in the pool, or no connection to Telegram in time; "
    "the request was not sent."
)


class AiohttpRequest(BaseRequest):
    """`BaseRequest` over one `aiohttp.ClientSession`, made in `initialize()` (it needs a loop).

    Timeouts as PTB means them: `read` bounds each wait for the answer (the long poll passes its
    own), `connect` the TCP connect, `pool` the wait for a free connection plus the connect.
    aiohttp has no write timeout, so an upload is bounded as a whole by `media_write_timeout`
    plus the read timeout.
    """

    __slots__ = ("_defaults", "_media_write_timeout", "_pool_size", "_proxies", "_session")

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._defaults = (read_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._defaults[0]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=aiohttp.ClientTimeout(total=None),
                # Not trust_env: aiohttp would then look up netrc and the proxy variables in a
                # thread on every request, two thread hops per message. _proxy_for reads the
                # proxy variables once per host instead.
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized")
        default_read, default_connect, default_pool = self._defaults
        read = _given(read_timeout, default_read)
        connect = _given(connect_timeout, default_connect)
        pool = _given(pool_timeout, default_pool)
        files = request_data.multipart_data if request_data is not None else {}
        fields = request_data.json_parameters if request_data is not None else {}
        total = None
        if files:
            write = _given(write_timeout, self._media_write_timeout)
            if write is not None:
                total = write + (read or 0.0)
        timeout = aiohttp.ClientTimeout(
            total=total,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with session.request(
                method,
                url,
                data=_form(fields, files) if files else fields,
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
                proxy=self._proxy_for(url),
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as exc:  # no connection in time: nothing was sent
            raise TimedOut(_CONNECT_TIMEOUT_TEXT) from exc
        except TimeoutError as exc:  # aiohttp's socket timeouts are TimeoutErrors too
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy_for(self, url: str) -> str | None:
        """The proxy that HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY name for this URL.

        Read once per scheme and host: every message asks, and the environment does not change.
        """
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key in self._proxies:
            return self._proxies[key]
        proxies = getproxies()
        proxy = proxies.get(key[0]) or proxies.get("all")
        if proxy and key[1] and proxy_bypass(key[1]):
            proxy = None
        if proxy and (scheme := urlsplit(proxy).scheme) not in ("http", "https"):
            raise NetworkError(
                f"the environment names the proxy {scheme}://…, "
                "and only HTTP proxies are supported: set HTTPS_PROXY to an http:// proxy"
            )
        self._proxies[key] = proxy
        return proxy


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """A timeout passed to a call, else this request's default (a DefaultValue means unset)."""
    return default if isinstance(value, DefaultValue) else value


def _form(fields: Mapping[str, str], files: Mapping[str, tuple[Any, ...]]) -> aiohttp.FormData:
    """A multipart body: the parameters as text parts, then each file with its name and type."""
    form = aiohttp.FormData(dict(fields))
    for name, (filename, content, *mimetype) in files.items():
        form.add_field(
            name, content, filename=filename, content_type=mimetype[0] if mimetype else None
        )
    return form
