"""The one-call filter for group text selects exactly what PTB's composed filters select."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import filters

from bot.handlers import GroupText

# What on_group_text was registered with before GroupText replaced it.
COMPOSED = filters.ChatType.GROUPS & ~filters.UpdateType.EDITED & filters.TEXT & ~filters.COMMAND
# The chats each kind of update comes from (a channel post is never a group's).
CHATS_OF = {
    "message": ("group", "supergroup", "private"),
    "edited_message": ("group", "supergroup", "private"),
    "channel_post": ("channel",),
    "edited_channel_post": ("channel",),
    "business_message": ("private",),
}


def update(
    kind: str = "message",
    chat: str = "group",
    text: str | None = "塔吊配重块松了",
    entities: list[tuple[str, int, int]] | None = None,
    caption: str | None = None,
) -> Update:
    message: dict[str, Any] = {
        "message_id": 7,
        "date": 1714957200,
        "chat": {"id": -100 if chat != "private" else 5, "type": chat, "title": "site"},
        "from": {"id": 5, "is_bot": False, "first_name": "Wang"},
    }
    if text is not None:
        message["text"] = text
    if entities:
        message["entities"] = [{"type": t, "offset": o, "length": n} for t, o, n in entities]
    if caption is not None:
        message["caption"] = caption
        message["photo"] = [
            {"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1},
        ]
    if kind == "business_message":
        message["business_connection_id"] = "b"
    return Update.de_json({"update_id": 1, kind: message}, None)


def selects(u: Update) -> tuple[bool, bool]:
    return bool(GroupText().check_update(u)), bool(COMPOSED.check_update(u))


def test_a_report_in_a_group_or_supergroup_is_group_text() -> None:
    assert selects(update()) == (True, True)
    assert selects(update(chat="supergroup")) == (True, True)


def test_commands_edits_and_other_chats_are_not() -> None:
    cases = [
        update(text="/hazard 3", entities=[("bot_command", 0, 7)]),
        update(text="/chain@sitewalk_bot", entities=[("bot_command", 0, 19)]),
        update(kind="edited_message"),
        update(chat="private"),
        update(kind="channel_post", chat="channel"),
        update(text=None, caption="塔吊配重块松了"),
    ]
    for u in cases:
        assert selects(u) == (False, False), u.to_dict()


def test_a_command_later_in_the_text_or_a_mention_first_is_still_text() -> None:
    assert selects(update(text="看 /hazard 3", entities=[("bot_command", 2, 7)])) == (True, True)
    assert selects(update(text="@wang 收到", entities=[("mention", 0, 5)])) == (True, True)


entities = st.lists(
    st.tuples(st.sampled_from(["bot_command", "mention", "bold"]), st.integers(0, 3), st.just(2)),
    max_size=2,
)


@given(
    where=st.sampled_from(sorted(CHATS_OF)).flatmap(
        lambda kind: st.tuples(st.just(kind), st.sampled_from(CHATS_OF[kind]))
    ),
    text=st.one_of(st.none(), st.just(""), st.just("/dismiss 1"), st.text(max_size=8)),
    ents=entities,
    caption=st.one_of(st.none(), st.text(max_size=4)),
)
def test_group_text_agrees_with_the_composed_filters(
    where: tuple[str, str],
    text: str | None,
    ents: list[tuple[str, int, int]],
    caption: str | None,
) -> None:
    got, expected = selects(update(*where, text, ents, caption))
    assert got == expected
