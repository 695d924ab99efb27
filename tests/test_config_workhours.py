"""Working time in the pure core: calendar arithmetic, and deadlines of normal vs critical hazards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from escalation.chain import ChainLevel, ChainSnapshot, Member
from escalation.hazard import Policy, SiteEvidence, Tick, decide, open_hazard
from escalation.workhours import NoWorkingTime, WorkCalendar
from storage.repositories import policy_from_json, policy_to_json

SH = ZoneInfo("Asia/Shanghai")
# Mon–Fri 08:00–12:00 and 13:00–18:00; 2026-05-01..05 off (劳动节), Saturday 2026-05-09 works (调休).
CAL = WorkCalendar(
    "Asia/Shanghai",
    frozenset(range(5)),
    ((8 * 60, 12 * 60), (13 * 60, 18 * 60)),
    holidays=frozenset(date(2026, 5, d) for d in range(1, 6)),
    workdays=frozenset({date(2026, 5, 9)}),
)
CHAIN = ChainSnapshot(
    (
        ChainLevel("项目安全员", (Member(1001),), timedelta(minutes=30)),
        ChainLevel("监理", (Member(1002),), timedelta(minutes=30)),
        ChainLevel("总工程师", (Member(1004),), timedelta(hours=1)),
    )
)
POLICY = Policy(
    critical_factor=0.5,
    repeat_every=timedelta(minutes=30),
    max_repeats=2,
    rectify_within=timedelta(hours=4),
    calendar=CAL,
)


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH).astimezone(UTC)


def test_span_inside_one_interval_is_plain_addition() -> None:
    """Thirty minutes from Wednesday 09:00 ends at 09:30."""
    assert CAL.add(local(2026, 5, 6, 9), timedelta(minutes=30)) == local(2026, 5, 6, 9, 30)


def test_lunch_break_does_not_count() -> None:
    """Thirty minutes from 11:45 spend 15 before lunch and 15 after: 13:15."""
    assert CAL.add(local(2026, 5, 6, 11, 45), timedelta(minutes=30)) == local(2026, 5, 6, 13, 15)


def test_night_and_weekend_do_not_count() -> None:
    """Thirty minutes from Friday 17:45 end on Monday 08:15."""
    assert CAL.add(local(2026, 5, 15, 17, 45), timedelta(minutes=30)) == local(2026, 5, 18, 8, 15)


def test_a_start_outside_hours_counts_from_the_next_opening() -> None:
    """A span started at 21:00 begins counting at 08:00 the next working day."""
    assert CAL.add(local(2026, 5, 6, 21), timedelta(hours=1)) == local(2026, 5, 7, 9)


def test_public_holidays_are_skipped_and_make_up_days_work() -> None:
    """Labour Day (05-01..05) is skipped; the make-up Saturday 05-09 (调休) is worked."""
    assert CAL.add(local(2026, 4, 30, 17, 30), timedelta(hours=1)) == local(2026, 5, 6, 8, 30)
    assert CAL.add(local(2026, 5, 8, 17, 30), timedelta(hours=1)) == local(2026, 5, 9, 8, 30)
    assert not CAL.is_working(local(2026, 5, 4, 10))
    assert CAL.is_working(local(2026, 5, 9, 10))


def test_a_span_ending_exactly_at_closing_time_ends_there() -> None:
    """One hour from 17:00 ends at 18:00, not the next morning."""
    assert CAL.add(local(2026, 5, 6, 17), timedelta(hours=1)) == local(2026, 5, 6, 18)


def test_a_calendar_without_working_time_is_refused() -> None:
    """No working days, or no hours, is an error rather than a span that never ends."""
    with pytest.raises(NoWorkingTime):
        WorkCalendar("Asia/Shanghai", frozenset(), ((480, 1080),))
    with pytest.raises(NoWorkingTime):
        WorkCalendar("Asia/Shanghai", frozenset({0}), ())
    with pytest.raises(ValueError, match="sorted"):
        WorkCalendar("Asia/Shanghai", frozenset({0}), ((600, 700), (650, 800)))


def test_normal_hazard_after_hours_is_due_next_working_morning() -> None:
    """A normal report on Friday 17:45 gives level 1 until Monday 08:15, level 2 until 08:45."""
    opened = open_hazard(
        number=1, chain=CHAIN, policy=POLICY, critical=False, now=local(2026, 5, 15, 17, 45)
    )
    assert opened.hazard.deadline == local(2026, 5, 18, 8, 15)
    step = decide(opened.hazard, Tick(), local(2026, 5, 18, 8, 15))
    assert step.hazard.level == 2
    assert step.hazard.deadline == local(2026, 5, 18, 8, 45)


def test_nothing_escalates_over_the_weekend_for_a_normal_hazard() -> None:
    """A tick on Saturday leaves a Friday-evening normal hazard at level 1."""
    opened = open_hazard(
        number=1, chain=CHAIN, policy=POLICY, critical=False, now=local(2026, 5, 15, 17, 45)
    )
    assert decide(opened.hazard, Tick(), local(2026, 5, 16, 12)).hazard.level == 1


def test_critical_hazard_ignores_working_hours() -> None:
    """A critical report on Friday 17:45 is due at 18:00 (30m x 0.5) and escalates that night."""
    opened = open_hazard(
        number=1, chain=CHAIN, policy=POLICY, critical=True, now=local(2026, 5, 15, 17, 45)
    )
    assert opened.hazard.deadline == local(2026, 5, 15, 18)
    step = decide(opened.hazard, Tick(), local(2026, 5, 15, 18, 15))
    assert step.hazard.level == 3
    assert step.hazard.deadline == local(2026, 5, 15, 18, 45)


def test_repeats_and_rectify_window_count_working_time_too() -> None:
    """Top-level reminders and the rectification window of a normal hazard skip the night."""
    opened = open_hazard(
        number=1, chain=CHAIN, policy=POLICY, critical=False, now=local(2026, 5, 6, 16)
    )
    at_top = decide(opened.hazard, Tick(), local(2026, 5, 6, 17))
    assert at_top.hazard.level == 3
    assert at_top.hazard.deadline == local(2026, 5, 6, 18)
    reminded = decide(at_top.hazard, Tick(), local(2026, 5, 6, 18))
    assert reminded.hazard.repeats == 1
    assert reminded.hazard.deadline == local(2026, 5, 7, 8, 30)
    on_site = decide(opened.hazard, SiteEvidence(), local(2026, 5, 6, 16))
    assert on_site.hazard.deadline == local(2026, 5, 7, 10)


def test_policy_with_calendar_survives_the_hazard_row_json() -> None:
    """policy_to_json / policy_from_json keep the calendar, holidays and make-up days included."""
    assert policy_from_json(policy_to_json(POLICY)) == POLICY
    plain = Policy()
    assert policy_from_json(policy_to_json(plain)) == plain
    legacy = {k: v for k, v in policy_to_json(plain).items() if k != "calendar"}
    assert policy_from_json(legacy).calendar is None


def test_window_keeps_only_exceptions_in_range() -> None:
    """A calendar cut to a window keeps the rules and only the holidays inside it."""
    cut = CAL.window(date(2026, 5, 4), date(2026, 5, 31))
    assert cut.holidays == {date(2026, 5, 4), date(2026, 5, 5)}
    assert cut.workdays == {date(2026, 5, 9)}
    assert cut.hours == CAL.hours
