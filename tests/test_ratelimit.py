"""The rate limiter: DMs go before group messages, no second or group minute is overfilled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.ratelimit import PriorityPacer, SlidingWindow, TelegramLimits


async def test_waiting_private_chats_go_before_waiting_groups() -> None:
    """Groups that queued first still let the DMs queued after them through first."""
    pacer = PriorityPacer(0.02)
    await pacer.acquire(1)  # takes the free turn: everyone below has to wait
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        await pacer.acquire(priority)
        order.append(name)

    groups = [asyncio.create_task(wait(f"group{i}", 1)) for i in range(3)]
    await asyncio.sleep(0)  # the groups are queued before the DMs arrive
    dms = [asyncio.create_task(wait(f"dm{i}", 0)) for i in range(2)]
    await asyncio.gather(*groups, *dms)
    assert order == ["dm0", "dm1", "group0", "group1", "group2"]


async def test_the_pacer_spaces_calls_by_its_interval() -> None:
    """Ten calls at 20 ms take at least 180 ms: nothing is let through in a burst."""
    pacer = PriorityPacer(0.02)
    started = time.monotonic()
    await asyncio.gather(*(pacer.acquire(0) for _ in range(10)))
    assert time.monotonic() - started >= 0.18


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    pacer = PriorityPacer(0.02)
    await pacer.acquire(0)
    doomed = asyncio.create_task(pacer.acquire(0))
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.wait_for(pacer.acquire(0), 1)
    assert doomed.cancelled()


async def test_the_group_window_lets_its_limit_through_then_waits_for_the_oldest() -> None:
    """Three per 0.3 s: three at once, the fourth only when the first leaves the window."""
    window = SlidingWindow(3, 0.3)
    started = time.monotonic()
    for _ in range(3):
        await window.acquire()
    assert time.monotonic() - started < 0.1
    await window.acquire()
    assert time.monotonic() - started >= 0.3


def _recorder(log: list[tuple[str, Any]]) -> Any:
    async def call(endpoint: str, data: dict[str, Any]) -> bool:
        log.append((endpoint, data.get("chat_id")))
        return True

    return call


async def test_a_group_over_its_window_does_not_hold_up_dms_or_other_groups() -> None:
    limits = TelegramLimits(per_second=1000, group_messages=2, group_window=30)
    log: list[tuple[str, Any]] = []
    call = _recorder(log)

    async def send(chat: int) -> None:
        data = {"chat_id": chat}
        await limits.process_request(call, ("sendMessage", data), {}, "sendMessage", data, None)

    for _ in range(2):
        await send(-100)
    stuck = asyncio.create_task(send(-100))  # a third within 30 s must wait
    await asyncio.wait_for(asyncio.gather(send(42), send(-200)), 1)
    assert not stuck.done()
    assert log[-2:] == [("sendMessage", 42), ("sendMessage", -200)]
    stuck.cancel()
    await limits.shutdown()


async def test_reads_are_not_limited() -> None:
    """getChatMember and answerCallbackQuery do not spend a group's 20 messages."""
    limits = TelegramLimits(per_second=1000, group_messages=1, group_window=30)
    log: list[tuple[str, Any]] = []
    call = _recorder(log)
    for _ in range(5):
        data = {"chat_id": -100, "user_id": 7}
        await asyncio.wait_for(
            limits.process_request(call, ("getChatMember", data), {}, "getChatMember", data, None),
            1,
        )
    data = {"chat_id": -100}
    await limits.process_request(call, ("sendMessage", data), {}, "sendMessage", data, None)
    assert len(log) == 6


async def test_a_429_in_a_group_pauses_that_group_only_and_still_reaches_the_caller() -> None:
    limits = TelegramLimits(per_second=1000, group_messages=20, group_window=30)

    async def refuse(*_: Any) -> bool:
        raise RetryAfter(30)

    data = {"chat_id": -100}
    with pytest.raises(RetryAfter):
        await limits.process_request(refuse, (), {}, "sendMessage", data, None)
    log: list[tuple[str, Any]] = []
    call = _recorder(log)
    paused = asyncio.create_task(
        limits.process_request(call, ("sendMessage", data), {}, "sendMessage", data, None)
    )
    dm = {"chat_id": 42}
    other = {"chat_id": -200}
    await asyncio.wait_for(
        asyncio.gather(
            limits.process_request(call, ("sendMessage", dm), {}, "sendMessage", dm, None),
            limits.process_request(call, ("sendMessage", other), {}, "sendMessage", other, None),
        ),
        1,
    )
    assert not paused.done()
    assert [chat for _, chat in log] == [42, -200]
    paused.cancel()
    await limits.shutdown()
