"""check-config on a valid file: the one-screen summary and its warnings, database included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.checkconfig import Directory, read_people, summary
from bot.cli import main
from bot.config import parse_config
from storage.uow import UnitOfWorkFactory
from tests.conftest import Database

NOW = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)

CHAIN = """\
admins = [9]

[[projects]]
name = "南苑"
chat_id = -1001

  [[projects.chain]]
  role = "安全员"
  members = [{ id = 1001, name = "王工" }]
  deadline = "30m"

  [[projects.chain]]
  role = "监理"
  members = [1002, "@jianli_zhang"]
  deadline = "45m"

  [[projects.chain]]
  role = "总工"
  members = [1004]
  deadline = "1h"

[[projects]]
name = "北苑"
chat_id = -1002
[projects.working_hours]
days = ["mon", "tue", "wed", "thu", "fri", "sat"]
hours = ["08:00-12:00", "13:00-18:00"]

  [[projects.chain]]
  role = "安全员"
  members = [2001]
  deadline = "1h"
"""


def write(tmp_path: Path, text: str, db: str | None = None) -> Path:
    path = tmp_path / "chain.toml"
    if db:
        text += f'\n[storage]\nurl = "{db}"\n'
    path.write_text(text, encoding="utf-8")
    return path


def test_summary_names_projects_levels_people_and_deadlines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 with each project, its levels in order, their people and deadlines."""
    db = tmp_path / "absent.db"
    path = write(tmp_path, CHAIN, f"sqlite+aiosqlite:///{db}")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK — 2 projects, 4 levels, 5 people" in out
    assert "1. 安全员     30m  王工 (1001)" in out
    assert "2. 监理       45m  1002, @jianli_zhang" in out
    assert "3. 总工        1h  1004" in out
    assert "working hours: mon–sat 08:00–12:00, 13:00–18:00; CN public holidays" in out
    assert len(out.splitlines()) < 25  # one screen


def test_warnings_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A single-level chain and an unresolved @username warn; a missing SQLite file is not made."""
    db = tmp_path / "absent.db"
    path = write(tmp_path, CHAIN, f"sqlite+aiosqlite:///{db}")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "北苑: a single level; nobody above it will ever be told" in out
    assert "南苑, level 2 监理: @jianli_zhang is unresolved until the bot sees this user" in out
    assert f"database check skipped: SQLite file {db} does not exist" in out
    assert not db.exists()


def test_unreachable_database_is_a_warning_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that refuses connections leaves exit 0 and says the check was skipped."""
    path = write(tmp_path, CHAIN)
    code = main(["check-config", str(path), "--db", "postgresql+asyncpg://x@127.0.0.1:1/none"])
    assert code == 0
    assert "database check skipped: cannot read postgresql+asyncpg://x@127.0.0.1:1/none" in (
        capsys.readouterr().out
    )


async def seed(uow: UnitOfWorkFactory) -> None:
    async with uow() as work:
        await work.people.mark_started(1001, "wang", "王工", NOW)  # reachable
        await work.people.seen(1002, "zhang2", "张工", NOW)  # seen, never pressed Start
        await work.people.mark_started(1003, "jianli_zhang", "张监理", NOW)  # the @username
        await work.people.mark_started(2001, "bei", "北", NOW)
        await work.people.mark_unreachable(2001, "Forbidden: bot was blocked by the user")
        await work.commit()


async def test_database_warnings_name_who_cannot_be_dmed(
    database: Database, db_engine: AsyncEngine, uow: UnitOfWorkFactory
) -> None:
    """From the bot's database: never seen, never started, blocked; a seen @username resolves."""
    await seed(uow)
    directory = await read_people(db_engine, parse_config(CHAIN))
    text = summary(parse_config(CHAIN), "chain.toml", directory, NOW)
    assert "2. 监理       45m  1002, @jianli_zhang = 1003" in text
    assert "南苑, level 2 监理: cannot DM: 1002 (has not pressed Start in a DM with the bot)" in text
    assert "南苑, level 3 总工: nobody at this level can be DMed: 1004 (never seen by the bot)" in text
    assert "北苑, level 1 安全员: nobody at this level can be DMed: 2001 (DM refused (Forbidden" in text
    assert "level 1 安全员: cannot DM" not in text  # 王工 pressed Start
    assert "unresolved" not in text


async def test_check_config_reads_a_sqlite_database_read_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--db` on an existing SQLite file gives the database warnings and leaves the file alone."""
    from storage.db import create_engine, migrate, session_factory

    db = tmp_path / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await migrate(engine)
    await seed(UnitOfWorkFactory(session_factory(engine)))
    await engine.dispose()
    before = db.read_bytes()
    path = write(tmp_path, CHAIN)
    import asyncio

    code = await asyncio.to_thread(main, ["check-config", str(path), "--db", f"sqlite+aiosqlite:///{db}"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1004 (never seen by the bot)" in out
    assert "database check skipped" not in out
    assert db.read_bytes() == before


def test_calendar_data_running_out_is_a_warning() -> None:
    """A project with CN holidays warns when the package has no data for the coming month."""
    config = parse_config(CHAIN)
    checked = Directory()
    later = summary(config, "c.toml", checked, datetime(2099, 1, 1, tzinfo=UTC))
    assert "北苑: chinese-calendar knows holidays up to" in later
    assert "for 2099 only the weekly hours apply" in later
    now = summary(config, "c.toml", checked, datetime(2025, 3, 1, tzinfo=UTC))
    assert "chinese-calendar" not in now
