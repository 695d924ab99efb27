"""Hot reload: a valid new chain file applies to new hazards; a bad one is refused, admins told."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.reload import ConfigReloader
from storage.models import OutboxRow
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import CONFIG_TOML, GROUP, REPORTER, T0, Database

ADMIN, OTHER_ADMIN = 9001, 9002
BASE = CONFIG_TOML.replace("admins = [111111111]", f"admins = [{ADMIN}, {OTHER_ADMIN}]")
NEW_ROLE = BASE.replace('role = "项目安全员"', 'role = "值班安全员"')
BROKEN = NEW_ROLE.replace('deadline = "1h"', 'deadline = "1 hour"')
BROKEN_LINE = next(n for n, line in enumerate(BROKEN.splitlines(), 1) if '"1 hour"' in line)


def chain_roles(row_chain: list[dict[str, object]]) -> list[object]:
    return [level["role"] for level in row_chain]


async def attach(bot: BotUnderTest, path: Path, every: float = 3600) -> ConfigReloader:
    """Give the running bot a watched file, as `sitewalk run --config` does."""
    bot.api.user(ADMIN, "管理员", "admin_one")
    bot.api.user(OTHER_ADMIN, "副管理员", "admin_two")
    for admin in (ADMIN, OTHER_ADMIN):
        bot.api.start_bot(admin)
    await bot.settle()
    reloader = ConfigReloader(path, bot.runtime, every=every)
    bot.runtime.reloader = reloader
    return reloader


def write(path: Path, text: str) -> None:
    """Replace the file the way editors do: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


async def config_outbox(bot: BotUnderTest) -> list[OutboxRow]:
    return [row for row in await bot.outbox() if row.purpose.startswith("config_")]


async def test_valid_file_applies_to_new_hazards_only(database: Database, tmp_path: Path) -> None:
    """After a good edit the next hazard gets the new chain; the hazard in flight keeps its own."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        reloader = await attach(bot, path)
        await bot.say(REPORTER, "塔吊配重块松动了")
        write(path, NEW_ROLE)
        assert await reloader.poll() is None  # changed: wait one interval for it to hold still
        outcome = await reloader.poll()
        assert outcome is not None
        assert outcome.applied
        assert bot.runtime.config.projects[0].chain[0].role == "值班安全员"
        await bot.say(REPORTER, "脚手架连墙件被拆了好几根")
        first, second = await bot.hazards()
        assert chain_roles(first.chain)[0] == "项目安全员"
        assert chain_roles(second.chain)[0] == "值班安全员"
        assert "值班安全员" in bot.group_texts()[-1]
        assert await config_outbox(bot) == []  # a good reload is quiet
        assert await reloader.poll() is None  # nothing changed since: nothing done


async def test_bad_file_keeps_old_chain_logs_and_dms_admins_once(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken edit is refused: old chain kept, errors logged, each admin DMed the lines once."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        reloader = await attach(bot, path)
        write(path, BROKEN)
        with caplog.at_level(logging.ERROR, logger="bot.reload"):
            await reloader.poll()
            outcome = await reloader.poll()
        assert outcome is not None
        assert not outcome.applied
        expected = f"{path}:{BROKEN_LINE}: projects.0.chain.2.deadline: not a duration: '1 hour'"
        assert any(expected in record.getMessage() for record in caplog.records)
        await bot.outbox_quiet()
        for admin in (ADMIN, OTHER_ADMIN):
            [dm] = [t for t in bot.dms(admin) if "未生效" in t]
            assert expected in dm
            assert "继续使用原配置" in dm
        assert bot.runtime.config.projects[0].chain[0].role == "项目安全员"
        await bot.say(REPORTER, "塔吊配重块松动了")
        [hazard] = await bot.hazards()
        assert chain_roles(hazard.chain)[0] == "项目安全员"
        # The same broken file seen again, or re-read, tells nobody twice.
        assert await reloader.poll() is None
        await reloader.reload()
        await bot.outbox_quiet()
        assert len(await config_outbox(bot)) == 2


async def test_fixing_a_refused_file_tells_the_admins_once(
    database: Database, tmp_path: Path
) -> None:
    """After a refusal, the next valid version is applied and the admins hear it is fixed."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        reloader = await attach(bot, path)
        write(path, BROKEN)
        assert not (await reloader.reload()).applied
        write(path, NEW_ROLE)
        assert (await reloader.reload()).applied
        await reloader.reload()  # a third read of the same good file says nothing new
        await bot.outbox_quiet()
        for admin in (ADMIN, OTHER_ADMIN):
            texts = bot.dms(admin)
            assert sum("未生效" in t for t in texts) == 1
            assert sum("配置已重新加载" in t for t in texts) == 1


