"""Commands in the group and in DMs, their permissions, paging, and the escalation DM buttons."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Config
from escalation.hazard import HazardState
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import (
    CHIEF,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    SUPERVISOR_B,
    T0,
    Database,
)

REPORT = "3号楼塔吊配重块松动了"
OTHER_REPORT = "5号楼外架连墙件被拆了好几根"
CONFIG_ADMIN = 111111111
ELSEWHERE = -1009999999999


async def answer(bot: BotUnderTest, user: int, command: str) -> str:
    """Send a command in the group and return the bot's newest group text."""
    await bot.say(user, command)
    return bot.group_texts()[-1]


async def dm_buttons(bot: BotUnderTest, user: int) -> tuple[int, list[str]]:
    dm = next(m for m in reversed(bot.api.sent(user)) if "reply_markup" in m)
    rows = dm["reply_markup"]["inline_keyboard"]
    return dm["message_id"], [b["callback_data"] for row in rows for b in row]


async def test_commands_are_registered_in_zh_and_en(config: Config, database: Database) -> None:
    """setMyCommands gives groups and private chats their own menus, in Chinese and English."""
    async with running_bot(config, database, start=T0) as bot:
        groups, private = {"type": "all_group_chats"}, {"type": "all_private_chats"}
        for code in ("zh", "en", ""):
            names = [c["command"] for c in bot.api.commands(groups, code)]
            assert names == ["hazards", "hazard", "chain", "report", "dismiss", "id", "help"]
            assert [c["command"] for c in bot.api.commands(private, code)] == [
                "mine",
                "start",
                "help",
            ]
        assert bot.api.commands(groups, "zh")[0]["description"] == "进行中的隐患"
        assert bot.api.commands(groups, "en")[0]["description"] == "Active hazards"


MISSED = "三楼那边的板子翘起来了"  # the classifier reads it as chatter


async def test_report_registers_what_the_classifier_missed(
    config: Config, database: Database
) -> None:
    """/report text opens #1 with that text, a card replying to the command, and a deadline;
    matched records that a person, not the classifier, decided."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, MISSED)
        assert await bot.hazards() == []
        command = await bot.say(SAFETY, f"/report {MISSED}")
        [hazard] = await bot.hazards()
        assert (hazard.number, hazard.text, hazard.reporter_id) == (1, MISSED, SAFETY)
        assert hazard.report_message_id == command["message_id"]
        card = bot.api.sent(GROUP)[-1]
        assert "#1" in card["text"]
        assert card["reply_to_message"]["message_id"] == command["message_id"]
        [reported] = await bot.events("reported")
        assert "rule:reported_by_command" in reported.detail["matched"]


async def test_report_in_reply_registers_the_message_it_answers(
    config: Config, database: Database
) -> None:
    """/report replying to someone's message registers that message, reported by its author;
    a second /report to it opens nothing new."""
    async with running_bot(config, database, start=T0) as bot:
        original = await bot.say(REPORTER, MISSED)
        await bot.say(SAFETY, "/report", reply_to=original["message_id"])
        await bot.say(SUPERVISOR_A, "/report", reply_to=original["message_id"])
        [hazard] = await bot.hazards()
        assert (hazard.text, hazard.reporter_id) == (MISSED, REPORTER)
        assert hazard.report_message_id == original["message_id"]
        cards = [m for m in bot.api.sent(GROUP) if "#1" in m.get("text", "")]
        assert len(cards) == 1


async def test_report_without_text_or_reply_explains_itself(
    config: Config, database: Database
) -> None:
    async with running_bot(config, database, start=T0) as bot:
        assert "/report" in await answer(bot, REPORTER, "/report")
        assert await bot.hazards() == []


async def test_hazards_lists_open_hazards_with_level_and_time_left(
    config: Config, database: Database
) -> None:
    """/hazards names each active hazard with its level, role and the minutes left."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=20))
        await bot.say(REPORTER, OTHER_REPORT)
        await bot.advance(timedelta(minutes=15))  # 09:35: #1 at level 2, #2 due 09:50
        text = await answer(bot, SAFETY, "/hazards")
        lines = text.splitlines()
        assert "2 个" in lines[0]
        assert lines[1].startswith("#1 待到场 · 第2级 监理 · 25 分钟")
        assert lines[2].startswith("#2 待到场 · 第1级 项目安全员 · 15 分钟")


