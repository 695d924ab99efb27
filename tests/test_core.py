"""Pure unit tests of the core: state machine, escalation schedule, evidence, durations."""

from __future__ import annotations

import ast
import pathlib
from datetime import UTC, datetime, timedelta

import pytest

from escalation.chain import ChainLevel, ChainSnapshot, Member
from escalation.durations import DurationError, format_duration, parse_duration
from escalation.evidence import (
    EvidenceInput,
    EvidenceKind,
    Refusal,
    Site,
    haversine_m,
    judge_evidence,
)
from escalation.hazard import (
    Closed,
    Dismissed,
    HazardState,
    IllegalTransition,
    Policy,
    Rectified,
    SiteEvidence,
    Tick,
    decide,
    open_hazard,
)

T0 = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
CHAIN = ChainSnapshot(
    (
        ChainLevel("项目安全员", (Member(1001),), timedelta(minutes=30)),
        ChainLevel("监理", (Member(1002), Member(1003)), timedelta(minutes=30)),
        ChainLevel("总工程师", (Member(1004),), timedelta(hours=1)),
    )
)
POLICY = Policy(critical_factor=0.5, repeat_every=timedelta(minutes=30), max_repeats=2)


def opened(critical: bool = False):  # type: ignore[no-untyped-def]
    return open_hazard(number=1, chain=CHAIN, policy=POLICY, critical=critical, now=T0)


def test_open_calls_level_one_with_its_deadline() -> None:
    """A new hazard is open at level 1, due when level 1's deadline passes, told in the group."""
    d = opened()
    assert d.hazard.state is HazardState.OPEN
    assert d.hazard.level == 1
    assert d.hazard.deadline == T0 + timedelta(minutes=30)
    assert [c.level for c in d.calls] == [1]
    assert d.calls[0].dm is False


def test_critical_halves_deadlines_and_dms_level_one() -> None:
    """A critical hazard multiplies each deadline by critical_factor and DMs level 1 at once."""
    d = opened(critical=True)
    assert d.hazard.deadline == T0 + timedelta(minutes=15)
    assert d.calls[0].dm is True
    nxt = decide(d.hazard, Tick(), T0 + timedelta(minutes=15))
    assert nxt.hazard.level == 2
    assert nxt.hazard.deadline == T0 + timedelta(minutes=30)


def test_tick_before_deadline_changes_nothing() -> None:
    """A wake-up before the deadline is a no-op."""
    h = opened().hazard
    d = decide(h, Tick(), T0 + timedelta(minutes=29, seconds=59))
    assert d.hazard == h
    assert not d.changed


def test_each_passed_deadline_raises_one_level_on_a_fixed_schedule() -> None:
    """Level k+1 is due at report time plus the deadlines of levels 1..k, however late the tick."""
    h = opened().hazard
    d = decide(h, Tick(), T0 + timedelta(minutes=31))
    assert d.hazard.level == 2
    assert d.hazard.deadline == T0 + timedelta(minutes=60)
    assert d.calls[0].members == (Member(1002), Member(1003))
    assert d.calls[0].overdue_since == T0 + timedelta(minutes=30)
    assert d.calls[0].skipped == ()


def test_catch_up_goes_straight_to_the_level_that_applies_now() -> None:
    """After downtime the engine jumps to the current level and names the skipped ones."""
    h = opened().hazard
    d = decide(h, Tick(), T0 + timedelta(minutes=75))
    assert d.hazard.level == 3
    assert d.calls[0].skipped == (2,)
    assert d.calls[0].overdue_since == T0 + timedelta(minutes=30)
    assert d.hazard.deadline == T0 + timedelta(minutes=120)


def test_after_the_top_level_reminders_repeat_then_stop() -> None:
    """The top level is reminded every repeat_every up to max_repeats, then the clock stops."""
    h = decide(opened().hazard, Tick(), T0 + timedelta(minutes=60)).hazard
    assert h.level == 3
    r1 = decide(h, Tick(), T0 + timedelta(minutes=120))
    assert r1.calls[0].repeat == 1
    assert r1.hazard.deadline == T0 + timedelta(minutes=150)
    r2 = decide(r1.hazard, Tick(), T0 + timedelta(minutes=150))
    assert r2.calls[0].repeat == 2
    assert r2.hazard.deadline is None
    assert not decide(r2.hazard, Tick(), T0 + timedelta(days=1)).changed


def test_site_evidence_stops_the_clock_and_starts_rectification() -> None:
    """Accepted evidence moves open to on_site with the rectify_within clock."""
    d = decide(opened().hazard, SiteEvidence(), T0 + timedelta(minutes=10))
    assert d.hazard.state is HazardState.ON_SITE
    assert d.hazard.deadline == T0 + timedelta(minutes=10) + POLICY.rectify_within


