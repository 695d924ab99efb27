"""The permission matrix: who can do what, table-driven, on both databases.

Each row is an action, each column a kind of actor. One running bot per action: every actor gets
a hazard of its own (#1 for the first actor, #2 for the next, ...) and tries the action on it,
and the outcome is read from the database and the local Bot API:

    done     the action took effect
    refused  the bot said no (or recorded a refusal) and nothing changed
    answered a read-only command was answered (and showed only this group's data)
    ignored  no answer, nothing changed

Two projects run side by side, so data of one project must never appear in the other's group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.config import Config, parse_config
from bot.texts import Texts
from escalation.hazard import HazardState
from tests.botkit import BotUnderTest, running_bot
from tests.conftest import (
    CHIEF,
    CONFIG_TOML,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    SUPERVISOR_B,
    T0,
    Database,
)

Json = dict[str, Any]

OTHER_GROUP = -1005555555555  # a second project, with its own chain
OTHER_SAFETY = 2001
STRANGER = 8888  # in no group, writes to the bot in a DM
GROUP_ADMIN = 7001  # a Telegram admin of the group, not in the chain, not in `admins`
CONFIG_ADMIN = 111111111  # listed in the config's `admins`
OTHER_BOT = 600000009
ANONYMOUS_ADMIN = 1087968824

REPORT = "{k}号楼塔吊配重块松动了,螺栓都看得见缝"
OTHER_REPORT = "B区基坑边坡出现裂缝,支护桩在往外倾"


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int
    kind: str = "person"  # person | stranger | anonymous | bot


ACTORS = (
    Actor("reporter", REPORTER),
    Actor("level 1", SAFETY),
    Actor("level 2", SUPERVISOR_A),
    Actor("level 3", CHIEF),
    Actor("outsider", OUTSIDER),
    Actor("stranger (DM)", STRANGER, "stranger"),
    Actor("group admin", GROUP_ADMIN),
    Actor("config admin", CONFIG_ADMIN),
    Actor("anonymous admin", ANONYMOUS_ADMIN, "anonymous"),
    Actor("other bot", OTHER_BOT, "bot"),
)

D, R, A, N = "done", "refused", "answered", "ignored"  # N: nothing happens
# action → the outcome for each actor, in the order of ACTORS:
#       reporter  L1  L2  L3  outsider  stranger  g-admin  c-admin  anonymous  bot
MATRIX: dict[str, tuple[str, ...]] = {
    "confirm with evidence (hazard at level 1)": (R, D, R, R, R, N, R, R, R, N),
    "confirm with evidence (hazard at level 2)": (R, D, D, R, R, N, R, R, R, N),
    "dismiss": (D, R, R, R, R, N, D, D, D, N),
    "reload": (R, R, R, R, R, R, R, D, N, N),
    "/chain": (A, A, A, A, A, N, A, A, A, N),
    "/hazard N in another project's group": (A, A, A, A, A, N, A, A, A, N),
    "press a DM button of someone else's escalation": (R, D, D, D, R, R, R, R, R, R),
}


def two_projects() -> Config:
    return parse_config(
        CONFIG_TOML
        + f"""
[[projects]]
name = "B区安置房"
chat_id = {OTHER_GROUP}

  [[projects.chain]]
  role = "安全员"
  members = [{{ id = {OTHER_SAFETY}, name = "B区安全员" }}]
  deadline = "30m"