async def test_reload_command_from_an_admin(database: Database, tmp_path: Path) -> None:
    """/reload in a DM answers the admin directly; on a bad file the other admin gets the DM."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        await attach(bot, path)
        path.write_text(NEW_ROLE, encoding="utf-8")
        bot.api.post_text(ADMIN, ADMIN, "/reload")
        await bot.settle()
        assert "配置已重新加载:1 个项目" in bot.dms(ADMIN)[-1]
        assert bot.runtime.config.projects[0].chain[0].role == "值班安全员"
        path.write_text(BROKEN, encoding="utf-8")
        bot.api.post_text(ADMIN, ADMIN, "/reload")
        await bot.settle()
        answer = bot.dms(ADMIN)[-1]
        assert f":{BROKEN_LINE}: projects.0.chain.2.deadline" in answer
        assert sum("未生效" in t for t in bot.dms(ADMIN)) == 1  # the answer, no second copy
        assert sum("未生效" in t for t in bot.dms(OTHER_ADMIN)) == 1
        assert bot.runtime.config.projects[0].chain[0].role == "值班安全员"


async def test_reload_command_refused_for_non_admins(database: Database, tmp_path: Path) -> None:
    """A chain member who is not an admin gets a short refusal and the config stays as it is."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        await attach(bot, path)
        path.write_text(NEW_ROLE, encoding="utf-8")
        bot.api.post_text(REPORTER, REPORTER, "/reload")
        await bot.settle()
        assert bot.dms(REPORTER)[-1] == "只有管理员可以重新加载配置。"
        assert bot.runtime.config.projects[0].chain[0].role == "项目安全员"
        bot.api.post_text(GROUP, ADMIN, "/reload")  # not in a group: config errors stay private
        await bot.settle()
        assert bot.runtime.config.projects[0].chain[0].role == "项目安全员"


async def test_the_watcher_notices_a_saved_file_by_itself(
    database: Database, tmp_path: Path
) -> None:
    """With the watch task running, saving the file is enough: the new chain is in use shortly."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        reloader = await attach(bot, path, every=0.05)
        reloader.start()
        write(path, NEW_ROLE)
        for _ in range(200):
            if bot.runtime.config.projects[0].chain[0].role == "值班安全员":
                break
            await asyncio.sleep(0.02)
        assert bot.runtime.config.projects[0].chain[0].role == "值班安全员"
        assert bot.runtime.service.config is bot.runtime.config
        assert bot.runtime.escalator.config is bot.runtime.config


async def test_a_deleted_file_is_refused_not_fatal(database: Database, tmp_path: Path) -> None:
    """A file that disappears keeps the running config and tells the admins it cannot be read."""
    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    async with running_bot(parse_config(BASE), database, start=T0) as bot:
        reloader = await attach(bot, path)
        path.unlink()
        await reloader.poll()
        outcome = await reloader.poll()
        assert outcome is not None
        assert not outcome.applied
        assert "cannot read the file" in outcome.problems[0]
        await bot.outbox_quiet()
        assert any("cannot read the file" in t for t in bot.dms(ADMIN))
        assert bot.runtime.config.projects[0].name == "邮政南苑小区改造"


def test_restart_only_settings_are_named() -> None:
    """A changed storage URL is reported as needing a restart; chain edits are not."""
    from bot.reload import changes_needing_restart

    old = parse_config(BASE)
    assert changes_needing_restart(old, parse_config(NEW_ROLE)) == []
    moved = parse_config(BASE + '\n[storage]\nurl = "sqlite+aiosqlite:///other.db"\n')
    assert changes_needing_restart(old, moved) == ["storage"]


def test_run_wires_the_watcher_for_its_config_file(tmp_path: Path) -> None:
    """build_application(config_path=...) — what `sitewalk run --config` passes — gets a watcher."""
    from bot.app import build_application, runtime_of
    from escalation.clock import FakeClock

    path = tmp_path / "chain.toml"
    path.write_text(BASE, encoding="utf-8")
    config = parse_config(BASE)
    db = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    config = config.model_copy(update={"storage": config.storage.model_copy(update={"url": db})})
    app = build_application(config, token="1:x", clock=FakeClock(T0), config_path=path)
    reloader = runtime_of(app).reloader
    assert reloader is not None
    assert reloader.path == path
    bare = build_application(config, token="1:x", clock=FakeClock(T0))
    assert runtime_of(bare).reloader is None