def test_illegal_transitions_raise() -> None:
    """Closing an open hazard or dismissing one on site is refused by the state machine."""
    h = opened().hazard
    with pytest.raises(IllegalTransition):
        decide(h, Closed(), T0)
    on_site = decide(h, SiteEvidence(), T0).hazard
    with pytest.raises(IllegalTransition):
        decide(on_site, Dismissed("x"), T0)
    with pytest.raises(IllegalTransition):
        decide(on_site, SiteEvidence(), T0)


def test_full_lifecycle_reaches_closed() -> None:
    """open → on_site → rectified → closed, and dismissed from open."""
    h = decide(opened().hazard, SiteEvidence(), T0).hazard
    h = decide(h, Rectified(), T0).hazard
    assert decide(h, Closed(), T0).hazard.state is HazardState.CLOSED
    assert decide(opened().hazard, Dismissed("误报"), T0).hazard.state is HazardState.DISMISSED


def _photo(user: int, **kw: object) -> EvidenceInput:
    return EvidenceInput(EvidenceKind.PHOTO, user, file_unique_id="u1", **kw)  # type: ignore[arg-type]


def judge(ev: EvidenceInput, level: int = 1, site: Site | None = None, used: bool = False):  # type: ignore[no-untyped-def]
    return judge_evidence(
        ev, chain=CHAIN, level=level, anyone=False, site=site, photo_used_before=used
    )


def test_evidence_from_current_or_lower_level_is_accepted() -> None:
    """A photo from level 1 counts at level 1; a level-2 member counts only once level 2 is called."""
    assert judge(_photo(1001)).accepted
    assert judge(_photo(1002)).refusal is Refusal.NOT_IN_CHAIN
    assert judge(_photo(1002), level=2).accepted


@pytest.mark.parametrize(
    ("evidence", "used", "refusal"),
    [
        (_photo(1001, forwarded=True), False, Refusal.FORWARDED),
        (_photo(1001), True, Refusal.REUSED_PHOTO),
        (EvidenceInput(EvidenceKind.VENUE, 1001, lat=33.5975, lon=119.0153), False, Refusal.VENUE),
        (_photo(9999), False, Refusal.NOT_IN_CHAIN),
    ],
)
def test_evidence_refusals(evidence: EvidenceInput, used: bool, refusal: Refusal) -> None:
    """Forwarded, re-used, venue and outsider evidence is refused with its reason."""
    assert judge(evidence, used=used).refusal is refusal


def test_geofence_uses_accuracy_but_caps_it() -> None:
    """A location counts within radius plus its accuracy, the slack capped at the radius."""
    site = Site(33.5975, 119.0153, 300)
    near = EvidenceInput(EvidenceKind.LOCATION, 1001, lat=33.5975, lon=119.0153 + 0.0035)
    d = haversine_m(33.5975, 119.0153, 33.5975, 119.0153 + 0.0035)
    assert 300 < d < 400
    assert judge(near, site=site).refusal is Refusal.OUTSIDE_SITE
    fuzzy = EvidenceInput(
        EvidenceKind.LOCATION, 1001, lat=33.5975, lon=119.0153 + 0.0035, accuracy_m=150
    )
    assert judge(fuzzy, site=site).accepted
    far = EvidenceInput(EvidenceKind.LOCATION, 1001, lat=33.62, lon=119.0153, accuracy_m=5000)
    assert judge(far, site=site).refusal is Refusal.OUTSIDE_SITE


def test_durations_round_trip() -> None:
    """Contract durations parse to timedeltas; nonsense is a clear error."""
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1d") == timedelta(days=1)
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    for bad in ("", "30", "m30", "3x", "-5m"):
        with pytest.raises(DurationError):
            parse_duration(bad)


def test_chain_snapshot_json_round_trip() -> None:
    """The snapshot stored on a hazard reads back equal."""
    assert ChainSnapshot.from_json(CHAIN.to_json()) == CHAIN


def test_core_imports_no_infrastructure() -> None:
    """escalation/ imports nothing from telegram, sqlalchemy, apscheduler or aiohttp."""
    forbidden = {"telegram", "sqlalchemy", "apscheduler", "aiohttp", "asyncpg", "aiosqlite"}
    root = pathlib.Path(__file__).parent.parent / "escalation"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_core_never_reads_the_system_clock() -> None:
    """Nothing in escalation/ calls datetime.now(), time.time() or date.today()."""
    root = pathlib.Path(__file__).parent.parent / "escalation"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in ("datetime.now(", "time.time(", "date.today(", "utcnow("):
            assert call not in text, f"{path.name} calls {call}"


def test_no_reminders_when_max_repeats_is_zero() -> None:
    """With max_repeats = 0 the top level is told once and the clock stops there."""
    policy = Policy(repeat_every=timedelta(minutes=30), max_repeats=0)
    h = open_hazard(number=1, chain=CHAIN, policy=policy, critical=False, now=T0).hazard
    top = decide(h, Tick(), T0 + timedelta(minutes=60))
    assert top.hazard.level == 3
    assert top.hazard.deadline is None
    assert not decide(top.hazard, Tick(), T0 + timedelta(days=1)).changed
