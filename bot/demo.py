"""`sitewalk demo`: the Qingjiangpu morning replayed offline, with compressed time."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from telegram import Update

from bot.app import build_application, runtime_of
from bot.clock import ScaledClock
from bot.config import parse_config
from bot.sandbox import LocalBotApi
from bot.texts import Texts

TZ = ZoneInfo("Asia/Shanghai")
GROUP = -1002021000001
INSPECTOR, SAFETY, SUPERVISOR, SUPERVISOR_2, CHIEF, HOUSING, COMPANY = (
    2001,
    1001,
    1002,
    1003,
    1004,
    1005,
    1006,
)
NAMES = {
    INSPECTOR: "安全巡查员",
    SAFETY: "项目安全员老王",
    SUPERVISOR: "监理张工",
    SUPERVISOR_2: "监理李工",
    CHIEF: "总工程师赵工",
    HOUSING: "住建部门刘科",
    COMPANY: "公司安全员",
}

DEMO_CONFIG = f"""
[defaults]
timezone = "Asia/Shanghai"
language = "{{language}}"
repeat_every = "30m"
max_repeats = 1

[[projects]]
name = "邮政南苑小区改造"
chat_id = {GROUP}

  [[projects.chain]]
  role = "项目安全员"
  members = [{{{{ id = {SAFETY}, name = "项目安全员老王" }}}}]
  deadline = "30m"

  [[projects.chain]]
  role = "监理"
  members = [
    {{{{ id = {SUPERVISOR}, name = "监理张工" }}}},
    {{{{ id = {SUPERVISOR_2}, name = "监理李工" }}}},
  ]
  deadline = "30m"

  [[projects.chain]]
  role = "总工程师"
  members = [{{{{ id = {CHIEF}, name = "总工程师赵工" }}}}]
  deadline = "1h"

  [[projects.chain]]
  role = "住建部门"
  members = [{{{{ id = {HOUSING}, name = "住建部门刘科" }}}}]
  deadline = "1h"
"""

# (minutes after 09:00, who, text, reply to the report?)
SCRIPT: list[tuple[int, int, str, bool]] = [
    (0, INSPECTOR, "3号楼塔吊配重块松动,存在安全隐患,下面还有工人在干活", False),
    (2, SAFETY, "收到", True),
    (4, SUPERVISOR, "收到,请施工单位注意安全", True),
    (6, CHIEF, "收到收到", True),
    (9, HOUSING, "收到,对该问题要严肃处理", True),
    (12, COMPANY, "收到,已起草书面处罚决定书", True),
]
END_MINUTES = 122


@dataclass
class Line:
    at: datetime
    who: str  # as printed: [群] 监理张工, [机器人→群], ...
    text: str
    source: str = "group"  # who wrote it: "group" (a person), "bot_group" or "bot_dm"


def run_demo(*, speed: float = 240.0, language: str = "zh") -> int:
    """Run the replay and print its timeline; returns the exit code."""
    logging.basicConfig(level=logging.WARNING)
    # A sweep tick that starts late (a slow machine loading the classifier) is harmless, since
    # the next tick reads the same rows; in the replay's output it is only noise.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return asyncio.run(_demo(speed, language))


async def _demo(speed: float, language: str) -> int:
    start = datetime(2024, 5, 6, 9, 0, tzinfo=TZ).astimezone(UTC)
    # The clock stands at 08:59 until the bot is up and has greeted the chain (see below).
    clock = ScaledClock(start - timedelta(minutes=1), speed, paused=True)
    config = parse_config(DEMO_CONFIG.format(language=language))
    lines: list[Line] = []
    progress = _Progress()
    texts = Texts(language, "Asia/Shanghai")
    print(texts.demo("title", speed=f"{speed:g}") + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        config = config.model_copy(
            update={"storage": config.storage.model_copy(update={"url": db_url})}
        )
        async with LocalBotApi() as api:
            _cast(api)
            app = build_application(
                config,
                token=api.token,
                clock=clock,
                base_url=api.base_url,
                base_file_url=api.base_file_url,
                sweep_every=2.0,
                dispatcher_idle=0.2,
            )
            async with app:
                runtime = runtime_of(app)
                await runtime.start(app)
                assert app.updater is not None
                await app.updater.start_polling(
                    poll_interval=0.05, timeout=1, allowed_updates=Update.ALL_TYPES
                )
                await app.start()
                chain = (SAFETY, SUPERVISOR, SUPERVISOR_2, CHIEF, HOUSING)
                for user in chain:
                    api.start_bot(user)
                await api.wait_for(lambda: _greeted(api) >= set(chain), timeout=60)
                clock.resume()  # the story starts now, whatever the set-up took
                report_id: int | None = None
                for minute, user, text, is_reply in SCRIPT:
                    await _sleep_until(clock, start + timedelta(minutes=minute))
                    msg = api.post_text(GROUP, user, text, reply_to=report_id if is_reply else None)
                    report_id = report_id or msg["message_id"]
                    lines.append(Line(clock.now(), texts.demo("in_group", who=NAMES[user]), text))
                    progress(clock)
                while clock.now() < start + timedelta(minutes=END_MINUTES):
                    await asyncio.sleep(0.5)
                    progress(clock)
                await runtime.dispatcher.drain()
                progress.done()
                lines.extend(_bot_lines(api, clock, texts))
                acked = await _acknowledgers(runtime, texts)
                await app.updater.stop()
                await app.stop()
                await runtime.stop()
    _print(lines, acked, texts)
    return 0 if any(_is_escalation_dm(line) for line in lines) else 1


def _is_escalation_dm(line: Line) -> bool:
    """A DM that calls someone to the site, not the greeting that answers /start."""
    return line.source == "bot_dm" and line.text.startswith(("🔺", "🛑", "⏰"))


def _greeted(api: LocalBotApi) -> set[int]:
    """Who has had the bot's answer to their /start."""
    return {
        int(call.params.get("chat_id", 0) or 0)
        for call in api.calls
        if call.method == "sendMessage" and call.status == 200
    }


