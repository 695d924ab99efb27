"""`sitewalk dry-run`: how a text would be read, the card, and the whole escalation schedule."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.checkconfig import describe_hours
from bot.config import Config, ProjectConfig
from bot.texts import Texts
from escalation.chain import Member
from escalation.classifier import Classification, Classifier, Kind, LexiconExtension, Severity
from escalation.durations import format_duration
from escalation.hazard import CallLevel, Hazard, Tick, decide, open_hazard

# A schedule ends by itself after the top level's reminders; this only guards a broken policy.
_MAX_STEPS = 1000


@dataclass(frozen=True, slots=True)
class Step:
    """One moment of the schedule: a level called, or the top level reminded."""

    at: datetime
    call: CallLevel
    plain_at: datetime | None = None  # the same step without working hours, where it differs


def classifier_for(config: Config) -> Classifier:
    lex = config.lexicon
    return Classifier(
        LexiconExtension(tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard))
    )


def schedule(
    config: Config, project: ProjectConfig, *, critical: bool, now: datetime
) -> tuple[Hazard, list[Step]]:
    """The core's own answer: open the hazard, then tick at every deadline until none is left."""
    policy = config.policy(project, now)
    opened = open_hazard(
        number=1, chain=project.snapshot(), policy=policy, critical=critical, now=now
    )
    steps = _walk(opened.hazard, [Step(now, c) for c in opened.calls])
    if policy.calendar is not None and not critical:
        plain = open_hazard(
            number=1,
            chain=project.snapshot(),
            policy=replace(policy, calendar=None),
            critical=critical,
            now=now,
        )
        plain_steps = _walk(plain.hazard, [Step(now, c) for c in plain.calls])
        steps = [
            replace(step, plain_at=other.at) if other.at != step.at else step
            for step, other in zip(steps, plain_steps, strict=False)
        ]
    return opened.hazard, steps


def _walk(hazard: Hazard, steps: list[Step]) -> list[Step]:
    for _ in range(_MAX_STEPS):
        if hazard.deadline is None:
            break
        at = hazard.deadline
        decision = decide(hazard, Tick(), at)
        steps.extend(Step(at, call) for call in decision.calls)
        hazard = decision.hazard
    return steps


def render(
    config: Config, project: ProjectConfig, text: str, now: datetime, classifier: Classifier
) -> str:
    """Everything the dry run prints, as one text."""
    zone = ZoneInfo(config.defaults.timezone)
    result = classifier.classify(text)
    lines = [
        f"project: {project.name} (chat {project.chat_id})",
        f"reported at: {_when(now, zone)} {config.defaults.timezone}",
        "",
        *_classification_lines(result),
    ]
    if result.kind is not Kind.HAZARD:
        lines.append("→ not a hazard report: nothing would be registered and nobody called.")
        return "\n".join(lines)
    critical = result.severity is Severity.CRITICAL
    hazard, steps = schedule(config, project, critical=critical, now=now)
    level1 = hazard.chain.level(1)
    texts = Texts(config.defaults.language, config.defaults.timezone)
    assert hazard.deadline is not None
    card = texts.card(
        number=1,
        text=text,
        category=result.category,
        critical=critical,
        role=level1.role,
        people=[m.label() for m in level1.members],
        deadline=hazard.deadline,
        now=now,
    )
    lines += ["", "card in the group (as #1):", *(f"  | {line}" for line in card.splitlines())]
    lines += ["", *_schedule_lines(config, project, critical, steps, zone)]
    return "\n".join(lines)


def _classification_lines(result: Classification) -> list[str]:
    lines = [
        f"classified as: {result.kind}"
        + (f", category {result.category}" if result.category else "")
        + (f", severity {result.severity}" if result.kind is Kind.HAZARD else "")
    ]
    lines.append("why: " + (", ".join(result.matched) if result.matched else "no rule matched"))
    return lines


def _schedule_lines(
    config: Config, project: ProjectConfig, critical: bool, steps: list[Step], zone: ZoneInfo
) -> list[str]:
    factor = config.defaults.critical_factor
    if critical:
        head = f"critical: every deadline x{factor:g}, work stops now, level 1 is DMed at once" + (
            "; working hours do not apply" if project.working_hours else ""
        )
    else:
        head = f"normal: deadlines as written (a critical report would get x{factor:g})"
    lines = [f"escalation schedule ({config.defaults.timezone}) — {head}"]
    if project.working_hours is not None and not critical:
        lines.append(f"working hours: {describe_hours(project)}")
    shifted = any(step.plain_at for step in steps)
    for step in steps:
        what, how = _what(step.call, config)
        row = f"  {_when(step.at, zone)}  "
        if shifted:
            plain = step.plain_at.astimezone(zone).strftime("%m-%d %H:%M") if step.plain_at else ""
            row += f"{plain:<11}  "
        row += f"{what:<28} {how:<9} {_who(step.call.members)}"
        lines.append(row.rstrip())
    lines.append(_ending(config))
    if shifted:
        lines.append("the second time, where given, is when the step would fall round the clock.")
    if any(m.user_id is None for s in steps for m in s.call.members):
        lines.append("unresolved: an @username the bot has not seen yet cannot be DMed.")
    return lines


def _what(call: CallLevel, config: Config) -> tuple[str, str]:
    if call.overdue_since is None:
        return f"level {call.level} called", "DM+card" if call.dm else "card"
    if call.repeat is not None:
        return f"reminder {call.repeat}/{config.defaults.max_repeats} level {call.level}", "DM"
    skipped = f" (skips {', '.join(map(str, call.skipped))})" if call.skipped else ""
    return f"escalated to level {call.level}{skipped}", "DM+notice"


def _who(members: tuple[Member, ...]) -> str:
    out = []
    for member in members:
        label = member.label()
        if member.user_id is None:
            label += f" (@{member.username}, unresolved)" if member.name else " (unresolved)"
        elif member.name:
            label += f" ({member.user_id})"
        out.append(label)
    return ", ".join(out)


def _ending(config: Config) -> str:
    d = config.defaults
    if d.max_repeats == 0:
        return "after the top level is called there are no reminders; the hazard stays open."
    return (
        f"after the top level: reminded every {format_duration(d.repeat_every)}, "
        f"{d.max_repeats} times; then the hazard stays open without further messages."
    )


def _when(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M %a")


def parse_at(value: str, timezone: str) -> datetime:
    """ "2026-05-06 09:00" in the project's timezone, as aware UTC; ValueError when unreadable."""
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            naive = datetime.strptime(value.strip(), fmt)  # noqa: DTZ007 - the zone is added below
        except ValueError:
            continue
        return naive.replace(tzinfo=ZoneInfo(timezone))
    msg = f'--at {value!r}: write local time as "YYYY-MM-DD HH:MM", e.g. "2026-05-06 09:00"'
    raise ValueError(msg)
