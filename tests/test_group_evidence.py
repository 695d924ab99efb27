"""Evidence in the group and by DM: what counts, how it finds its hazard, and every refusal."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Config
from escalation.hazard import HazardState
from tests.botkit import BotUnderTest, Json, running_bot
from tests.conftest import (
    CHIEF,
    GROUP,
    OUTSIDER,
    REPORTER,
    SAFETY,
    SUPERVISOR_A,
    T0,
    Database,
)

REPORT = "3号楼塔吊配重块松动了"
OTHER_REPORT = "5号楼外架连墙件被拆了好几根"
SITE = (33.5975, 119.0153)  # radius 300 m in the test config
METRES_PER_DEGREE = 111_195.0


def north(metres: float) -> tuple[float, float]:
    """A point `metres` north of the site's centre."""
    return SITE[0] + metres / METRES_PER_DEGREE, SITE[1]


async def photo(bot: BotUnderTest, user: int, **kwargs: object) -> Json:
    msg = bot.api.post_photo(GROUP, user, **kwargs)  # type: ignore[arg-type]
    await bot.settle()
    return msg


async def states(bot: BotUnderTest) -> list[HazardState]:
    return [h.state for h in await bot.hazards()]


async def refusals(bot: BotUnderTest) -> list[str]:
    return [e.detail["reason"] for e in await bot.events("evidence_refused")]


async def test_photo_replying_to_the_card_stops_the_clock(
    config: Config, database: Database
) -> None:
    """A photo from level 1 that replies to the bot's card (not the report) counts."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        card = bot.api.sent(GROUP)[0]
        await photo(bot, SAFETY, reply_to=card["message_id"])
        assert await states(bot) == [HazardState.ON_SITE]
        assert "✅ #1" in bot.group_texts()[-1]


async def test_photo_without_reply_counts_when_one_hazard_is_open(
    config: Config, database: Database
) -> None:
    """With exactly one open hazard, a plain photo from the chain is its evidence."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await photo(bot, SAFETY)
        assert await states(bot) == [HazardState.ON_SITE]


async def test_hash_number_in_caption_picks_the_hazard(config: Config, database: Database) -> None:
    """`#2` in a caption sends the photo to hazard #2 even with two open."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await bot.say(REPORTER, OTHER_REPORT)
        await photo(bot, SAFETY, caption="#2 已到现场")
        assert await states(bot) == [HazardState.OPEN, HazardState.ON_SITE]


async def test_unknown_hash_number_gets_one_line_and_changes_nothing(
    config: Config, database: Database
) -> None:
    """A caption naming a hazard that does not exist is answered in one line, nothing recorded."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await photo(bot, SAFETY, caption="#9")
        assert "#9" in bot.group_texts()[-1]
        assert await states(bot) == [HazardState.OPEN]
        assert await bot.events("on_site") == []


async def test_with_several_open_the_sender_is_asked_and_only_the_sender_may_choose(
    config: Config, database: Database
) -> None:
    """Two open hazards: the bot asks with buttons; another user's press is refused; the
    sender's press files the photo as evidence of the chosen hazard."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await bot.say(REPORTER, OTHER_REPORT)
        sent = await photo(bot, SAFETY)
        question = bot.api.sent(GROUP)[-1]
        assert question["reply_to_message"]["message_id"] == sent["message_id"]
        buttons = [
            b["callback_data"] for row in question["reply_markup"]["inline_keyboard"] for b in row
        ]
        assert buttons == ["ev:1", "ev:2"]
        bot.api.press_button(OUTSIDER, GROUP, question["message_id"], "ev:2")
        await bot.settle()
        assert "只有发送者本人" in bot.api.callback_answers[-1]["text"]
        assert await states(bot) == [HazardState.OPEN, HazardState.OPEN]
        bot.api.press_button(SAFETY, GROUP, question["message_id"], "ev:2")
        await bot.settle()
        assert await states(bot) == [HazardState.OPEN, HazardState.ON_SITE]
        assert "#2" in bot.api.callback_answers[-1]["text"]
        assert "reply_markup" not in bot.api.message(GROUP, question["message_id"])  # type: ignore[operator]


async def test_outsider_photo_without_target_is_ordinary_chat(
    config: Config, database: Database
) -> None:
    """A photo from outside the chain, replying to nothing, is neither judged nor answered."""
    async with running_bot(config, database, start=T0) as bot:
        await bot.say(REPORTER, REPORT)
        await photo(bot, OUTSIDER)
        assert len(bot.group_texts()) == 1
        assert await bot.events("evidence_refused") == []


async def test_forwarded_photo_is_refused_with_its_reason(
    config: Config, database: Database
) -> None:
    """A forwarded photo is recorded as refused (forwarded) and answered in one line."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await photo(bot, SAFETY, reply_to=report["message_id"], forwarded_from=OUTSIDER)
        assert await refusals(bot) == ["forwarded"]
        assert "转发" in bot.group_texts()[-1]
        assert await states(bot) == [HazardState.OPEN]