async def test_hazard_shows_the_whole_timeline(config: Config, database: Database) -> None:
    """/hazard 1 lists report, acknowledgement, refusal, escalation and the visit, in order."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await bot.say(SAFETY, "收到", reply_to=report["message_id"])
        bot.api.post_photo(GROUP, OUTSIDER, reply_to=report["message_id"])
        await bot.settle()
        await bot.advance(timedelta(minutes=31))
        bot.api.post_photo(GROUP, SUPERVISOR_A, reply_to=report["message_id"])
        await bot.settle()
        text = await answer(bot, REPORTER, "/hazard 1")
        assert text.startswith("隐患 #1(已到场,第2级)")
        order = ["报告隐患", "回复「收到」", "证据未计入", "升级到第2级", "到场确认"]
        positions = [text.index(word) for word in order]
        assert positions == sorted(positions)


async def test_hazard_without_a_valid_number_explains_itself(
    config: Config, database: Database
) -> None:
    """/hazard alone shows the usage; /hazard 9 says there is no #9."""
    async with running_bot(config, database, start=T0) as bot:
        assert "用法" in await answer(bot, REPORTER, "/hazard")
        assert "没有隐患 #9" in await answer(bot, REPORTER, "/hazard 9")


async def test_chain_shows_who_can_be_dmed_and_a_start_link(
    config: Config, database: Database
) -> None:
    """/chain lists each level's people, marks who pressed Start, and links the others."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.settle()
        text = await answer(bot, REPORTER, "/chain")
        assert "第1级 项目安全员(30 分钟):安全员老王 ❌" in text
        assert "监理张工 ✅" in text
        assert "监理李工 ❌" in text
        assert "第3级 总工程师(1 小时)" in text
        assert "https://t.me/sitewalk_bot?start=p1001234567890" in text


async def test_reporter_can_dismiss_with_a_reason(config: Config, database: Database) -> None:
    """/dismiss 1 reason by the reporter moves #1 to dismissed, logs the reason, tells the group,
    and stops its escalation."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        text = await answer(bot, REPORTER, "/dismiss 1 看错了,是6号楼的旧配重")
        assert "#1 已撤销" in text
        assert "看错了" in text
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.DISMISSED
        [event] = await bot.events("dismissed")
        assert (event.actor_id, event.detail["reason"]) == (REPORTER, "看错了,是6号楼的旧配重")
        await bot.advance(timedelta(hours=1))
        assert [t for t in bot.dms(SUPERVISOR_A) if "#1" in t] == []


async def test_dismiss_by_someone_else_is_refused_and_changes_nothing(
    config: Config, database: Database
) -> None:
    """A member who neither reported nor administers gets a short refusal; #1 stays open."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        text = await answer(bot, OUTSIDER, "/dismiss 1 没事")
        assert "只有报告人或管理员" in text
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert await bot.events("dismissed") == []


async def test_group_admins_and_config_admins_may_dismiss(
    config: Config, database: Database
) -> None:
    """A Telegram group admin, a config admin and an anonymous admin may each dismiss."""
    async with running_bot(config, database, start=T0) as bot:
        for _ in range(3):
            await bot.say(REPORTER, REPORT + "。")
        bot.api.set_member_status(GROUP, CHIEF, "administrator")
        await answer(bot, CHIEF, "/dismiss 1 重复报告")
        bot.api.user(CONFIG_ADMIN, "管理员")
        await answer(bot, CONFIG_ADMIN, "/dismiss 2 重复报告")
        bot.api.post_text(GROUP, OUTSIDER, "/dismiss 3 重复报告", sender_chat_id=GROUP)
        await bot.settle()
        assert [h.state for h in await bot.hazards()] == [HazardState.DISMISSED] * 3
        names = [e.actor_name for e in await bot.events("dismissed")]
        assert names[2] == "匿名管理员"


async def test_dismiss_needs_a_reason_and_an_open_hazard(
    config: Config, database: Database
) -> None:
    """Without a reason the usage is shown; a hazard already on site cannot be dismissed."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        assert "用法" in await answer(bot, REPORTER, "/dismiss 1")
        bot.api.post_photo(GROUP, SAFETY, reply_to=report["message_id"])
        await bot.settle()
        assert "不能撤销" in await answer(bot, REPORTER, "/dismiss 1 误报")
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.ON_SITE


