"""Members written as @username: resolved once the bot sees the user, stored, used by new hazards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.checkconfig import read_people, summary
from bot.config import ConfigError, parse_config
from tests.botkit import running_bot
from tests.conftest import CONFIG_TOML, REPORTER, SUPERVISOR_B, T0, Database

BY_NAME = CONFIG_TOML.replace('{ id = 1003, name = "监理李工" }', '"@li_sup"')


async def test_username_resolves_after_start_and_reaches_the_dm(database: Database) -> None:
    """Before /start @li_sup has no id on the hazard; after it, a new hazard DMs user 1003."""
    config = parse_config(BY_NAME)
    assert config.projects[0].usernames() == ["li_sup"]
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, "塔吊配重块松动了")
        bot.api.start_bot(SUPERVISOR_B)  # the sandbox user 1003 is @li_sup
        await bot.settle()
        await bot.say(REPORTER, "脚手架连墙件被拆了好几根")
        before, after = await bot.hazards()
        level2_before = before.chain[1]["members"]
        level2_after = after.chain[1]["members"]
        assert {"id": None, "username": "li_sup", "name": None} in level2_before
        assert {"id": SUPERVISOR_B, "username": "li_sup", "name": None} in level2_after
        await bot.advance(timedelta(minutes=30))
        assert any("#2" in text for text in bot.dms(SUPERVISOR_B))


async def test_a_hazard_opened_before_the_username_was_seen_still_reaches_them(
    database: Database,
) -> None:
    """#1's snapshot only knows @li_sup; by the time it escalates the bot has seen user 1003, so
    the DM goes to 1003, no member is logged as unresolved, and the group notice does not call
    them unreachable."""
    async with running_bot(parse_config(BY_NAME), database, start=T0) as bot:
        await bot.say(REPORTER, "塔吊配重块松动了")
        bot.api.start_bot(SUPERVISOR_B)
        await bot.settle()
        await bot.advance(timedelta(minutes=31))
        assert len([t for t in bot.dms(SUPERVISOR_B) if "#1" in t]) == 1
        assert await bot.events("unresolved_member") == []
        [notice] = [t for t in bot.group_texts() if "🔺" in t]
        [cannot_dm] = [line for line in notice.splitlines() if "无法私信" in line]
        assert "监理张工" in cannot_dm  # never started
        assert "李工" not in cannot_dm.replace("监理张工", "")


async def test_check_config_shows_the_stored_mapping(
    database: Database, db_engine: AsyncEngine
) -> None:
    """Once the bot has seen @li_sup, check-config shows its id and no longer calls it unresolved."""
    config = parse_config(BY_NAME)
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_B)
        await bot.settle()
    text = summary(config, "c.toml", await read_people(db_engine, config), T0)
    assert "@li_sup = 1003" in text
    assert "unresolved" not in text


def test_member_forms_and_their_errors() -> None:
    """Ids, "@name" and tables with a display name are accepted; a quoted id is not."""
    config = parse_config(
        BY_NAME.replace('members = [{ id = 1004, name = "总工赵工" }]',
                        'members = [1004, "@zhao_chief", { username = "zhao2", name = "赵" }]')
    )
    top = config.projects[0].chain[2].members
    assert [(m.id, m.username, m.name) for m in top] == [
        (1004, None, None), (None, "zhao_chief", None), (None, "zhao2", "赵")
    ]
    assert [m.label() for m in top] == ["1004", "@zhao_chief", "赵"]
    with pytest.raises(ConfigError, match="write a numeric id without quotes"):
        parse_config(BY_NAME.replace('"@li_sup"', '"1003"'))
