"""Shared benchmark pieces: figures, databases, a fleet of projects, seeding, the bot process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Config, parse_config
from bot.sandbox import LocalBotApi
from escalation.hazard import HazardState, Policy
from storage.db import create_engine, migrate
from storage.models import HazardRow, Person, Project
from storage.repositories import policy_to_json

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("SITEWALK_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TOKEN = "424242:BENCH-TOKEN-not-a-real-one"
Json = dict[str, Any]

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Long work shows what it is doing on stderr; stdout carries only the JSON figures."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Figure:
    """One measured number, next to what it is compared with (a baseline run or the goal)."""

    name: str
    value: float
    unit: str
    baseline: float
    ratio: float
    # Not printed in the JSON line: how the baseline was obtained, and the goal, for the table.
    baseline_is: str = "goal"
    goal: str = ""
    met: bool | None = False  # None: a figure shown for information, with no goal
    note: str = ""

    def to_json(self) -> Json:
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "baseline": _round(self.baseline),
            "ratio": _round(self.ratio),
        }


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def against_goal(
    name: str, value: float, unit: str, goal: float, *, higher_is_better: bool, note: str = ""
) -> Figure:
    """A figure whose baseline is its goal; ratio = value / goal (so ≤ 1 or ≥ 1 meets it)."""
    sign = "≥" if higher_is_better else "≤"
    return Figure(
        name,
        value,
        unit,
        goal,
        value / goal if goal else 0.0,
        baseline_is="goal",
        goal=f"{sign} {goal:g} {unit}",
        met=value >= goal if higher_is_better else value <= goal,
        note=note,
    )


def paired_medians(
    baselines: Sequence[float], values: Sequence[float]
) -> tuple[float, float, float]:
    """The medians of baseline and value runs made in pairs, and the median of the pairs'
    ratios (value / baseline): a pair is two runs a few seconds apart, so its ratio holds
    when the host's speed drifts between pairs, where a ratio of medians may not."""
    ratios = [value / baseline for baseline, value in zip(baselines, values, strict=True)]
    return statistics.median(baselines), statistics.median(values), statistics.median(ratios)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; 0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# ---- the machine -------------------------------------------------------------------------------


def _cpu_and_ram() -> tuple[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        ram = f"{int(first.split()[1]) / 1024 / 1024:.1f} GiB"
    return cpu, ram


def speed_probe() -> float:
    """Milliseconds for 200,000 random lookups in a 300,000-key dict, best of 5.

    A shared VM of the same name ran the same classifier at 47,000 msg/s one afternoon and
    13,000 that night; lookups scattered over a large table, as the classifier's are, showed
    that drift where a tight loop hardly did. Taken once, at the start of a run.
    """
    keys = [f"k{i}x" for i in range(300_000)]
    table = {key: i for i, key in enumerate(keys)}
    rng = random.Random(1)
    probes = [rng.choice(keys) for _ in range(200_000)]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for key in probes:
            total += table[key]
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def _commit() -> str:
    """The code measured: the commit, and whether the work tree differs from it."""
    try:
        dirty = " with uncommitted changes" if _git("status", "--porcelain") else ""
        return _git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


async def machine() -> Json:
    """What the figures were measured on, and which code."""
    cpu, ram = _cpu_and_ram()
    pg = "unreachable"
    with contextlib.suppress(Exception):
        import asyncpg

        conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=3)
        pg = str(await conn.fetchval("SHOW server_version"))
        await conn.close()
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "probe_ms": speed_probe(),
        "commit": _commit(),
    }


# ---- databases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One fresh database: a SQLite file in a temp dir, or a new schema of PostgreSQL `test`."""

    kind: str
    url: str
    schema: str | None = None

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, schema=self.schema)