async def test_id_gives_chat_and_user_ids_even_in_an_unconfigured_group(
    config: Config, database: Database
) -> None:
    """/id answers with the chat's and the sender's ids as TOML, in any group."""
    async with running_bot(config, database, start=T0) as bot:
        text = await answer(bot, SAFETY, "/id")
        assert f"chat_id = {GROUP}" in text
        assert str(SAFETY) in text
        bot.api.group(ELSEWHERE, "别的工地")
        bot.api.post_text(ELSEWHERE, SAFETY, "/id")
        await bot.settle()
        assert f"chat_id = {ELSEWHERE}" in bot.api.sent(ELSEWHERE)[-1]["text"]


async def test_unconfigured_group_hears_nothing_else(config: Config, database: Database) -> None:
    """In a group missing from the config, reports and commands other than /id get no answer."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)  # a hazard in the configured group
        bot.api.group(ELSEWHERE, "别的工地")
        for text in (REPORT, "/hazards", "/hazard 1", "/chain", "/help", "/dismiss 1 x"):
            bot.api.post_text(ELSEWHERE, REPORTER, text)
        await bot.settle()
        assert bot.api.sent(ELSEWHERE) == []
        assert len(await bot.hazards()) == 1


async def test_help_in_group_and_dm(config: Config, database: Database) -> None:
    """/help explains the commands: the group's in the group, the DM's in a DM."""
    async with running_bot(config, database, start=T0) as bot:
        assert "/dismiss" in await answer(bot, REPORTER, "/help")
        bot.api.post_text(SAFETY, SAFETY, "/help")
        await bot.settle()
        assert "/mine" in bot.dms(SAFETY)[-1]


async def test_start_link_binds_the_person_to_the_project(
    config: Config, database: Database
) -> None:
    """/start p<chat> from a chain member names the project and their role and stores the tie;
    from someone outside the chain it gives their id for the admin; a bad link says so."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_B, "p1001234567890")
        bot.api.start_bot(OUTSIDER, "p1001234567890")
        bot.api.start_bot(CHIEF, "p42")
        await bot.settle()
        assert "邮政南苑小区改造" in bot.dms(SUPERVISOR_B)[-1]
        assert "监理(第2级)" in bot.dms(SUPERVISOR_B)[-1]
        assert str(OUTSIDER) in bot.dms(OUTSIDER)[-1]
        assert "不存在" in bot.dms(CHIEF)[-1]
        async with bot.runtime.uow() as uow:
            assert not await uow.people.bind(GROUP, SUPERVISOR_B, T0)  # already tied
            assert await uow.people.bind(GROUP, CHIEF, T0)  # the bad link tied nobody
            people = await uow.people.get_many([CHIEF])
        assert people[CHIEF].started


