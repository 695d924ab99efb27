"""Shared fixtures: databases (SQLite and PostgreSQL), configs and factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Config, parse_config
from storage.db import create_engine, migrate, session_factory
from storage.uow import UnitOfWorkFactory

PG_URL = os.environ.get("SITEWALK_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai, the Qingjiangpu morning

GROUP = -1001234567890
REPORTER, SAFETY, SUPERVISOR_A, SUPERVISOR_B, CHIEF = 5000, 1001, 1002, 1003, 1004
OUTSIDER = 7777

CONFIG_TOML = f"""
admins = [111111111]
[defaults]
timezone = "Asia/Shanghai"
repeat_every = "30m"
max_repeats = 2

[[projects]]
name = "邮政南苑小区改造"
chat_id = {GROUP}
site = {{ lat = 33.5975, lon = 119.0153, radius_m = 300 }}

  [[projects.chain]]
  role = "项目安全员"
  members = [{{ id = {SAFETY}, name = "安全员老王" }}]
  deadline = "30m"

  [[projects.chain]]
  role = "监理"
  members = [{{ id = {SUPERVISOR_A}, name = "监理张工" }}, {{ id = {SUPERVISOR_B}, name = "监理李工" }}]
  deadline = "30m"

  [[projects.chain]]
  role = "总工程师"
  members = [{{ id = {CHIEF}, name = "总工赵工" }}]
  deadline = "1h"
"""


@pytest.fixture
def config() -> Config:
    return parse_config(CONFIG_TOML)


_PG_PROBLEM: list[str | None] = []


async def pg_problem() -> str | None:
    """None when PostgreSQL answers, else why not; asked once per test session."""
    if not _PG_PROBLEM:
        import asyncpg

        try:
            conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=3)
            await conn.close()
            _PG_PROBLEM.append(None)
        except Exception as exc:
            _PG_PROBLEM.append(f"{type(exc).__name__}: {exc}")
    return _PG_PROBLEM[0]


@dataclass
class Database:
    """One isolated database for one test: a SQLite file or a fresh PostgreSQL schema."""

    kind: str
    url: str
    schema: str | None

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path}/sitewalk.db", None)
        return
    problem = await pg_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI at {PG_URL}: {problem}")
        pytest.skip(f"!!! PostgreSQL NOT REACHABLE at {PG_URL} ({problem}); PG tests skipped")
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    raw = PG_URL.replace("+asyncpg", "")
    conn = await asyncpg.connect(raw)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    try:
        yield Database("postgresql", PG_URL, schema)
    finally:
        conn = await asyncpg.connect(raw)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def db_engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = database.engine()
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def uow(db_engine: AsyncEngine) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(session_factory(db_engine))
