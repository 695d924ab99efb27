"""Fuzzing the running bot: 10,000 generated updates, after which it must still answer a hazard.

Hypothesis draws batches of updates (every message type, random Unicode, 4,096-character texts,
missing optional fields, unknown chats and users, other bots and channels, edits of messages the
bot never saw, forged button data, commands with bad arguments). Each batch goes through the
local Bot API and the real polling loop; after each, nothing may have crashed, polling must run,
and no row may exist that those updates could not justify. Hypothesis runs in a worker thread and
hands each batch to the bot's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from telegram import Update

from bot.config import Config
from bot.sandbox import LocalBotApi
from storage.models import EvidenceRow, HazardRow, OutboxRow, Person, Project
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

Json = dict[str, Any]

BATCH = 250
EXAMPLES = 40  # 40 batches x 250 = 10,000 updates per database
ADMIN = 111111111
CHAIN = (SAFETY, SUPERVISOR_A, SUPERVISOR_B, CHIEF)
PEOPLE = (REPORTER, OUTSIDER, ADMIN, *CHAIN)
BOTS = (600000001, 600000002)  # other bots in the group
CHANNEL = -1007000000001
BOT_ID = 900000001  # the sandbox's default bot id
ANONYMOUS_ADMIN = 1087968824
# Telegram's refusals of a request the bot should never have built; other 400s (a message
# that is gone, a chat the bot left) are the world changing under it, and are data.
REFUSED = (
    "too long",
    "TOO_LONG",
    "TOO_MUCH",
    "INVALID",
    "can't parse",
    "is empty",
    "is not specified",
    "to be replied not found",
    "wrong file identifier",
    "invalid file_id",
)

# ---- what can happen, as data ----------------------------------------------------------------

# Short draws keep each batch of 250 inside Hypothesis's data budget; long texts are built by
# repeating a drawn unit up to the limit, so they cost a few choices, not thousands.
unicode_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _long(limit: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda head, unit, n: (head + unit * limit)[:n],
        st.sampled_from(["", "塔吊配重块松动了", "收到", "/hazard 1 ", "#1 "]),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6),
        st.integers(limit - 200, limit),
    )


long_text = _long(4096)
hazardish = st.builds(
    lambda phrase, tail: phrase + tail,
    st.sampled_from(
        [
            "塔吊配重块松动了",
            "3号楼脚手架连墙件被拆了,外架在晃",
            "基坑边坡出现裂缝,随时可能塌",
            "配电箱门开着,电线泡在水里",
            "The crane counterweight is loose",
        ]
    ),
    st.text(max_size=40),
)
acks = st.sampled_from(["收到", "好的", "👍", "收到!", "马上处理", "ok", "收到,请高度重视"])
numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.integers(10**6, 10**30).map(str),
    st.sampled_from(["", "abc", "1.5", "#1", "１", "²", "٣", "1e9", "0x10", "-0", "NaN", " "]),
)
commands = st.builds(
    lambda name, suffix, args: f"/{name}{suffix} {args}".rstrip(),
    st.sampled_from(
        ["hazard", "hazards", "chain", "dismiss", "id", "help", "start", "mine", "reload", "x"]
    ),
    st.sampled_from(["", "@sitewalk_bot", "@other_bot", "@"]),
    st.one_of(
        numbers,
        st.builds(lambda n, r: f"{n} {r}", numbers, unicode_text),
        unicode_text,
        st.sampled_from(["p1", "p-1", "p99999999999999999999999", "p1001234567890", "garbage"]),
    ),
)
any_text = st.one_of(unicode_text.filter(bool), long_text, hazardish, acks, commands)
caption = st.one_of(st.none(), unicode_text, _long(1024), hazardish, st.just("#1 现场照片"))


@dataclass(frozen=True)
class Who:
    kind: str  # person | stranger | bot | anonymous | channel | nobody
    user_id: int = 0


who = st.one_of(
    st.sampled_from(PEOPLE).map(lambda u: Who("person", u)),
    st.integers(1, 2**52 - 1).map(lambda u: Who("stranger", u)),
    st.sampled_from(BOTS).map(lambda u: Who("bot", u)),
    st.sampled_from([Who("anonymous"), Who("channel"), Who("nobody")]),
)
group_chat = st.one_of(
    st.just(GROUP),
    st.just(GROUP),
    st.integers(-1009999999999, -1000000000001),
    st.integers(-999999999, -1),
)


def _file(prefix: str, n: int) -> Json:
    return {"file_id": f"{prefix}{n}", "file_unique_id": f"U{prefix}{n}"}


media_content = st.one_of(
    st.builds(
        lambda n, w, animated: {
            "sticker": {
                **_file("stk", n),
                "type": "regular",
                "width": w,
                "height": w,
                "is_animated": animated,
                "is_video": False,
            }
        },
        st.integers(0, 9),
        st.integers(1, 512),
        st.booleans(),
    ),
    st.builds(lambda n, c: {"document": _file("doc", n), **c}, st.integers(0, 9), st.just({})),
    st.builds(
        lambda n, d: {"voice": {**_file("voc", n), "duration": d}},
        st.integers(0, 9),
        st.integers(0, 3600),
    ),
    st.builds(
        lambda n: {"video": {**_file("vid", n), "width": 640, "height": 480, "duration": 3}},
        st.integers(0, 9),
    ),
    st.builds(
        lambda phone, name: {"contact": {"phone_number": phone, "first_name": name or "x"}},
        st.text(max_size=20),
        st.text(max_size=20),
    ),
    st.builds(lambda v: {"dice": {"emoji": "🎲", "value": v}}, st.integers(1, 6)),
    st.builds(
        lambda q, opts: {
            "poll": {
                "id": "p1",
                "question": q or "?",
                "options": [
                    {"persistent_id": str(i), "text": o or "-", "voter_count": 0}
                    for i, o in enumerate(opts)
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        st.text(max_size=300),
        st.lists(st.text(max_size=100), min_size=2, max_size=4),
    ),
    st.builds(lambda title: {"new_chat_title": title or "t"}, st.text(max_size=128)),
    st.builds(
        lambda uid: {"new_chat_members": [{"id": uid, "is_bot": False, "first_name": "N"}]},
        st.integers(1, 2**40),
    ),
    st.builds(
        lambda uid: {"left_chat_member": {"id": uid, "is_bot": False, "first_name": "L"}},
        st.integers(1, 2**40),
    ),
    st.just({"group_chat_created": True}),
)


@dataclass(frozen=True)
class Post:
    """A new message with one kind of content (text, photo, location, venue, other), maybe a
    reply to an earlier message of the chat, maybe forwarded."""

    chat: int
    sender: Who
    content: tuple[Any, ...]  # ("text", str) | ("photo", caption, uid) | ("location", ...) ...
    reply_pick: int | None = None
    forwarded: bool = False


@dataclass(frozen=True)
class Edit:
    chat: int
    user_id: int
    text: str
    pick: int | None  # an earlier message to edit, or None: one the bot never saw


@dataclass(frozen=True)
class Press:
    user_id: int
    data: str
    where: str  # group | private | inline | gone
    pick: int = 0


@dataclass(frozen=True)
class Member:
    chat: int
    user_id: int
    old: str
    new: str
    about_bot: bool


@dataclass(frozen=True)
class React:
    chat: int
    user_id: int
    pick: int | None
    emoji: str | None


@dataclass(frozen=True)
class Other:
    kind: str
    text: str
    user_id: int


Action = Post | Edit | Press | Member | React | Other

latitude, longitude = st.floats(-90, 90), st.floats(-180, 180)
contents = st.one_of(
    st.tuples(st.just("text"), any_text),
    st.tuples(st.just("text"), any_text),
    st.tuples(st.just("photo"), caption, st.sampled_from(["", "AgADsame1", "AgADsame2"])),
    st.tuples(
        st.just("location"),
        latitude,
        longitude,
        st.one_of(st.none(), st.floats(0, 1500)),
        st.one_of(st.none(), st.integers(60, 86400)),
    ),
    st.tuples(st.just("venue"), latitude, longitude, unicode_text),
    st.tuples(st.just("other"), media_content),
)
posts = st.builds(
    Post,
    chat=group_chat,
    sender=who,
    content=contents,
    reply_pick=st.one_of(st.none(), st.integers(0, 10**6)),
    forwarded=st.booleans(),
)
private_posts = st.builds(
    lambda uid, content: Post(uid, Who("person", uid), content),
    st.one_of(st.sampled_from(PEOPLE), st.integers(1, 2**52 - 1)),
    st.one_of(
        st.tuples(st.just("text"), commands),
        st.tuples(st.just("text"), any_text),
        st.tuples(st.just("photo"), caption, st.just("")),
        st.tuples(st.just("location"), st.just(33.5975), st.just(119.0153), st.none(), st.none()),
    ),
)
edits = st.builds(
    Edit,
    chat=group_chat,
    user_id=st.one_of(st.sampled_from(PEOPLE), st.integers(1, 2**40)),
    text=any_text,
    pick=st.one_of(st.none(), st.integers(0, 10**6)),
)
callback_data = st.one_of(
    st.text(min_size=1, max_size=64),
    st.builds(
        lambda action, rest: f"{action}:{rest}",
        st.sampled_from(["go", "sent", "stop", "ev", "pg", "x", ""]),
        st.one_of(numbers, st.text(max_size=30), st.sampled_from(["hz::2", "tl:1:999", "ch::0"])),
    ),
).map(lambda d: d.encode()[:64].decode(errors="ignore") or "x")
presses = st.builds(
    Press,
    user_id=st.one_of(st.sampled_from(PEOPLE), st.integers(1, 2**52 - 1)),
    data=callback_data,
    where=st.sampled_from(["group", "private", "inline", "gone"]),
    pick=st.integers(0, 10**6),
)
statuses = st.sampled_from(["member", "administrator", "left", "kicked", "creator"])
members = st.builds(
    Member,
    chat=st.one_of(group_chat, st.sampled_from(PEOPLE)),
    user_id=st.one_of(st.sampled_from(PEOPLE), st.integers(1, 2**40)),
    old=statuses,
    new=statuses,
    about_bot=st.booleans(),
)
reacts = st.builds(
    React,
    chat=group_chat,
    user_id=st.one_of(st.sampled_from(PEOPLE), st.integers(1, 2**40)),
    pick=st.one_of(st.none(), st.integers(0, 10**6)),
    emoji=st.sampled_from([None, "👍", "👀", "🔥"]),
)
others = st.builds(
    Other,
    kind=st.sampled_from(
        ["channel_post", "edited_channel_post", "inline_query", "poll_answer", "chat_join_request"]
    ),
    text=unicode_text,
    user_id=st.integers(1, 2**52 - 1),
)
actions: st.SearchStrategy[Action] = st.one_of(
    posts, posts, posts, posts, private_posts, edits, presses, members, reacts, others
)


# ---- turning actions into updates --------------------------------------------------------------


def _pick(ids: list[int], pick: int | None) -> int | None:
    return None if pick is None or not ids else ids[pick % len(ids)]


class Feeder:
    """Posts actions through the sandbox's user side, checking PTB can parse each update."""

    def __init__(self, api: LocalBotApi) -> None:
        self.api = api
        self.posted = 0
        for bot_id in BOTS:
            api.user(bot_id, "OtherBot", f"other{bot_id}_bot", is_bot=True)

    def messages(self, chat: int, *, users_only: bool = False) -> list[int]:
        state = self.api.world.chats.get(chat)
        if state is None:
            return []
        if not users_only:
            return [m for m in state.messages if m not in state.deleted]
        return [
            m
            for m, msg in state.messages.items()
            if m not in state.deleted
            and "text" in msg
            and msg.get("from", {}).get("id") not in (BOT_ID, None)
        ]

    def feed(self, action: Action) -> None:
        before = len(self.api.world.updates)
        self._feed(action)
        self.posted += 1
        # A batch PTB cannot parse is lost (or, with confirm-after-handling, retried forever):
        # each generated update must be one Telegram could send, or the fuzzing tests nothing.
        for update in self.api.world.updates.take(10**9)[before:]:
            try:
                Update.de_json(update, None)
            except Exception as exc:
                msg = f"the generator made an update PTB cannot parse ({exc}): {update}"
                raise AssertionError(msg) from None

    def _feed(self, action: Action) -> None:
        api = self.api
        if isinstance(action, Post):
            self._post(action)
        elif isinstance(action, Edit):
            target = _pick(self.messages(action.chat, users_only=True), action.pick)
            if target is None:
                state = api.world.chat(action.chat)
                api.edit_unseen(
                    action.chat, action.user_id, state.next_message_id + 50, action.text
                )
            else:
                api.edit_text(action.chat, target, action.text)
        elif isinstance(action, Press):
            self._press(action)
        elif isinstance(action, Member):
            self._member(action)
        elif isinstance(action, React):
            target = _pick(self.messages(action.chat), action.pick)
            if target is None:
                emoji = [{"type": "emoji", "emoji": action.emoji or "👍"}]
                api.post_update(
                    "message_reaction",
                    {
                        "chat": api.world.chat(action.chat).chat,
                        "message_id": 10**6,
                        "user": api.world.user(action.user_id).user,
                        "date": 1714957200,
                        "old_reaction": [],
                        "new_reaction": emoji,
                    },
                )
            else:
                api.react(action.chat, action.user_id, target, action.emoji)
        else:
            self._other(action)

    def _post(self, action: Post) -> None:
        api = self.api
        chat, sender = action.chat, action.sender
        private = chat > 0
        reply_to = _pick(self.messages(chat), action.reply_pick)
        kind, *args = action.content
        content: Json
        if kind == "photo":
            text, uid = args
            content = {"photo": api.world.new_photo(uid or None)}
            if text:
                captioned = api.world.text_content(text)
                content["caption"] = captioned["text"]
                if "entities" in captioned:
                    content["caption_entities"] = captioned["entities"]
        elif kind == "location":
            lat, lon, accuracy, live = args
            content = {
                "location": api.world.fields(
                    latitude=lat, longitude=lon, horizontal_accuracy=accuracy, live_period=live
                )
            }
        elif kind == "venue":
            lat, lon, title = args
            location = {"latitude": lat, "longitude": lon}
            venue = {"location": location, "title": title or "v", "address": "a"}
            content = {"location": location, "venue": venue}
        elif kind == "other":
            content = dict(args[0])
        else:
            content = api.world.text_content(args[0])
        if action.forwarded:
            content["forward_origin"] = {
                "type": "user",
                "date": 1714950000,
                "sender_user": api.world.user(OUTSIDER).user,
            }
        if private:
            api.world.user(chat).started = True
            api.post_content(chat, chat, content, reply_to=reply_to)
        elif sender.kind == "anonymous":
            api.post_content(chat, None, content, reply_to=reply_to, sender_chat_id=chat)
        elif sender.kind == "channel":
            api.post_content(chat, None, content, reply_to=reply_to, sender_chat_id=CHANNEL)
        elif sender.kind == "nobody":
            api.post_content(chat, None, content, reply_to=reply_to)
        else:
            api.post_content(chat, sender.user_id, content, reply_to=reply_to)

    def _press(self, action: Press) -> None:
        api = self.api
        if action.where == "inline":
            api.forge_callback(action.user_id, action.data)
        elif action.where == "gone":
            api.forge_callback(action.user_id, action.data, chat_id=GROUP, message_id=10**6)
        else:
            chat = GROUP if action.where == "group" else action.user_id
            state = api.world.chat(chat)
            target = _pick(list(state.sent_by_bot), action.pick)
            api.forge_callback(action.user_id, action.data, chat_id=chat, message_id=target)

    def _member(self, action: Member) -> None:
        world = self.api.world
        state = world.chat(action.chat)
        subject = world.bot_user if action.about_bot else world.user(action.user_id).user
        if state.chat["type"] == "private" and not action.about_bot:
            return
        payload = {
            "chat": state.chat,
            "from": world.user(action.user_id).user,
            "date": 1714957200,
            "old_chat_member": world.chat_member(subject, action.old),
            "new_chat_member": world.chat_member(subject, action.new),
        }
        self.api.post_update("my_chat_member" if action.about_bot else "chat_member", payload)

    def _other(self, action: Other) -> None:
        world = self.api.world
        user = world.user(action.user_id).user
        channel = {"id": CHANNEL, "type": "channel", "title": "频道"}
        if action.kind in ("channel_post", "edited_channel_post"):
            post: Json = {"message_id": 7, "date": 1714957200, "chat": channel}
            post.update(world.text_content(action.text or "x"))
            if action.kind == "edited_channel_post":
                post["edit_date"] = 1714957300
            self.api.post_update(action.kind, post)
        elif action.kind == "inline_query":
            query = {"id": str(action.user_id), "from": user, "query": action.text, "offset": ""}
            self.api.post_update("inline_query", query)
        elif action.kind == "poll_answer":
            self.api.post_update(
                "poll_answer",
                {"poll_id": "p1", "option_ids": [0], "option_persistent_ids": ["0"], "user": user},
            )
        else:
            request = {
                "chat": world.chat(GROUP).chat,
                "from": user,
                "user_chat_id": action.user_id,
                "date": 1714957200,
            }
            self.api.post_update("chat_join_request", request)