async def test_mine_lists_the_hazards_that_called_me(config: Config, database: Database) -> None:
    """/mine shows a supervisor the hazard escalated to them, and the chief nothing yet."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        for user in (SUPERVISOR_A, CHIEF):
            bot.api.post_text(user, user, "/mine")
        await bot.settle()
        mine = bot.dms(SUPERVISOR_A)[-1]
        assert "#1 邮政南苑小区改造 · 第2级" in mine
        assert "没有等你处理" in bot.dms(CHIEF)[-1]


async def test_long_lists_are_paged_with_buttons(config: Config, database: Database) -> None:
    """Twenty open hazards: /hazards shows page 1 of 2 with a › button that turns the page."""
    async with running_bot(config, database, start=T0) as bot:
        for i in range(20):
            bot.api.post_text(GROUP, REPORTER, f"{i + 1}号楼塔吊配重块松动了")
        await bot.settle()
        assert len(await bot.hazards()) == 20
        await bot.say(REPORTER, "/hazards")
        listing = bot.api.sent(GROUP)[-1]
        assert "第 1/2 页" in listing["text"]
        assert "#15 " in listing["text"]
        assert "#16 " not in listing["text"]
        assert len(listing["text"]) < 4096
        bot.api.press_button(REPORTER, GROUP, listing["message_id"], "pg:hz::2")
        await bot.settle()
        turned = bot.api.message(GROUP, listing["message_id"])
        assert turned is not None
        assert "第 2/2 页" in turned["text"]
        assert "#20 " in turned["text"]


async def test_dm_button_going_is_recorded_and_told_once(
    config: Config, database: Database
) -> None:
    """我去现场: recorded, the group told once naming the person; a second press changes nothing."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        message_id, buttons = await dm_buttons(bot, SUPERVISOR_A)
        assert buttons[0].startswith("go:")
        for _ in range(2):
            bot.api.press_button(SUPERVISOR_A, SUPERVISOR_A, message_id, buttons[0])
            await bot.settle()
        going = [t for t in bot.group_texts() if "正在前往现场" in t]
        assert going == ["🚶 #1 监理张工 正在前往现场。"]
        assert len(await bot.events("going")) == 1
        assert "已经记录过" in bot.api.callback_answers[-1]["text"]


async def test_dm_button_someone_sent_does_not_stop_the_clock(
    config: Config, database: Database
) -> None:
    """已安排人员 is recorded, tells nobody, and the hazard still escalates on time."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        message_id, buttons = await dm_buttons(bot, SUPERVISOR_A)
        groups_before = len(bot.group_texts())
        bot.api.press_button(SUPERVISOR_A, SUPERVISOR_A, message_id, buttons[1])
        await bot.settle()
        assert len(await bot.events("delegated")) == 1
        assert len(bot.group_texts()) == groups_before
        await bot.advance(timedelta(minutes=30))
        [hazard] = await bot.hazards()
        assert (hazard.state, hazard.level) == (HazardState.OPEN, 3)


async def test_dm_button_stop_work_posts_an_order_naming_who(
    config: Config, database: Database
) -> None:
    """叫停施工 posts a stop-work order in the group with the person's name and role."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_B)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        message_id, buttons = await dm_buttons(bot, SUPERVISOR_B)
        bot.api.press_button(SUPERVISOR_B, SUPERVISOR_B, message_id, buttons[2])
        await bot.settle()
        order = bot.group_texts()[-1]
        assert order.startswith("🛑 停工令 #1:监理李工(监理)")
        assert "配重块" in order
        [event] = await bot.events("stop_work")
        assert event.actor_id == SUPERVISOR_B


async def test_dm_button_from_outside_the_chain_is_refused(
    config: Config, database: Database
) -> None:
    """A press by someone not in the hazard's chain is refused and records nothing."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        message_id, buttons = await dm_buttons(bot, SUPERVISOR_A)
        bot.api.press_button(OUTSIDER, SUPERVISOR_A, message_id, buttons[2])
        await bot.settle()
        assert "不在 #1 的责任链上" in bot.api.callback_answers[-1]["text"]
        assert await bot.events("stop_work") == []
        assert not any("停工令" in t for t in bot.group_texts())


async def test_forged_button_data_gets_a_short_answer_and_changes_nothing(
    config: Config, database: Database
) -> None:
    """Buttons with data the bot never sent (odd digits, unknown ids, another's message) are
    answered briefly and change nothing."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        world = bot.api.world
        for data in ("go:²", "stop:99999999999999", "ev:1", "pg:tl:²:1", "zz"):
            # A modified client can send any data on any message; the sandbox's press_button
            # refuses data that no button carries, so the query is written into its world.
            query = {
                "id": str(4_000_000_000_000 + world.serial()),
                "from": world.user(OUTSIDER).user,
                "chat_instance": "1",
                "message": bot.api.message(GROUP, report["message_id"]),
                "data": data,
            }
            world.callback(query)
            world.enqueue("callback_query", query)
        await bot.settle()
        assert len(bot.api.callback_answers) == 5
        [hazard] = await bot.hazards()
        assert hazard.state is HazardState.OPEN
        assert len(bot.group_texts()) == 1