async def test_a_photo_used_as_evidence_before_is_refused(
    config: Config, database: Database
) -> None:
    """The same file_unique_id, already evidence for #1, is refused for #2."""
    async with running_bot(config, database, start=T0) as bot:
        first = await bot.say(REPORTER, REPORT)
        second = await bot.say(REPORTER, OTHER_REPORT)
        await photo(bot, SAFETY, reply_to=first["message_id"], file_unique_id="AQADsame")
        await photo(bot, SAFETY, reply_to=second["message_id"], file_unique_id="AQADsame")
        assert await states(bot) == [HazardState.ON_SITE, HazardState.OPEN]
        assert await refusals(bot) == ["reused_photo"]
        assert "已被用作证据" in bot.group_texts()[-1]


async def test_the_reports_own_photo_cannot_prove_a_visit(
    config: Config, database: Database
) -> None:
    """A photo that reported the hazard, re-sent by a chain member, is refused as re-used."""
    async with running_bot(config, database, start=T0) as bot:
        report = await photo(bot, REPORTER, caption=REPORT, file_unique_id="AQADreport")
        await photo(bot, SAFETY, reply_to=report["message_id"], file_unique_id="AQADreport")
        assert await states(bot) == [HazardState.OPEN]
        assert await refusals(bot) == ["reused_photo"]


async def test_location_outside_the_fence_is_refused_with_the_distance(
    config: Config, database: Database
) -> None:
    """400 m from the centre of a 300 m fence, ±50 m, is outside; the answer gives the distance."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        lat, lon = north(400)
        bot.api.post_location(
            GROUP, SAFETY, lat, lon, reply_to=report["message_id"], horizontal_accuracy=50
        )
        await bot.settle()
        assert await refusals(bot) == ["outside_site"]
        assert "400 米" in bot.group_texts()[-1]
        assert await states(bot) == [HazardState.OPEN]


async def test_location_accuracy_gives_the_benefit_of_the_doubt(
    config: Config, database: Database
) -> None:
    """320 m from the centre with ±30 m accuracy may be inside a 300 m fence, so it counts."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        lat, lon = north(320)
        bot.api.post_location(
            GROUP, SAFETY, lat, lon, reply_to=report["message_id"], horizontal_accuracy=30
        )
        await bot.settle()
        assert await states(bot) == [HazardState.ON_SITE]
        assert "位置" in bot.group_texts()[-1]


async def test_a_venue_picked_on_a_map_is_refused(config: Config, database: Database) -> None:
    """A venue, even at the site's own coordinates, is refused (venue)."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        bot.api.post_venue(
            GROUP, SAFETY, *SITE, "邮政南苑", "清江浦区", reply_to=report["message_id"]
        )
        await bot.settle()
        assert await refusals(bot) == ["venue"]
        assert "地图选点" in bot.group_texts()[-1]


async def test_evidence_from_outside_the_chain_is_kept_but_the_clock_runs(
    config: Config, database: Database
) -> None:
    """An outsider's photo and the chief's (level 3, not yet called) are kept as extra
    information, answered, and the hazard still escalates at 09:30."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        await photo(bot, OUTSIDER, reply_to=report["message_id"])
        await photo(bot, CHIEF, reply_to=report["message_id"])
        assert await refusals(bot) == ["not_in_chain", "not_in_chain"]
        assert "补充信息" in bot.group_texts()[-1]
        async with bot.runtime.uow() as uow:
            [hazard] = await bot.hazards()
            kept = await uow.evidence.for_message(GROUP, report["message_id"] + 2)
        assert kept is not None
        assert kept.hazard_id == hazard.id
        await bot.advance(timedelta(minutes=31))
        assert [h.level for h in await bot.hazards()] == [2]