def _cast(api: LocalBotApi) -> None:
    api.group(GROUP, "清江浦房产2021老小区改造")
    for uid, name in NAMES.items():
        api.user(uid, name)


async def _sleep_until(clock: ScaledClock, when: datetime) -> None:
    delay = clock.real_seconds_until(when)
    if delay and delay > 0:
        await asyncio.sleep(delay)


class _Progress:
    """The replay's clock on stderr: redrawn in place on a terminal; elsewhere (a log, a pipe)
    one line per half hour of the story, not a row of carriage returns."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._shown: str | None = None

    def __call__(self, clock: ScaledClock) -> None:
        now = clock.now().astimezone(TZ)
        if self._tty:
            print(f"\r  … {now:%H:%M}", end="", file=sys.stderr, flush=True)
            return
        half_hour = f"{now:%H}:{now.minute // 30 * 30:02d}"
        if half_hour != self._shown:
            self._shown = half_hour
            print(f"  … {half_hour}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._tty:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)


def _bot_lines(api: LocalBotApi, clock: ScaledClock, texts: Texts) -> list[Line]:
    out = []
    for call in api.calls:
        if call.status != 200:
            continue
        params: dict[str, Any] = call.params
        at = clock.at_monotonic(call.at)
        chat = int(params.get("chat_id", 0) or 0)
        if call.method == "sendMessage":
            text = str(params.get("text", ""))
            if chat == GROUP:
                out.append(Line(at, texts.demo("bot_group"), text, "bot_group"))
            else:
                who = texts.demo("bot_dm", who=NAMES.get(chat, chat))
                out.append(Line(at, who, text, "bot_dm"))
        elif call.method == "setMessageReaction":
            reaction = params.get("reaction") or [{}]
            emoji = reaction[0].get("emoji", "") if isinstance(reaction, list) else ""
            reacted = texts.demo("reaction", emoji=emoji)
            out.append(Line(at, texts.demo("bot_group"), reacted, "bot_group"))
    return out


async def _acknowledgers(runtime: Any, texts: Texts) -> list[str]:
    async with runtime.uow() as uow:
        hazard = await uow.hazards.by_number(GROUP, 1)
        if hazard is None:
            return []
        events = await uow.events.of_kind(hazard.id, "acknowledged")
        return [
            texts.demo("acked", who=e.actor_name, at=texts.clock(e.at), text=_said(e.detail))
            for e in events
        ]


def _said(detail: dict[str, Any]) -> str:
    return str(detail.get("text") or "")


def _print(lines: list[Line], acked: list[str], texts: Texts) -> None:
    for line in sorted(lines, key=lambda item: item.at):
        head = f"{line.at.astimezone(TZ):%H:%M}  {line.who}: "
        body = line.text.replace("\n", "\n" + " " * 9)
        print(head + body)
    print("\n" + texts.demo("acked_head"))
    for entry in acked:
        print(f"  - {entry}")
    dms = sum(1 for line in lines if _is_escalation_dm(line))
    group = sum(1 for line in lines if line.source == "bot_group")
    print("\n" + texts.demo("count", group=group, dms=dms))
    print(texts.demo("moral"))