"""
    )


@pytest.fixture
def config() -> Config:
    return two_projects()


# ---- how each kind of actor acts ---------------------------------------------------------------


def say(bot: BotUnderTest, actor: Actor, chat: int, text: str, reply_to: int | None = None) -> Json:
    """The actor writes `text` in `chat` (a stranger writes in its DM instead)."""
    api = bot.api
    if actor.kind == "stranger":
        return api.post_text(actor.user_id, actor.user_id, text)
    if actor.kind == "anonymous":
        return api.post_text(chat, OUTSIDER, text, reply_to=reply_to, sender_chat_id=chat)
    return api.post_text(chat, actor.user_id, text, reply_to=reply_to)


def dm(bot: BotUnderTest, actor: Actor, text: str) -> Json | None:
    """The actor writes to the bot privately; anonymous admins and bots cannot: in the group."""
    if actor.kind in ("anonymous", "bot"):
        return say(bot, actor, GROUP, text)
    return bot.api.post_text(actor.user_id, actor.user_id, text)


def photo(bot: BotUnderTest, actor: Actor, reply_to: int) -> Json:
    api = bot.api
    content = {"photo": api.world.new_photo(None)}
    if actor.kind == "stranger":
        return api.post_content(actor.user_id, actor.user_id, content)
    if actor.kind == "anonymous":
        return api.post_content(GROUP, None, content, reply_to=reply_to, sender_chat_id=GROUP)
    return api.post_content(GROUP, actor.user_id, content, reply_to=reply_to)


def replies_to(bot: BotUnderTest, chat: int, message: Json) -> list[Json]:
    """What the bot sent in `chat` in answer to `message`: a reply to it in a group; in a DM,
    where answers do not quote, whatever it sent after it."""
    if chat > 0:
        return [m for m in bot.api.sent(chat) if m["message_id"] > message["message_id"]]
    return [
        m
        for m in bot.api.sent(chat)
        if m.get("reply_to_message", {}).get("message_id") == message["message_id"]
    ]


def buttons(message: Json) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button.get("callback_data", "") for row in rows for button in row]


# ---- the actions -------------------------------------------------------------------------------


async def report_one_each(bot: BotUnderTest) -> list[Json]:
    """Hazard #k+1 for actor k, reported by the reporter."""
    reports = [
        bot.api.post_text(GROUP, REPORTER, REPORT.format(k=k + 1)) for k in range(len(ACTORS))
    ]
    await bot.settle()
    return reports


async def evidence(bot: BotUnderTest, level: int) -> list[str]:
    reports = await report_one_each(bot)
    if level == 2:
        await bot.advance(timedelta(minutes=31))
    for actor, report in zip(ACTORS, reports, strict=True):
        photo(bot, actor, report["message_id"])
    await bot.settle()
    hazards = await bot.hazards()
    refused = {e.hazard_id for e in await bot.events("evidence_refused")}
    outcomes = []
    for actor, hazard in zip(ACTORS, hazards, strict=True):
        if hazard.state is HazardState.ON_SITE:
            outcomes.append(D)
        elif hazard.id in refused:
            outcomes.append(R)
        else:
            assert hazard.state is HazardState.OPEN, actor
            outcomes.append(N)
    return outcomes


async def evidence_at_level_1(bot: BotUnderTest) -> list[str]:
    return await evidence(bot, 1)


async def evidence_at_level_2(bot: BotUnderTest) -> list[str]:
    return await evidence(bot, 2)


async def dismiss(bot: BotUnderTest) -> list[str]:
    await report_one_each(bot)
    bot.api.set_member_status(GROUP, GROUP_ADMIN, "administrator")
    commands = [say(bot, a, GROUP, f"/dismiss {k + 1} 误报") for k, a in enumerate(ACTORS)]
    await bot.settle()
    hazards = await bot.hazards()
    texts = Texts("zh", "Asia/Shanghai")
    outcomes = []
    for k, (actor, command, hazard) in enumerate(zip(ACTORS, commands, hazards, strict=True)):
        chat = actor.user_id if actor.kind == "stranger" else GROUP
        answers = [m.get("text", "") for m in replies_to(bot, chat, command)]
        if hazard.state is HazardState.DISMISSED:
            outcomes.append(D)
        elif texts.dismiss_denied(number=k + 1) in answers:
            assert hazard.state is HazardState.OPEN
            outcomes.append(R)
        else:
            assert hazard.state is HazardState.OPEN
            assert answers == [], (actor, answers)
            outcomes.append(N)
    return outcomes


async def reload(bot: BotUnderTest) -> list[str]:
    commands = [dm(bot, actor, "/reload") for actor in ACTORS]
    await bot.settle()
    outcomes = []
    for actor, command in zip(ACTORS, commands, strict=True):
        assert command is not None
        chat = command["chat"]["id"]
        answers = [m.get("text", "") for m in replies_to(bot, chat, command)]
        if Texts("zh", "Asia/Shanghai").reload("no_file") in answers:  # past the admin check, then no file
            outcomes.append(D)
        elif Texts("zh", "Asia/Shanghai").reload("not_admin") in answers:
            outcomes.append(R)
        else:
            assert answers == [], (actor, answers)
            outcomes.append(N)
    return outcomes


async def chain(bot: BotUnderTest) -> list[str]:
    commands = [say(bot, actor, GROUP, "/chain") for actor in ACTORS]
    await bot.settle()
    outcomes = []
    for actor, command in zip(ACTORS, commands, strict=True):
        chat = command["chat"]["id"]
        answers = [m.get("text", "") for m in replies_to(bot, chat, command)]
        assert not any("B区" in a for a in answers), (actor, answers)  # not the other project's
        outcomes.append(A if any("安全员老王" in a for a in answers) else N)
    return outcomes


