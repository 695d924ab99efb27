"""The group texts rendered without Telegram: both languages, limits, keyboards, paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import PAGE_LINES, paginate
from bot.texts import _T, CATEGORY_NAMES, COMMANDS, MAX_TEXT, Texts, escalation_keyboard
from escalation import lexicon, ngram
from escalation.evidence import Refusal

ZH = Texts("zh", "Asia/Shanghai")
EN = Texts("en", "Asia/Shanghai")


def test_every_text_exists_in_both_languages_with_the_same_fields() -> None:
    """Each text key has zh and en, and both use the same {placeholders}."""
    for key, versions in _T.items():
        assert set(versions) == {"zh", "en"}, key
        fields = [set(re.findall(r"{(\w+)}", versions[lang])) for lang in ("zh", "en")]
        assert fields[0] == fields[1], key


def test_the_ack_reminder_reads_as_the_issue_asks() -> None:
    """The first 收到 gets exactly the agreed sentence, with #N and the minutes left."""
    assert ZH.ack_reminder(number=3, left=timedelta(minutes=24)) == (
        "「收到」不算到场确认:请到现场后回复照片或位置,#3 还剩 24 分钟"
    )


@pytest.mark.parametrize("reason", list(Refusal))
def test_every_refusal_has_a_short_line_in_both_languages(reason: Refusal) -> None:
    """Each refusal reason renders as one short line in zh and en."""
    for texts in (ZH, EN):
        line = texts.refused(reason, 412.4)
        assert "\n" not in line
        assert len(line) < 120
    assert "412 米" in ZH.refused(Refusal.OUTSIDE_SITE, 412.4)


def test_long_name_lists_are_cut_with_a_count() -> None:
    """Forty names become thirty and "等 10 人"."""
    names = [f"工人{i}" for i in range(40)]
    text = ZH.people(names)
    assert text.endswith("等 10 人")
    assert "工人29" in text
    assert "工人30" not in text


def test_a_role_every_name_already_carries_is_said_once() -> None:
    """Group nicknames often carry the role (监理张工): the card and notice don't stutter."""
    at = datetime(2026, 5, 6, 1, 40, tzinfo=UTC)
    card = ZH.card(
        number=1,
        text="塔吊配重松动",
        category=None,
        critical=False,
        role="监理",
        people=["监理张工", "监理李工"],
        deadline=at,
    )
    assert "请 监理张工、监理李工 在 09:40 前到现场" in card
    notice = ZH.group_escalated(
        number=1, level=2, role="监理", people=["监理张工"], unreachable=[], start_link="t.me/x"
    )
    assert notice == "🔺 #1 已超时,升级到第2级:监理张工"
    # The sweep renders a level's notice once, around the #N: the same text in both languages.
    for texts in (ZH, EN):
        level = {"level": 3, "role": "总工", "people": ["赵工"], "unreachable": ["赵工"]}
        before, after = texts.group_escalated_around_number(start_link="t.me/x", **level)
        whole = texts.group_escalated(number=12, start_link="t.me/x", **level)
        assert f"{before}12{after}" == whole
        assert "#12" in whole
        assert "t.me/x" in whole
    # Anyone whose name does not carry it keeps the role in front of the whole list.
    assert ZH.called("监理", ["监理张工", "李工"]) == "监理 监理张工、李工"
    assert EN.called("Supervisor", ["@zhang"]) == "Supervisor @zhang"
    assert ZH.called("监理", []) == "监理 无"


def test_every_category_the_classifier_can_name_reads_in_both_languages() -> None:
    """The card names the hazard's GB 6441 type: in Chinese as classified, in English translated;
    a category nobody translated (a project's own) shows as it is."""
    named = {*lexicon.shipped().priority, *ngram.shipped_set().category_labels}
    assert named <= set(CATEGORY_NAMES)
    at = datetime(2026, 5, 6, 1, 40, tzinfo=UTC)
    card = {"text": "塔吊配重松动", "critical": False, "role": "Safety", "people": ["Wang"]}
    assert "(lifting and cranes)" in EN.card(number=1, category="起重伤害", deadline=at, **card)
    assert "(起重伤害)" in ZH.card(number=1, category="起重伤害", deadline=at, **card)
    assert "(脚手架)" in EN.card(number=1, category="脚手架", deadline=at, **card)


