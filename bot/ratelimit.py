"""Telegram's sending limits, enforced before each call: DMs ahead of group messages.

It is PTB's `AIORateLimiter` with its scheduling replaced. PTB's buckets are leaky buckets as
deep as their rate, so one second could carry ~60 messages and a group's first minute ~39
(benchmarks/outbound.py measured 44 and 26); and its overall bucket is first come, first
served: during a burst of escalations, group notices queued ahead of a DM delay the DM,
although the DM is the escalation and the notice only tells the group about it. Here:

- every message waits for one overall pacer that lets one call through every 1/28 s, so no
  second carries more than 28; waiting private chats always go before waiting groups;
- a group also waits for a sliding window of 20 messages per 61 s (Telegram says 20 per
  minute; the extra second absorbs network jitter between our clock and Telegram's).

Read-only calls (get*, answerCallbackQuery) and calls without a chat are not limited: the limits
are about messages sent. A 429 pauses what it applies to (the group, or everyone) for its
`retry_after`; the error itself still reaches the caller, whose retry policy decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

OVERALL_PER_SECOND = 28
GROUP_MESSAGES = 20
GROUP_WINDOW_S = 61.0

# Calls that send nothing anyone sees.
_UNLIMITED_PREFIXES = ("get", "answercallbackquery", "setmycommands", "deletewebhook")

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]


class PriorityPacer:
    """Lets one caller through every `interval` seconds; lower priority numbers go first."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._releaser: asyncio.Task[None] | None = None

    async def acquire(self, priority: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._waiting and now >= self._next:
            self._next = now + self.interval
            return
        turn: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), turn))
        if self._releaser is None or self._releaser.done():
            self._releaser = loop.create_task(self._release(), name="sitewalk-pacer")
        await turn  # a cancelled waiter is skipped by the releaser

    def pause_until(self, moment: float) -> None:
        """Telegram said 429 for everyone: nobody goes before `moment` (loop time)."""
        self._next = max(self._next, moment)

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            now = loop.time()
            if now < self._next:
                await asyncio.sleep(self._next - now)
                continue
            _, _, turn = heapq.heappop(self._waiting)
            if turn.done():
                continue
            turn.set_result(None)
            self._next = now + self.interval

    def close(self) -> None:
        if self._releaser is not None:
            self._releaser.cancel()
        for _, _, turn in self._waiting:
            turn.cancel()
        self._waiting.clear()


class SlidingWindow:
    """At most `limit` entries in any `period` seconds, counted from the entries themselves."""

    def __init__(self, limit: int, period: float, now: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.period = period
        self._now = now
        self._stamps: deque[float] = deque()
        self._paused_until = 0.0

    async def acquire(self) -> None:
        while True:
            now = self._now()
            while self._stamps and self._stamps[0] <= now - self.period:
                self._stamps.popleft()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
            elif len(self._stamps) < self.limit:
                self._stamps.append(now)
                return
            else:
                await asyncio.sleep(self._stamps[0] + self.period - now)

    def pause_until(self, moment: float) -> None:
        self._paused_until = max(self._paused_until, moment)

    def idle(self) -> bool:
        now = self._now()
        return now >= self._paused_until and all(s <= now - self.period for s in self._stamps)


class TelegramLimits(AIORateLimiter):
    """The bot's rate limiter: see the module docstring."""

    def __init__(
        self,
        per_second: float = OVERALL_PER_SECOND,
        group_messages: int = GROUP_MESSAGES,
        group_window: float = GROUP_WINDOW_S,
    ) -> None:
        # PTB's own buckets are switched off: process_request below does the scheduling.
        super().__init__(overall_max_rate=0, group_max_rate=0)
        self._pacer = PriorityPacer(1 / per_second)
        self._group_messages = group_messages
        self._group_window = group_window
        self._groups: dict[int | str, SlidingWindow] = {}

    async def initialize(self) -> None:
        """Nothing to set up: the pacer starts its timer on the first wait."""

    async def shutdown(self) -> None:
        self._pacer.close()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        chat = _chat_of(data)
        if chat is None or endpoint.lower().startswith(_UNLIMITED_PREFIXES):
            return await callback(*args, **kwargs)
        group = isinstance(chat, str) or chat < 0
        if group:
            await self._window(chat).acquire()
        await self._pacer.acquire(1 if group else 0)
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            if group:
                self._window(chat).pause_until(time.monotonic() + seconds)
            else:
                self._pacer.pause_until(asyncio.get_running_loop().time() + seconds)
            raise

    def _window(self, chat: int | str) -> SlidingWindow:
        if len(self._groups) > 512:  # forget groups whose window has emptied
            for key in [k for k, w in self._groups.items() if k != chat and w.idle()]:
                del self._groups[key]
        window = self._groups.get(chat)
        if window is None:
            window = self._groups[chat] = SlidingWindow(self._group_messages, self._group_window)
        return window


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat = data.get("chat_id")
    if chat is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return int(chat)
    return str(chat)