# ---- what must hold after every batch ----------------------------------------------------------


async def settle(bot: BotUnderTest) -> None:
    await bot.api.wait_for(lambda: bot.api.pending_update_count == 0, timeout=120)
    await bot.app.update_queue.join()
    await bot.outbox_quiet()


async def check_invariants(bot: BotUnderTest, config: Config) -> None:
    """Polling runs, nothing crashed, and every row is one those updates could justify."""
    assert bot.app.updater is not None
    assert bot.app.updater.running, "polling stopped"
    configured = {p.chat_id for p in config.projects}
    chain = {m.id for p in config.projects for lv in p.chain for m in lv.members}
    reachable = chain | set(config.admins)
    async with bot.runtime.uow() as uow:
        session = uow.hazards._s
        projects = set((await session.execute(select(Project.chat_id))).scalars())
        hazards = (await session.execute(select(HazardRow))).scalars().all()
        outbox = (await session.execute(select(OutboxRow))).scalars().all()
        evidence = (await session.execute(select(EvidenceRow))).scalars().all()
        people = set((await session.execute(select(Person.user_id))).scalars())
    assert projects <= configured, f"projects for unknown chats: {projects - configured}"
    stray = [(h.chat_id, h.text[:40]) for h in hazards if h.chat_id not in configured]
    assert not stray, f"hazards in unknown chats: {stray}"
    bots = [h.number for h in hazards if h.reporter_id in BOTS]
    assert not bots, f"hazards reported by other bots: {bots}"
    strangers = [
        (o.purpose, o.chat_id) for o in outbox if o.chat_id > 0 and o.chat_id not in reachable
    ]
    assert not strangers, f"outbox rows to users outside the chain: {strangers}"
    foreign = [(e.chat_id, e.user_id) for e in evidence if e.chat_id not in configured | chain]
    assert not foreign, f"evidence from unknown chats: {foreign}"
    # Everyone who appeared in any update is a user the sandbox has heard of.
    unknown = people - set(bot.api.world.users) - reachable - {ANONYMOUS_ADMIN}
    assert not unknown, f"people rows for users who never wrote: {sorted(unknown)[:5]}"