def test_time_left_rounds_up_and_is_overdue_only_once_the_deadline_passed() -> None:
    """A countdown: 59 s left is 1 minute, not 已超时; 27:59 is 28; none left is overdue."""
    assert ZH.left(timedelta(seconds=59)) == "1 分钟"
    assert ZH.left(timedelta(minutes=27, seconds=59)) == "28 分钟"
    assert ZH.left(timedelta(minutes=24)) == "24 分钟"
    assert ZH.left(timedelta(0)) == "已超时"
    assert EN.left(timedelta(minutes=-5)) == "overdue"


def test_no_rendered_text_outgrows_the_limit() -> None:
    """Even a 10,000-character title or reason is clipped below Telegram's 4096."""
    long = "长" * 10_000
    assert len(ZH.ids(chat=-1, user=1, title=long)) <= MAX_TEXT
    assert len(ZH.dismissed(number=1, who=long, reason=long)) <= MAX_TEXT
    assert len(EN.unconfigured(chat=-1, title=long)) <= MAX_TEXT


def test_titles_are_made_safe_for_the_toml_snippet() -> None:
    """A group title with quotes cannot break the TOML lines the bot suggests."""
    text = EN.unconfigured(chat=-5, title='Site "A" \\ east')
    assert "name = \"Site 'A'  east\"" in text


def test_dm_keyboard_has_the_three_actions_with_small_data() -> None:
    """我去现场 / 已安排人员 / 叫停施工, each with callback data within Telegram's 64 bytes."""
    keyboard = escalation_keyboard("zh", 123456789)
    buttons = [b for row in keyboard["inline_keyboard"] for b in row]
    assert [b["text"] for b in buttons] == ["我去现场", "已安排人员", "叫停施工"]
    assert [b["callback_data"] for b in buttons] == [
        "go:123456789",
        "sent:123456789",
        "stop:123456789",
    ]
    # A row naming a language the bot no longer has gets the default's buttons, not an error.
    assert escalation_keyboard("fr", 123456789) == keyboard


def test_page_keyboard_offers_only_existing_neighbours() -> None:
    """Page 1 of 3 has only ›, page 2 both, page 3 only ‹; a single page has no buttons."""

    def data(page: int) -> list[str]:
        keyboard = ZH.page_keyboard(prefix="pg:hz:", page=page, pages=3)
        assert keyboard is not None
        return [b["callback_data"] for b in keyboard["inline_keyboard"][0]]

    assert data(1) == ["pg:hz::2"]
    assert data(2) == ["pg:hz::1", "pg:hz::3"]
    assert data(3) == ["pg:hz::2"]
    assert ZH.page_keyboard(prefix="pg:hz:", page=1, pages=1) is None


def test_paginate_respects_lines_and_characters() -> None:
    """Pages hold at most PAGE_LINES lines and stay far below 4096, each under the head."""
    pages = paginate("head", [f"line {i}" for i in range(40)])
    assert len(pages) == 3
    assert all(p.startswith("head\n") for p in pages)
    assert pages[0].count("\n") == PAGE_LINES
    wide = paginate("head", ["字" * 400] * 30)
    assert all(len(p) < 4096 for p in wide)


def test_timeline_lines_survive_unknown_kinds_and_odd_details() -> None:
    """An event kind or detail the renderer does not know still gives one line, never an error."""
    at = datetime(2024, 5, 6, 1, 2, tzinfo=UTC)
    assert ZH.event_line(at=at, kind="mystery", actor="老王", detail={}) == "09:02 老王 mystery"
    line = ZH.event_line(at=at, kind="escalated", actor=None, detail={})
    assert line == "09:02 升级到第?级"


def test_command_menus_are_valid_for_telegram() -> None:
    """Command names are lowercase and short, descriptions 1-256 characters, in both languages."""
    for scope in COMMANDS.values():
        assert [c for c, _ in scope["zh"]] == [c for c, _ in scope["en"]]
        for entries in scope.values():
            for command, description in entries:
                assert re.fullmatch(r"[a-z0-9_]{1,32}", command)
                assert 1 <= len(description) <= 256