async def test_live_location_moving_into_the_fence_completes_the_visit(
    config: Config, database: Database
) -> None:
    """A live location that starts 1 km away is refused once; its updates stay silent until one
    lands inside the fence, which moves the hazard on site."""
    async with running_bot(config, database, start=T0) as bot:
        report = await bot.say(REPORTER, REPORT)
        lat, lon = north(1000)
        live = bot.api.post_location(
            GROUP, SAFETY, lat, lon, reply_to=report["message_id"], live_period=900
        )
        await bot.settle()
        assert await refusals(bot) == ["outside_site"]
        before = len(bot.group_texts())
        bot.api.edit_location(GROUP, live["message_id"], *north(600))
        await bot.settle()
        assert len(bot.group_texts()) == before
        bot.api.edit_location(GROUP, live["message_id"], *north(100), horizontal_accuracy=10)
        await bot.settle()
        assert await states(bot) == [HazardState.ON_SITE]
        assert "实时位置" in bot.group_texts()[-1]
        bot.api.edit_location(GROUP, live["message_id"], *north(50))
        await bot.settle()
        assert len(await bot.events("on_site")) == 1


async def test_supervisor_replies_to_the_escalation_dm_with_a_photo(
    config: Config, database: Database
) -> None:
    """A level-2 supervisor's photo replying to the escalation DM stops the clock; the group is
    told and the DM confirmed."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        await bot.advance(timedelta(minutes=31))
        dm = next(m for m in bot.api.sent(SUPERVISOR_A) if "#1" in m.get("text", ""))
        bot.api.post_photo(SUPERVISOR_A, SUPERVISOR_A, reply_to=dm["message_id"])
        await bot.settle()
        assert await states(bot) == [HazardState.ON_SITE]
        assert "私信" in bot.group_texts()[-1]
        assert "#1" in bot.dms(SUPERVISOR_A)[-1]
        [event] = await bot.events("on_site")
        assert event.actor_id == SUPERVISOR_A


async def test_dm_photo_that_replies_to_nothing_gets_a_hint(
    config: Config, database: Database
) -> None:
    """A photo sent to the bot without replying to a hazard DM is not evidence; one hint says how."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        await bot.say(REPORTER, REPORT)
        bot.api.post_photo(SUPERVISOR_A, SUPERVISOR_A)
        await bot.settle()
        assert "回复" in bot.dms(SUPERVISOR_A)[-1]
        assert await states(bot) == [HazardState.OPEN]


async def test_photo_with_a_hazard_caption_is_a_report_with_its_photo(
    config: Config, database: Database
) -> None:
    """A captioned hazard photo becomes #1: the card is that photo, and so is the escalation DM."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.start_bot(SUPERVISOR_A)
        report = await photo(bot, REPORTER, caption=REPORT)
        unique = report["photo"][-1]["file_unique_id"]
        [card] = bot.api.sent(GROUP)
        assert card["photo"][-1]["file_unique_id"] == unique
        assert "#1" in card["caption"]
        assert await states(bot) == [HazardState.OPEN]
        await bot.advance(timedelta(minutes=31))
        dm = bot.api.sent(SUPERVISOR_A)[-1]
        assert dm["photo"][-1]["file_unique_id"] == unique
        assert "#1" in dm["caption"]
        assert dm["reply_markup"]["inline_keyboard"]


async def test_a_strangers_dm_photo_gets_no_answer(config: Config, database: Database) -> None:
    """Someone in no project's chain who sends the bot a photo is not answered at all."""
    async with running_bot(config, database, start=T0) as bot:
        bot.api.post_photo(OUTSIDER, OUTSIDER)
        await bot.settle()
        assert bot.api.sent(OUTSIDER) == []
        assert await bot.outbox() == []