def bad_calls(api: LocalBotApi) -> list[str]:
    """Bot API calls that show a bug: sandbox failures, and requests Telegram would refuse."""
    return [
        f"{call.method} {call.status} {call.description}: {str(call.params)[:200]}"
        for call in api.calls
        if call.status >= 500
        or (call.status == 400 and any(word in call.description for word in REFUSED))
    ]


# ---- the test ---------------------------------------------------------------------------------


async def test_ten_thousand_generated_updates_break_nothing(
    config: Config, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """10,000 fuzzed updates: no handler error, polling runs, no stray rows, and a normal hazard
    report afterwards still gets its #N card."""
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    async with running_bot(config, database, start=T0) as bot:
        feeder = Feeder(bot.api)

        async def one_batch(batch: list[Action]) -> None:
            for action in batch:
                feeder.feed(action)
            await settle(bot)
            errors = [
                f"{r.name}: {r.getMessage()} {r.exc_text or ''}"[:2000]
                for r in caplog.records
                if r.levelno >= logging.ERROR
            ]
            assert not errors, "\n".join(errors[:3])
            assert not bad_calls(bot.api), bad_calls(bot.api)[:3]
            await check_invariants(bot, config)

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            # No shrinking: each step would replay a batch through the bot; the failing batch
            # is printed whole, and the assertion names the first bad row, call or log line.
            phases=(Phase.explicit, Phase.generate),
        )
        @given(st.lists(actions, min_size=BATCH, max_size=BATCH))
        def fuzz(batch: list[Action]) -> None:
            asyncio.run_coroutine_threadsafe(one_batch(batch), loop).result(timeout=300)

        await asyncio.to_thread(fuzz)
        assert feeder.posted >= 10_000

        cards_before = len(bot.api.sent(GROUP))
        report = bot.api.post_text(GROUP, REPORTER, "塔吊配重块松动了,螺栓都看得见缝")
        await settle(bot)
        cards = (await bot.api.wait_sent(GROUP, cards_before + 1))[cards_before:]
        card = next(
            c
            for c in cards
            if c.get("reply_to_message", {}).get("message_id") == report["message_id"]
        )
        assert "#" in card["text"]
