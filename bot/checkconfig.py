"""`sitewalk check-config`: a one-screen summary of a valid chain file, with its warnings."""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.config import WEEKDAYS, Config, MemberEntry, ProjectConfig, cn_calendar_years
from escalation.durations import format_duration
from storage.db import create_engine, session_factory
from storage.uow import UnitOfWorkFactory

DB_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Known:
    """What the bot's database says about one person."""

    started: bool
    blocked: str | None


@dataclass
class Directory:
    """People the bot has seen, read from its database; `note` says why it is empty, if it is."""

    people: dict[int, Known] = field(default_factory=dict)
    usernames: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    @property
    def checked(self) -> bool:
        return self.note is None

    def id_of(self, member: MemberEntry) -> int | None:
        if member.id is not None:
            return member.id
        return self.usernames.get((member.username or "").lower())

    def why_not_reachable(self, member: MemberEntry) -> str | None:
        """None when a DM to this member would arrive, else the reason in a few words."""
        user_id = self.id_of(member)
        if user_id is None:
            return "unresolved username: the bot has not seen this user"
        person = self.people.get(user_id)
        if person is None:
            return "never seen by the bot"
        if person.blocked:
            return f"DM refused ({person.blocked})"
        if not person.started:
            return "has not pressed Start in a DM with the bot"
        return None


def read_directory(config: Config, db_url: str | None) -> Directory:
    """Read the people in the chain from the database, without creating or changing anything."""
    url = db_url or config.storage.url
    try:
        engine = _read_only_engine(url)
    except Exception as exc:  # a malformed URL or a missing driver: the check is skipped
        return Directory(note=f"database check skipped: cannot use {_safe(url)}: {exc}")
    if isinstance(engine, str):
        return Directory(note=engine)

    async def read() -> Directory:
        try:
            return await read_people(engine, config)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(asyncio.wait_for(read(), DB_TIMEOUT_S))
    except TimeoutError:
        return Directory(note=f"database check skipped: {_safe(url)} did not answer in time")
    except Exception as exc:  # any driver error means "not reachable" for a check
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        if "no such table" in reason or "does not exist" in reason:
            reason = "it has no sitewalk tables yet (the bot creates them on its first start)"
        return Directory(note=f"database check skipped: cannot read {_safe(url)}: {reason}")


async def read_people(engine: AsyncEngine, config: Config) -> Directory:
    """Who of the chain the bot has seen, who pressed Start, and which @usernames it resolved."""
    ids = {m.id for p in config.projects for lv in p.chain for m in lv.members if m.id is not None}
    usernames = {u.lower() for p in config.projects for u in p.usernames()}
    uow = UnitOfWorkFactory(session_factory(engine))
    async with uow() as work:
        names = await work.people.ids_for_usernames(usernames)
        found = await work.people.get_many(ids | set(names.values()))
    people = {uid: Known(bool(p.started), p.unreachable_reason) for uid, p in found.items()}
    return Directory(people, {k.lower(): v for k, v in names.items()})