@contextlib.asynccontextmanager
async def fresh_database(kind: str, workdir: Path) -> AsyncIterator[Target]:
    """Create an empty, migrated database and remove it afterwards."""
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        target = Target("sqlite", f"sqlite+aiosqlite:///{path}")
        await _migrate(target)
        try:
            yield target
        finally:
            _remove_sqlite(path)
        return
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    raw = PG_URL.replace("+asyncpg", "")
    conn = await asyncpg.connect(raw)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    target = Target("postgresql", PG_URL, schema)
    try:
        await _migrate(target)
        yield target
    finally:
        conn = await asyncpg.connect(raw)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _migrate(target: Target) -> None:
    engine = target.engine()
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


# ---- a fleet of projects -----------------------------------------------------------------------


def chat_of(group: int) -> int:
    return -1001000000000 - group


def level_member(group: int, level: int) -> int:
    """Each project has its own person on each level, so DMs spread over many users."""
    return level * 1_000_000 + group


@dataclass(frozen=True)
class Fleet:
    """`groups` projects, each with a three-level chain, written as a real config file."""

    groups: int
    api_root: str
    storage_url: str
    deadline_minutes: tuple[int, int, int] = (30, 30, 60)
    path: Path = field(default=Path())

    def toml(self) -> str:
        lines = [
            "admins = [1]",
            "[telegram]",
            f'token_env = "SITEWALK_TOKEN"\napi_base_url = "{self.api_root}"',
            "[storage]",
            f'url = "{self.storage_url}"',
            "[defaults]",
            'timezone = "Asia/Shanghai"\nmax_repeats = 2',
        ]
        roles = ("项目安全员", "监理", "总工程师")
        for g in range(self.groups):
            lines += ["[[projects]]", f'name = "项目{g}"', f"chat_id = {chat_of(g)}"]
            for level, (role, minutes) in enumerate(
                zip(roles, self.deadline_minutes, strict=True), 1
            ):
                member = level_member(g, level)
                lines += [
                    "  [[projects.chain]]",
                    f'  role = "{role}"',
                    f'  members = [{{ id = {member}, name = "{role}{g}" }}]',
                    f'  deadline = "{minutes}m"',
                ]
        return "\n".join(lines) + "\n"

    def write(self, workdir: Path) -> Fleet:
        path = workdir / f"fleet-{uuid.uuid4().hex[:8]}.toml"
        path.write_text(self.toml(), encoding="utf-8")
        return Fleet(self.groups, self.api_root, self.storage_url, self.deadline_minutes, path)

    def config(self) -> Config:
        return parse_config(self.toml())


def populate(api: LocalBotApi, fleet: Fleet, *, started: bool = True) -> None:
    """The fleet's groups and people in the local Bot API; chain members have pressed Start."""
    for g in range(fleet.groups):
        api.group(chat_of(g), f"项目{g}工作群")
        for level in (1, 2, 3):
            uid = level_member(g, level)
            api.user(uid, f"L{level}-{g}")
            api.world.user(uid).started = started


