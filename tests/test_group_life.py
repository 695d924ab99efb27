"""Group life: joining a group, unconfigured groups, migration, anonymous admins, edits, bots."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Config, parse_config
from bot.sandbox import LocalBotApi
from escalation.hazard import HazardState
from tests.botkit import people, running_bot
from tests.conftest import (
    CONFIG_TOML,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    T0,
    Database,
)

REPORT = "3号楼塔吊配重块松动了"
ELSEWHERE = -1009999999999
BASIC_GROUP = -4001234
SUPERGROUP = -1004001234000
OTHER_BOT = 6000


async def test_added_to_its_group_it_introduces_itself_once(
    config: Config, database: Database
) -> None:
    """Added as an admin to a configured group: one short introduction naming the project."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.add_bot_to_group(GROUP, REPORTER)
        await bot.settle()
        [intro] = bot.group_texts()
        assert "邮政南苑小区改造" in intro
        assert "/help" in intro
        assert "看不到" not in intro


async def test_unconfigured_group_gets_one_message_then_silence(
    config: Config, database: Database
) -> None:
    """An unknown group gets its chat id and the TOML lines once, then nothing, and never sees
    another project's data."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        bot.api.group(ELSEWHERE, "别的工地")
        bot.api.add_bot_to_group(ELSEWHERE, REPORTER)
        await bot.settle()
        [message] = bot.api.sent(ELSEWHERE)
        assert f"chat_id = {ELSEWHERE}" in message["text"]
        assert 'name = "别的工地"' in message["text"]
        report = bot.api.post_text(ELSEWHERE, REPORTER, REPORT)
        bot.api.post_text(ELSEWHERE, SAFETY, "收到", reply_to=report["message_id"])
        bot.api.post_photo(ELSEWHERE, SAFETY, caption="#1")
        bot.api.post_text(ELSEWHERE, REPORTER, "/hazards")
        await bot.settle()
        assert len(bot.api.sent(ELSEWHERE)) == 1
        assert "邮政南苑" not in message["text"]
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN


async def test_without_admin_rights_and_with_privacy_on_it_says_it_cannot_see(
    config: Config, database: Database
) -> None:
    """Added as a plain member while privacy mode is on: the introduction says it cannot see
    ordinary messages and how to fix it."""
    async with LocalBotApi() as api:
        people(api)
        api.privacy_mode = True
        async with running_bot(config, database, start=T0, api=api) as bot:
            api.add_bot_to_group(GROUP, REPORTER, as_admin=False)
            await bot.settle()
            [intro] = bot.group_texts()
            assert "看不到" in intro
            assert "管理员" in intro


async def test_without_admin_rights_but_privacy_off_no_warning(
    config: Config, database: Database
) -> None:
    """A plain member with privacy mode off reads everything, so the introduction has no warning."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.add_bot_to_group(GROUP, REPORTER, as_admin=False)
        await bot.settle()
        [intro] = bot.group_texts()
        assert "看不到" not in intro


async def test_supergroup_migration_moves_the_hazards_and_the_config_lookup(
    database: Database,
) -> None:
    """After a basic group becomes a supergroup, #1 lives in the new chat: evidence there stops
    its clock, /hazards answers there, escalation notices go there, and DMs name the project."""
    config = parse_config(CONFIG_TOML.replace(str(GROUP), str(BASIC_GROUP)))
    async with LocalBotApi() as api:
        people(api)
        api.group(BASIC_GROUP, "老群")
        async with running_bot(config, database, start=T0, api=api) as bot:
            api.post_text(BASIC_GROUP, REPORTER, REPORT)
            api.post_text(BASIC_GROUP, REPORTER, "5号楼外架连墙件被拆了好几根")
            await bot.settle()
            api.migrate_group(BASIC_GROUP, SUPERGROUP)
            await bot.settle()
            assert {h.chat_id for h in await bot.hazards()} == {SUPERGROUP}
            api.post_photo(SUPERGROUP, SAFETY, caption="#1 到了")
            api.post_text(SUPERGROUP, REPORTER, "/hazards")
            await bot.settle()
            assert [h.state for h in await bot.hazards()] == [
                HazardState.ON_SITE,
                HazardState.OPEN,
            ]
            texts = [m.get("text", "") for m in api.sent(SUPERGROUP)]
            assert any("✅ #1" in t for t in texts)
            assert any("#2 待到场" in t for t in texts)
            api.start_bot(SUPERVISOR_A)
            await bot.advance(timedelta(minutes=31))
            assert any("#2 已超时" in m.get("text", "") for m in api.sent(SUPERGROUP))
            # The config still names the old chat id; the DM names the project all the same.
            [dm] = [t for t in bot.dms(SUPERVISOR_A) if "#2" in t]
            assert "邮政南苑小区改造" in dm