def _read_only_engine(url: str) -> AsyncEngine | str:
    """An engine that cannot create a SQLite file, or a note saying why the check is skipped."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return "database check skipped: an in-memory SQLite database holds nobody yet"
    path = Path(database)
    if not path.is_file():
        return f"database check skipped: SQLite file {database} does not exist (yet)"
    return create_async_engine(f"sqlite+aiosqlite:///file:{path.resolve()}?mode=ro&uri=true")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show only its scheme
        return url.split("://")[0] + "://…"


# ---- the summary -------------------------------------------------------------------------------


def summary(config: Config, path: str, directory: Directory, today: datetime) -> str:
    """One screen: projects, levels, people, deadlines, then the warnings."""
    d = config.defaults
    people = {
        (m.id, (m.username or "").lower())
        for p in config.projects
        for lv in p.chain
        for m in lv.members
    }
    levels = sum(len(p.chain) for p in config.projects)
    backend = make_url(config.storage.url).get_backend_name()
    lines = [
        f"{path}: OK — {_n(len(config.projects), 'project')}, {_n(levels, 'level')}, "
        f"{_n(len(people), 'person', 'people')}; storage {backend}",
        f"defaults: timezone {d.timezone}, texts {d.language}, critical deadlines x"
        f"{d.critical_factor:g}, top level reminded every {format_duration(d.repeat_every)} "
        f"up to {d.max_repeats} times, rectify within {format_duration(d.rectify_within)}",
        "admins: " + (", ".join(str(a) for a in config.admins) or "none"),
    ]
    warnings: list[str] = []
    for project in config.projects:
        lines.append("")
        lines.extend(_project_lines(project, config, directory))
        warnings.extend(_project_warnings(project, directory, today, d.timezone))
    if not config.admins:
        warnings.append("no admins: nobody can /reload, and a refused reload is only logged")
    if directory.note:
        warnings.append(directory.note)
    lines.append("")
    if warnings:
        lines.append(f"warnings ({len(warnings)}):")
        lines.extend(f"  - {w}" for w in warnings)
    else:
        lines.append("no warnings")
    return "\n".join(lines)


def _project_lines(project: ProjectConfig, config: Config, directory: Directory) -> list[str]:
    head = f"{project.name}  chat {project.chat_id}"
    if project.site:
        head += f"  geofence {project.site.radius_m:g} m"
    head += f"  evidence from {project.evidence_from or config.defaults.evidence_from}"
    lines = [head]
    if project.working_hours is not None:
        lines.append(f"  working hours: {describe_hours(project)}")
    width = max(_width(lv.role) for lv in project.chain)
    for number, level in enumerate(project.chain, 1):
        who = ", ".join(_person(m, directory) for m in level.members)
        role = level.role + " " * (width - _width(level.role))
        lines.append(f"  {number}. {role}  {format_duration(level.deadline):>6}  {who}")
    return lines


def describe_hours(project: ProjectConfig) -> str:
    """e.g. "mon–fri 08:00–12:00, 13:00–18:00; CN public holidays and 调休 working days"."""
    hours = project.working_hours
    assert hours is not None
    days = _day_ranges(sorted(WEEKDAYS.index(day) for day in hours.days))
    spans = ", ".join(f"{_hm(a)}–{_hm(b)}" for a, b in hours.hours)
    extra = "; CN public holidays and 调休 working days" if hours.holidays == "cn" else ""
    return f"{days} {spans}{extra}; normal hazards count working time only"


def _person(member: MemberEntry, directory: Directory) -> str:
    if member.id is not None:
        return f"{member.name} ({member.id})" if member.name else str(member.id)
    label = f"@{member.username}"
    resolved = directory.id_of(member)
    if resolved is not None:
        label += f" = {resolved}"
    return f"{member.name} ({label})" if member.name else label


def _project_warnings(
    project: ProjectConfig, directory: Directory, today: datetime, timezone: str
) -> list[str]:
    out: list[str] = []
    if len(project.chain) == 1:
        out.append(f"{project.name}: a single level; nobody above it will ever be told")
    for number, level in enumerate(project.chain, 1):
        where = f"{project.name}, level {number} {level.role}"
        if not directory.checked:
            out.extend(
                f"{where}: @{m.username} is unresolved until the bot sees this user"
                for m in level.members
                if m.id is None
            )
            continue
        reasons = [(m, directory.why_not_reachable(m)) for m in level.members]
        blocked = [f"{_person(m, directory)} ({why})" for m, why in reasons if why]
        if not blocked:
            continue
        nobody = len(blocked) == len(level.members)
        verdict = "nobody at this level can be DMed" if nobody else "cannot DM"
        out.append(f"{where}: {verdict}: " + "; ".join(blocked))
    if project.working_hours is not None and project.working_hours.holidays == "cn":
        years = cn_calendar_years()
        horizon = (today.astimezone(ZoneInfo(timezone)) + timedelta(days=30)).year
        if horizon not in years:
            out.append(
                f"{project.name}: chinese-calendar knows holidays up to {years[-1]} only; "
                f"for {horizon} only the weekly hours apply (upgrade the package when the "
                "State Council publishes them)"
            )
    return out


def _day_ranges(days: list[int]) -> str:
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        WEEKDAYS[r[0]] if len(r) == 1 else f"{WEEKDAYS[r[0]]}–{WEEKDAYS[r[-1]]}" for r in runs
    )


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"