async def hazard_elsewhere(bot: BotUnderTest) -> list[str]:
    """Project A has #1 (a tower crane); project B has its own #1 (a foundation pit)."""
    await bot.say(REPORTER, REPORT.format(k=1))
    bot.api.post_text(OTHER_GROUP, REPORTER, OTHER_REPORT)
    await bot.settle()
    commands = [say(bot, actor, OTHER_GROUP, "/hazard 1") for actor in ACTORS]
    await bot.settle()
    outcomes = []
    for actor, command in zip(ACTORS, commands, strict=True):
        chat = command["chat"]["id"]
        answers = [m.get("text", "") for m in replies_to(bot, chat, command)]
        assert not any("塔吊" in a for a in answers), (actor, answers)
        outcomes.append(A if any("基坑" in a for a in answers) else N)
    return outcomes


async def press_someone_elses_button(bot: BotUnderTest) -> list[str]:
    """Every hazard escalates at 09:30 and DMs level 2; each actor presses 我去现场 on the DM
    that went to 监理张工 about its hazard."""
    bot.api.start_bot(SUPERVISOR_A)
    bot.api.start_bot(SUPERVISOR_B)
    await report_one_each(bot)
    await bot.advance(timedelta(minutes=31))
    hazards = await bot.hazards()
    dms = [m for m in bot.api.sent(SUPERVISOR_A) if "reply_markup" in m]
    texts = Texts("zh", "Asia/Shanghai")
    for actor, hazard in zip(ACTORS, hazards, strict=True):
        data = f"go:{hazard.id}"
        message = next(m for m in dms if data in buttons(m))
        bot.api.press_button(actor.user_id, SUPERVISOR_A, message["message_id"], data)
    await bot.settle()
    going = {(e.hazard_id, e.actor_id) for e in await bot.events("going")}
    answers = [a.get("text", "") for a in bot.api.callback_answers]
    outcomes = []
    for actor, hazard in zip(ACTORS, hazards, strict=True):
        if (hazard.id, actor.user_id) in going:
            outcomes.append(D)
        elif texts.button_outside(number=hazard.number) in answers:
            assert not any(h == hazard.id for h, _ in going)
            outcomes.append(R)
        else:
            outcomes.append(N)
    return outcomes


ACTIONS: dict[str, Callable[[BotUnderTest], Awaitable[list[str]]]] = {
    "confirm with evidence (hazard at level 1)": evidence_at_level_1,
    "confirm with evidence (hazard at level 2)": evidence_at_level_2,
    "dismiss": dismiss,
    "reload": reload,
    "/chain": chain,
    "/hazard N in another project's group": hazard_elsewhere,
    "press a DM button of someone else's escalation": press_someone_elses_button,
}


def test_the_matrix_names_every_actor_for_every_action() -> None:
    """Each row of the matrix has one outcome per actor, and each row has a probe."""
    assert set(MATRIX) == set(ACTIONS)
    assert all(len(row) == len(ACTORS) for row in MATRIX.values())


@pytest.mark.parametrize("action", list(MATRIX))
async def test_permission_matrix(action: str, config: Config, database: Database) -> None:
    """Every kind of actor gets exactly the outcome the matrix gives it for this action, and
    nothing of one project appears in the other project's group."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.group(OTHER_GROUP, "B区安置房工作群")
        bot.api.user(GROUP_ADMIN, "群管理员", "group_admin")
        bot.api.user(CONFIG_ADMIN, "配置管理员", "config_admin")
        bot.api.user(STRANGER, "陌生人", "stranger")
        bot.api.user(OTHER_BOT, "OtherBot", "other_bot", is_bot=True)
        got = await ACTIONS[action](bot)
        expected = MATRIX[action]
        wrong = [
            f"{actor.name}: expected {want}, got {have}"
            for actor, want, have in zip(ACTORS, expected, got, strict=True)
            if want != have
        ]
        assert not wrong, f"{action}: " + "; ".join(wrong)
        leaked = [
            m.get("text", "") for m in bot.api.sent(OTHER_GROUP) if "塔吊" in m.get("text", "")
        ]
        leaked += [m.get("text", "") for m in bot.api.sent(GROUP) if "基坑" in m.get("text", "")]
        assert not leaked, leaked
