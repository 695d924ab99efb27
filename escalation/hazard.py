"""The hazard state machine: one transition function from (hazard, event, now) to a decision."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from escalation.chain import ChainSnapshot, Member
from escalation.workhours import WorkCalendar


class HazardState(StrEnum):
    OPEN = "open"
    ON_SITE = "on_site"
    RECTIFIED = "rectified"
    CLOSED = "closed"
    DISMISSED = "dismissed"


ACTIVE_STATES = frozenset({HazardState.OPEN, HazardState.ON_SITE})


class IllegalTransition(Exception):
    """An event that the hazard's current state does not allow, e.g. evidence on a closed one."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The per-project timing rules copied onto a hazard when it opens."""

    critical_factor: float = 0.5
    repeat_every: timedelta = timedelta(minutes=30)
    max_repeats: int = 6
    rectify_within: timedelta = timedelta(hours=24)
    # Working hours: when set, a normal hazard's deadlines count only working time.
    calendar: WorkCalendar | None = None


@dataclass(frozen=True, slots=True)
class Hazard:
    """What the core needs to know about a hazard; storage maps its row to and from this."""

    number: int
    state: HazardState
    level: int
    deadline: datetime | None
    opened_at: datetime
    critical: bool
    chain: ChainSnapshot
    policy: Policy
    repeats: int = 0

    def level_deadline(self, level: int) -> timedelta:
        """The time `level` has before the next one is called, shortened when critical."""
        base = self.chain.level(level).deadline
        return base * self.policy.critical_factor if self.critical else base

    def due_after(self, start: datetime, span: timedelta) -> datetime:
        """When `span` from `start` ends: working time only, unless critical or no calendar."""
        if self.critical or self.policy.calendar is None:
            return start + span
        return self.policy.calendar.add(start, span)


@dataclass(frozen=True, slots=True)
class CallLevel:
    """Tell a level of the chain about the hazard: DMs to its members and a group notice."""

    level: int
    members: tuple[Member, ...]
    overdue_since: datetime | None
    skipped: tuple[int, ...] = ()
    repeat: int | None = None
    dm: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """The hazard after an event, and whom to tell."""

    hazard: Hazard
    calls: tuple[CallLevel, ...] = ()
    log: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.calls or self.log)


# ---- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """A wake-up: apply every deadline that has passed by `now`."""


@dataclass(frozen=True, slots=True)
class SiteEvidence:
    """Accepted proof that someone in the chain went to the site."""


@dataclass(frozen=True, slots=True)
class Rectified:
    """Proof that the hazard was fixed."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The reporter or the safety officer verified the fix."""


@dataclass(frozen=True, slots=True)
class Dismissed:
    """A false alarm, with the reason given."""

    reason: str


Event = Tick | SiteEvidence | Rectified | Closed | Dismissed


def open_hazard(
    *, number: int, chain: ChainSnapshot, policy: Policy, critical: bool, now: datetime
) -> Decision:
    """Register a new hazard: level 1 is called now; critical ones are DMed at once."""
    hazard = Hazard(
        number=number,
        state=HazardState.OPEN,
        level=1,
        deadline=None,
        opened_at=now,
        critical=critical,
        chain=chain,
        policy=policy,
    )
    hazard = replace(hazard, deadline=hazard.due_after(now, hazard.level_deadline(1)))
    call = CallLevel(level=1, members=chain.level(1).members, overdue_since=None, dm=critical)
    return Decision(hazard, calls=(call,), log=("opened",))


def decide(hazard: Hazard, event: Event, now: datetime) -> Decision:
    """The one transition function; raises IllegalTransition when the state forbids the event."""
    match event:
        case Tick():
            return _escalate(hazard, now)
        case SiteEvidence():
            _require(hazard, event, HazardState.OPEN)
            after = replace(
                hazard,
                state=HazardState.ON_SITE,
                deadline=hazard.due_after(now, hazard.policy.rectify_within),
            )
            return Decision(after, log=("on_site",))
        case Rectified():
            _require(hazard, event, HazardState.OPEN, HazardState.ON_SITE)
            return Decision(
                replace(hazard, state=HazardState.RECTIFIED, deadline=None), log=("rectified",)
            )
        case Closed():
            _require(hazard, event, HazardState.RECTIFIED)
            return Decision(
                replace(hazard, state=HazardState.CLOSED, deadline=None), log=("closed",)
            )
        case Dismissed():
            _require(hazard, event, HazardState.OPEN)
            return Decision(
                replace(hazard, state=HazardState.DISMISSED, deadline=None), log=("dismissed",)
            )
    msg = f"unknown event {event!r}"  # pragma: no cover - the match above is exhaustive
    raise TypeError(msg)


def _require(hazard: Hazard, event: Event, *allowed: HazardState) -> None:
    if hazard.state not in allowed:
        msg = f"#{hazard.number}: {type(event).__name__} is not allowed in state {hazard.state}"
        raise IllegalTransition(msg)


def _escalate(hazard: Hazard, now: datetime) -> Decision:
    """Apply every passed deadline at once, going straight to the level that applies now.

    Reminders that fell due while the service was down are folded into one message; `repeats`
    still counts every passed slot, so the schedule ends when it would have.

    The schedule is fixed by the row: each call sets the next due time from the previous due time,
    not from `now`, so a late wake-up neither shifts the schedule nor repeats a level.
    """
    if hazard.state not in ACTIVE_STATES or hazard.deadline is None or now < hazard.deadline:
        return Decision(hazard)
    top = hazard.chain.top
    level, due, repeats = hazard.level, hazard.deadline, hazard.repeats
    called: list[int] = []
    next_due: datetime | None = due
    while next_due is not None and next_due <= now:
        if level < top:
            level += 1
            called.append(level)
            if level < top or hazard.policy.max_repeats > 0:
                next_due = hazard.due_after(next_due, hazard.level_deadline(level))
            else:
                next_due = None  # the top level is told once and no reminders are wanted
        else:
            repeats += 1
            next_due = (
                hazard.due_after(next_due, hazard.policy.repeat_every)
                if repeats < hazard.policy.max_repeats
                else None
            )
    # The constructor, not dataclasses.replace: a catch-up runs this 100,000 times.
    after = Hazard(
        number=hazard.number,
        state=hazard.state,
        level=level,
        deadline=next_due,
        opened_at=hazard.opened_at,
        critical=hazard.critical,
        chain=hazard.chain,
        policy=hazard.policy,
        repeats=repeats,
    )
    members = hazard.chain.level(level).members
    if called:
        call = CallLevel(level, members, overdue_since=due, skipped=tuple(called[:-1]))
        log = f"escalated to level {level}"
    else:
        call = CallLevel(level, members, overdue_since=due, repeat=repeats)
        log = f"reminded level {level} ({repeats}/{hazard.policy.max_repeats})"
    return Decision(after, calls=(call,), log=(log,))