async def test_anonymous_admin_reports_and_acknowledges(config: Config, database: Database) -> None:
    """An anonymous admin's report is registered as by 匿名管理员; their 收到 is recorded too."""
    async with running_bot(config, database, start=T0) as bot:
        report = bot.api.post_text(GROUP, REPORTER, REPORT, sender_chat_id=GROUP)
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.reporter_name == "匿名管理员"
        bot.api.post_text(
            GROUP, SAFETY, "收到", reply_to=report["message_id"], sender_chat_id=GROUP
        )
        await bot.settle()
        [ack] = await bot.events("acknowledged")
        assert ack.actor_name == "匿名管理员"


async def test_anonymous_admin_photo_cannot_prove_a_visit(
    config: Config, database: Database
) -> None:
    """A photo posted as the group cannot be tied to a person in the chain, so it is refused."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        bot.api._post(  # the sandbox has no photo-as-the-group action; its generic post does it
            GROUP,
            SAFETY,
            {"photo": bot.api.world.new_photo(None)},
            report["message_id"],
            GROUP,
            None,
        )
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert [e.detail["reason"] for e in await bot.events("evidence_refused")] == [
            "not_in_chain"
        ]


async def test_a_message_edited_into_a_hazard_report_is_registered(
    config: Config, database: Database
) -> None:
    """Chat edited into a hazard report becomes #1, with the card replying to it; a second edit
    changes nothing."""
    async with running_bot(config, database, start=T0) as bot:
        msg = await bot.say(REPORTER, "明天早上几点进场?")
        assert await bot.hazards() == []
        bot.api.edit_text(GROUP, msg["message_id"], REPORT)
        await bot.settle()
        bot.api.edit_text(GROUP, msg["message_id"], REPORT + ",赶紧处理")
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.report_message_id == msg["message_id"]
        [card] = bot.api.sent(GROUP)
        assert card["reply_to_message"]["message_id"] == msg["message_id"]


async def test_an_edit_cannot_turn_an_ack_into_evidence(config: Config, database: Database) -> None:
    """收到 edited into "#1 到了", or into a photo, is not evidence and not a second 收到."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        ack = await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        bot.api.edit_text(GROUP, ack["message_id"], "#1 我到现场了")
        await bot.settle()
        # Telegram lets a client replace a message's content; the sandbox has no action for a
        # photo edit, so the test writes the edited message into its world directly.
        world = bot.api.world
        state = world.chat(GROUP)
        edited = {
            **{k: v for k, v in ack.items() if k not in ("text", "entities")},
            "photo": world.new_photo(None),
            "caption": "#1",
            "edit_date": ack["date"] + 60,
        }
        world.enqueue("edited_message", world.replace_message(state, edited))
        await bot.settle()
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert len(await bot.events("acknowledged")) == 1
        assert await bot.events("evidence_refused") == []
        assert len(bot.group_texts()) == 2  # the card and the one reminder


async def test_messages_from_other_bots_and_channels_are_ignored(
    config: Config, database: Database
) -> None:
    """A bot's hazard text, 收到 or photo, and a channel's post, change nothing and get no answer."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.user(OTHER_BOT, "考勤机器人", "checkin_bot", is_bot=True)
        bot.api.post_text(GROUP, OTHER_BOT, REPORT)
        await bot.settle()
        assert await bot.hazards() == []
        report = await bot.say(REPORTER, REPORT)
        bot.api.post_text(GROUP, OTHER_BOT, "收到", reply_to=report["message_id"])
        bot.api.post_photo(GROUP, OTHER_BOT, reply_to=report["message_id"])
        bot.api.group(ELSEWHERE, "公司频道")
        bot.api.post_text(GROUP, OUTSIDER, REPORT + "!", sender_chat_id=ELSEWHERE)
        await bot.settle()
        assert len(await bot.hazards()) == 1
        assert await bot.events("acknowledged") == []
        assert await bot.events("evidence_refused") == []
        assert len(bot.group_texts()) == 1


async def test_blocking_the_bot_shows_in_chain(config: Config, database: Database) -> None:
    """A supervisor who blocks the bot is marked unreachable at once; /chain shows ❌."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.settle()
        bot.api.block_bot(SUPERVISOR_A)
        await bot.settle()
        async with bot.runtime.uow() as uow:
            person = (await uow.people.get_many([SUPERVISOR_A]))[SUPERVISOR_A]
        assert not person.started
        await bot.say(REPORTER, "/chain")
        assert "监理张工 ❌" in bot.group_texts()[-1]