async def seed(
    target: Target,
    fleet: Fleet,
    deadlines: Sequence[datetime],
    *,
    opened_at: datetime,
) -> None:
    """Bulk-insert one open level-1 hazard per deadline, round-robin over the fleet's groups.

    Written with plain INSERTs, as the service would have left them: chain snapshot, policy,
    version 0; the people of every chain are known and have pressed Start.
    """
    config = fleet.config()
    defaults = config.defaults
    policy = policy_to_json(
        Policy(
            critical_factor=defaults.critical_factor,
            repeat_every=defaults.repeat_every,
            max_repeats=defaults.max_repeats,
            rectify_within=defaults.rectify_within,
        )
    )
    chains = [p.snapshot().to_json() for p in config.projects]
    engine = target.engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Project),
                [
                    {
                        "id": g + 1,
                        "name": p.name,
                        "chat_id": p.chat_id,
                        "next_number": len(deadlines) // fleet.groups + 2,
                        "created_at": opened_at,
                    }
                    for g, p in enumerate(config.projects)
                ],
            )
            people = [
                {
                    "user_id": level_member(g, level),
                    "username": None,
                    "name": f"L{level}-{g}",
                    "started": True,
                    "last_seen_at": opened_at,
                }
                for g in range(fleet.groups)
                for level in (1, 2, 3)
            ]
            await conn.execute(insert(Person), people)
        rows: list[Json] = []
        for i, deadline in enumerate(deadlines):
            g = i % fleet.groups
            rows.append(
                {
                    "project_id": g + 1,
                    "number": i // fleet.groups + 1,
                    "chat_id": chat_of(g),
                    "report_message_id": 1_000_000 + i,
                    "card_message_id": None,
                    "reporter_id": 42,
                    "reporter_name": "巡查员",
                    "text": f"{i}号塔吊配重块松动了",
                    "category": "起重伤害",
                    "critical": False,
                    "state": HazardState.OPEN,
                    "level": 1,
                    "deadline": deadline,
                    "opened_at": opened_at,
                    "repeats": 0,
                    "version": 0,
                    "chain": chains[g],
                    "policy": policy,
                    "ack_reminded": False,
                    "photo_file_id": None,
                }
            )
        for start in range(0, len(rows), 5000):
            async with engine.begin() as conn:
                await conn.execute(insert(HazardRow), rows[start : start + 5000])
            if len(rows) > 20000:
                progress(f"seeded {min(start + 5000, len(rows))}/{len(rows)} hazards")
        # Real hazards pile up over hours, and autovacuum analyses the table as they do; rows
        # bulk-inserted a second ago have no statistics, and PostgreSQL then plans the sweep's
        # query for a handful of due rows (a sort of all of them, per batch, instead of the
        # deadline index). Analyse, as the database would have by the time of a real outage.
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def utcnow() -> datetime:
    return datetime.now(UTC)


def wall_of(monotonic: float) -> datetime:
    """The wall-clock time of a time.monotonic() reading taken in this process."""
    return utcnow() - timedelta(seconds=time.monotonic() - monotonic)


# ---- the bot in its own process ----------------------------------------------------------------


class BotProcess:
    """`python -m benchmarks.botproc` in a subprocess: its own heap, its own core.

    It prints JSON events on stdout (ready, handled); its log goes to a file in the workdir.
    """

    def __init__(
        self,
        fleet: Fleet,
        target: Target,
        workdir: Path,
        *,
        mode: str = "real",
        expect: int = 0,
        sweep_every: float = 15.0,
    ) -> None:
        self.args = [
            sys.executable,
            "-m",
            "benchmarks.botproc",
            "--config",
            str(fleet.path),
            "--mode",
            mode,
            "--expect",
            str(expect),
            "--sweep-every",
            str(sweep_every),
        ]
        if target.schema:
            self.args += ["--schema", target.schema]
        self.log_path = workdir / f"bot-{mode}-{uuid.uuid4().hex[:6]}.log"
        self.events: list[Json] = []
        self.launched_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        env = {**os.environ, "SITEWALK_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        self.launched_at = time.monotonic()
        log = self.log_path.open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        log.close()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for line in self._proc.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                event["received"] = time.monotonic()
                self.events.append(event)
                self._changed.set()
        self._changed.set()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def wait_event(self, kind: str, timeout: float) -> Json:  # noqa: ASYNC109
        """The first event of `kind`; raises with the log's tail when the bot died or hung."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("event") == kind:
                    return event
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} from the bot in {timeout} s: {self.tail()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    def check(self) -> None:
        """Raise with the log's tail when the bot process has died."""
        if self._proc is not None and self._proc.returncode is not None:
            raise RuntimeError(f"bot process exited: {self.tail()}")

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process has had so far."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await self._reader
        self._proc = None


async def wait_until_polling(api: LocalBotApi, timeout: float = 30) -> None:  # noqa: ASYNC109
    """The bot has asked for updates at least once: from here on it reads what we post."""
    await api.wait_for(lambda: any(c.method == "getUpdates" for c in api.calls), timeout)
