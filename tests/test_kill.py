"""kill -9 at random moments, many times: every due escalation DM arrives, no level twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sandbox import LocalBotApi
from storage.db import create_engine, session_factory
from storage.models import HazardEvent, HazardRow, OutboxRow, OutboxStatus
from tests.botkit import people
from tests.conftest import (
    CHIEF,
    GROUP,
    PG_URL,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    SUPERVISOR_B,
    Database,
    pg_problem,
)

ROOT = Path(__file__).parent.parent
KILLS = 20
HAZARDS = 24
LEVEL2, LEVEL3 = (SUPERVISOR_A, SUPERVISOR_B), (CHIEF,)

# Four groups, so that Telegram's 20 messages a minute per group (cards and notices of 24 hazards
# in one group) do not make the test wait a minute for group messages once every DM is out.
GROUPS = tuple(GROUP - i for i in range(4))
CONFIG_HEAD = """
[telegram]
api_base_url = "{api}"
[storage]
url = "{db}"
[defaults]
max_repeats = 0
"""
PROJECT = """
[[projects]]
name = "kill test {n}"
chat_id = {group}
  [[projects.chain]]
  role = "安全员"
  members = [{safety}]
  deadline = "3s"
  [[projects.chain]]
  role = "监理"
  members = [{a}, {b}]
  deadline = "3s"
  [[projects.chain]]
  role = "总工"
  members = [{chief}]
  deadline = "3s"
"""


@pytest.fixture
async def kill_db_url(database: Database, tmp_path: Path) -> AsyncIterator[str]:
    """A URL a separate process can use: a SQLite file, or a whole fresh PostgreSQL database."""
    if database.kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/kill.db"
        return
    assert await pg_problem() is None
    import asyncpg

    name = f"sitewalk_kill_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.replace("+asyncpg", "")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


async def _start(config: Path, token: str) -> asyncio.subprocess.Process:
    log = (config.parent / "bot.log").open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(config),
        env={**os.environ, "SITEWALK_TOKEN": token}, cwd=ROOT,
        stdout=log, stderr=log,
    )


async def test_kill_9_at_random_moments_loses_no_escalation(
    kill_db_url: str, tmp_path: Path
) -> None:
    """20 SIGKILLs while 24 hazards in 4 groups escalate through 3 levels: every DM the database
    says is due was delivered, no level was applied twice, and duplicate DMs stay within the
    kills."""
    rng = random.Random(20240506)
    async with LocalBotApi() as api:
        people(api)
        for n, group in enumerate(GROUPS[1:], 2):
            api.group(group, f"kill test {n}")
        for user in (SAFETY, *LEVEL2, *LEVEL3):
            api.start_bot(user)
        config = tmp_path / "kill.toml"
        config.write_text(
            CONFIG_HEAD.format(api=api.root, db=kill_db_url)
            + "".join(
                PROJECT.format(n=n, group=group, safety=SAFETY, a=SUPERVISOR_A,
                               b=SUPERVISOR_B, chief=CHIEF)
                for n, group in enumerate(GROUPS, 1)
            ),
            encoding="utf-8",
        )
        proc = await _start(config, api.token)
        posted = 0
        for _ in range(KILLS):
            # Hazards keep arriving, also while the bot is down: they wait in getUpdates.
            for _ in range(rng.randint(0, 3)):
                if posted < HAZARDS:
                    api.post_text(GROUPS[posted % len(GROUPS)], REPORTER, f"{posted}号塔吊配重块松动")
                    posted += 1
            await asyncio.sleep(rng.uniform(0.2, 2.5))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            proc = await _start(config, api.token)
        while posted < HAZARDS:
            api.post_text(GROUPS[posted % len(GROUPS)], REPORTER, f"{posted}号塔吊配重块松动")
            posted += 1

        engine = create_engine(kill_db_url)
        sessions = session_factory(engine)
        try:
            state: list[str] = []

            async def settled() -> bool:
                async with sessions() as s:
                    rows = (await s.execute(select(HazardRow))).scalars().all()
                    pending = (
                        await s.execute(
                            select(OutboxRow).where(OutboxRow.status == OutboxStatus.PENDING)
                        )
                    ).scalars().all()
                state[:] = [
                    f"{len(rows)} hazards, levels {Counter(r.level for r in rows)}, "
                    f"{len(pending)} pending: {[(p.purpose, p.last_error) for p in pending][:5]}"
                ]
                return len(rows) == HAZARDS and all(r.level == 3 for r in rows) and not pending

            for _ in range(1200):  # in-flight rows of a killed sender wait out its lease (30 s)
                if await settled():
                    break
                await asyncio.sleep(0.1)
            log = (tmp_path / "bot.log").read_text(encoding="utf-8", errors="replace")
            assert proc.returncode is None, f"the bot died on its own:\n{log[-3000:]}"
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            log = (tmp_path / "bot.log").read_text(encoding="utf-8", errors="replace")
            assert await settled(), f"not settled: {state}\n{log[-3000:]}"

            async with sessions() as s:
                hazards = (await s.execute(select(HazardRow))).scalars().all()
                events = (
                    await s.execute(
                        # In the order they were written: without ORDER BY, PostgreSQL may return
                        # a row stored in space a killed transaction left, before older rows.
                        select(HazardEvent)
                        .where(HazardEvent.kind == "escalated")
                        .order_by(HazardEvent.id)
                    )
                ).scalars().all()
                dm_rows = (
                    await s.execute(select(OutboxRow).where(OutboxRow.purpose == "dm"))
                ).scalars().all()
        finally:
            await engine.dispose()

    number_of = {h.id: h.number for h in hazards}
    for group in GROUPS:  # each project numbers its own reports, none lost, none twice
        numbers = sorted(h.number for h in hazards if h.chat_id == group)
        assert numbers == list(range(1, HAZARDS // len(GROUPS) + 1)), group
    levels: dict[int, list[int]] = {}
    for e in events:
        levels.setdefault(e.hazard_id, []).append(e.detail["level"])
    for hazard_id, applied in levels.items():
        written = [(e.id, e.at.isoformat(), e.detail) for e in events if e.hazard_id == hazard_id]
        assert applied == sorted(set(applied)), f"hazard {hazard_id} levels applied: {written}"
    assert all(dm.status == OutboxStatus.SENT for dm in dm_rows)

    received = Counter(
        (int(m["chat"]["id"]), m["text"]) for m in api.sent() if m["chat"]["id"] > 0
    )
    due = {(dm.recipient_id, dm.text) for dm in dm_rows}
    missing = [key for key in due if received[key] == 0]
    assert missing == []
    assert {dm.hazard_id for dm in dm_rows if dm.recipient_id == CHIEF} == set(number_of)
    duplicates = sum(received[key] - 1 for key in due)
    skipped = sum(1 for e in events if e.detail.get("skipped"))
    print(
        f"\nkill test: {KILLS} kills, {HAZARDS} hazards, {len(events)} escalations "
        f"({skipped} with skipped levels), {len(dm_rows)} DMs due, all delivered, "
        f"{duplicates} duplicate DMs"
    )
    assert duplicates <= KILLS
