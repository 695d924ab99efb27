"""Outbound: what the bot sends during a burst of hazards in many groups, read from the Bot API log.

Every group gets more hazard reports at once than Telegram lets a bot answer in a minute. The
figures are the most messages the local Bot API received in any 1-second window overall, and in
any 60-second window for one group; Telegram's limits are 30 and 20.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    TOKEN,
    BotProcess,
    Figure,
    Fleet,
    against_goal,
    chat_of,
    fresh_database,
    populate,
    progress,
    wait_until_polling,
)
from bot.sandbox import ApiCall, LocalBotApi

PER_SECOND_LIMIT = 30
PER_GROUP_MINUTE_LIMIT = 20
REPORT = "{n}号楼脚手架连墙件被拆了,外架在晃"
# What Telegram counts as messages; reactions, edits and chat actions are not.
SENDING = frozenset({"sendMessage", "sendPhoto", "sendLocation", "sendVenue", "sendDocument"})


def max_in_window(times: Sequence[float], window: float) -> int:
    """The largest number of events in any half-open window [t, t + window)."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, bisect_left(ordered, start + window, lo=i) - i)
    return best


def rates(calls: Sequence[ApiCall]) -> tuple[int, int, int]:
    """(max per second overall, max per minute in one group, messages) from a call log."""
    sends = [c for c in calls if c.method in SENDING and c.status == 200]
    per_group: dict[str, list[float]] = defaultdict(list)
    for call in sends:
        chat = str(call.params.get("chat_id", ""))
        if chat.startswith("-"):
            per_group[chat].append(call.at)
    overall = max_in_window([c.at for c in sends], 1.0)
    group = max((max_in_window(t, 60.0) for t in per_group.values()), default=0)
    return overall, group, len(sends)


@dataclass(frozen=True)
class Burst:
    """`groups` groups, each getting `per_group` hazard reports at once; watched for `watch` s."""

    groups: int
    per_group: int
    watch: float


async def burst(scenario: Burst, workdir: Path) -> list[ApiCall]:
    """The Bot API's call log while the real bot answers one burst."""
    progress(
        f"outbound: {scenario.groups} groups x {scenario.per_group} hazard reports at once, "
        f"watching the Bot API for {scenario.watch:.0f} s"
    )
    async with (
        LocalBotApi(token=TOKEN) as api,
        fresh_database("postgresql", workdir) as target,
    ):
        fleet = Fleet(scenario.groups, api.root, target.url).write(workdir)
        populate(api, fleet)
        proc = BotProcess(fleet, target, workdir)
        await proc.start()
        try:
            await proc.wait_event("ready", 60)
            await wait_until_polling(api)
            api.calls.clear()
            for n in range(scenario.per_group):
                for g in range(scenario.groups):
                    api.post_text(chat_of(g), 10_000_000 + g, REPORT.format(n=n + 1))
            started = time.monotonic()
            while (left := scenario.watch - (time.monotonic() - started)) > 0:
                await asyncio.sleep(min(5.0, left))
                proc.check()
                overall, group, sent = rates(api.calls)
                progress(
                    f"  outbound: {sent} sent; max {overall}/s overall, {group}/min in a group"
                )
        finally:
            await proc.stop()
        return list(api.calls)


async def run(quick: bool, workdir: Path) -> list[Figure]:
    # A few groups with more reports than a minute allows load the per-group limit; many groups
    # with a few each load the overall one (then no single group gets near its own limit).
    # Quick: 6 groups reach their 20 a minute (120 messages) within 6 s at 28 a second.
    watch = 6.0 if quick else 70.0
    scenarios = (Burst(6 if quick else 12, 30, watch), Burst(120 if quick else 200, 6, watch))
    overall = group = sent = 0
    for scenario in scenarios:
        o, g, n = rates(await burst(scenario, workdir))
        overall, group, sent = max(overall, o), max(group, g), sent + n
    note = (
        f"bursts of {scenarios[0].groups} groups x 30 reports and {scenarios[1].groups} x 6, "
        f"{sent} messages in 2 x {watch:.0f} s"
    )
    return [
        against_goal(
            "outbound_per_s", overall, "msg/s", PER_SECOND_LIMIT, higher_is_better=False, note=note
        ),
        against_goal(
            "outbound_per_group_min",
            group,
            "msg/min",
            PER_GROUP_MINUTE_LIMIT,
            higher_is_better=False,
            note=note,
        ),
    ]
