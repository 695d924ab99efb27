"""The TOML config contract as frozen pydantic models, and loading it with located errors."""

from __future__ import annotations

import difflib
import functools
import itertools
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.configfile import KeyLines, line_of
from escalation.chain import ChainLevel, ChainSnapshot, Member
from escalation.durations import DurationError, parse_duration
from escalation.hazard import Policy
from escalation.workhours import WorkCalendar


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]


class _Frozen(BaseModel):
    # Strict: TOML has real types, so a quoted number or a number for a duration is a typo to
    # report, not a value to coerce.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# What Telegram accepts as a webhook's secret_token (setWebhook).
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class WebhookConfig(_Frozen):
    listen: str = "0.0.0.0"  # a webhook must be reachable from Telegram
    port: int = Field(default=8443, ge=1, le=65535)
    url: str
    secret_env: str = "SITEWALK_WEBHOOK_SECRET"

    def secret(self) -> SecretStr:
        """Read the webhook's secret_token from the environment; required, never in the file.

        Without it anyone who learns the URL could post updates as any group member, a forged
        photo or location among them: the very proof of a site visit the bot relies on.
        """
        value = os.environ.get(self.secret_env, "")
        problem = None
        if not value:
            problem = (
                f"environment variable {self.secret_env} is empty: webhook mode needs a secret, "
                "which Telegram sends with every update so that forged posts are refused"
            )
        elif not _WEBHOOK_SECRET.fullmatch(value):
            problem = (
                f"the secret in {self.secret_env} must be 1-256 characters of A-Z, a-z, 0-9, "
                "_ and - (what Telegram accepts)"
            )
        if problem is not None:
            raise ConfigError([Problem(None, "telegram.webhook.secret_env", problem)])
        return SecretStr(value)


class TelegramConfig(_Frozen):
    token_env: str = "SITEWALK_TOKEN"
    api_base_url: str = "https://api.telegram.org"
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookConfig | None = None

    @model_validator(mode="after")
    def _webhook_needs_table(self) -> TelegramConfig:
        if self.mode == "webhook" and self.webhook is None:
            msg = 'mode = "webhook" needs a [telegram.webhook] table with at least `url`'
            raise ValueError(msg)
        return self

    def token(self) -> SecretStr:
        """Read the bot token from the environment; it is never stored in the file."""
        value = os.environ.get(self.token_env, "")
        if not value:
            msg = f"environment variable {self.token_env} is empty: put the bot token there"
            raise ConfigError([Problem(None, "telegram.token_env", msg)])
        return SecretStr(value)


class StorageConfig(_Frozen):
    url: str = "sqlite+aiosqlite:///sitewalk.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            msg = "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB"
            raise ValueError(msg)
        return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)"
        raise ValueError(msg) from None
    return value


def _check_positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        msg = "must be longer than 0s"
        raise ValueError(msg)
    return value


class Defaults(_Frozen):
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    critical_factor: float = 0.5
    repeat_every: Duration = timedelta(minutes=30)
    max_repeats: int = Field(default=6, ge=0)
    rectify_within: Duration = timedelta(hours=24)
    evidence_from: Literal["chain", "anyone"] = "chain"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @field_validator("critical_factor")
    @classmethod
    def _factor_in_range(cls, value: float) -> float:
        if not 0 < value <= 1:
            msg = "must be in (0, 1]; 1 keeps the normal deadlines for critical hazards"
            raise ValueError(msg)
        return value

    @field_validator("repeat_every", "rectify_within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _check_positive(value)


_USERNAME = re.compile(r"^[A-Za-z0-9_]{3,32}$")


class MemberEntry(_Frozen):
    id: int | None = None
    username: str | None = None
    name: str | None = Field(default=None, min_length=1)

    @field_validator("username")
    @classmethod
    def _plain_username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bare = value.removeprefix("@")
        if not _USERNAME.match(bare):
            msg = f"{value!r} is not a Telegram username (letters, digits and _)"
            raise ValueError(msg)
        return bare

    @model_validator(mode="after")
    def _id_or_username(self) -> MemberEntry:
        if self.id is None and self.username is None:
            msg = "a member needs `id` or `username`"
            raise ValueError(msg)
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        return f"@{self.username}" if self.username else str(self.id)


def _to_member(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int):
        return {"id": value}
    if isinstance(value, str):
        if value.lstrip("-").isdigit():
            msg = f"{value!r}: write a numeric id without quotes"
            raise ValueError(msg)
        if not value.startswith("@"):
            msg = f'{value!r}: write a numeric id or "@username"'
            raise ValueError(msg)
        return {"username": value}
    return value


MemberValue = Annotated[MemberEntry, BeforeValidator(_to_member)]


class LevelConfig(_Frozen):
    role: str = Field(min_length=1)
    members: list[MemberValue] = Field(min_length=1)
    deadline: Duration

    @field_validator("deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _check_positive(value)


class SiteConfig(_Frozen):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _to_interval(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # let pydantic name the wrong type
    match = _INTERVAL.match(value)
    if match is None:
        msg = f'{value!r}: write "HH:MM-HH:MM", e.g. "08:00-12:00"'
        raise ValueError(msg)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if m1 > 59 or m2 > 59 or h1 > 23 or (h2, m2) > (24, 0):
        msg = f"{value!r}: not a time of day"
        raise ValueError(msg)
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        msg = f"{value!r}: must end after it starts (split a night shift at 24:00)"
        raise ValueError(msg)
    return (start, end)


Interval = Annotated[tuple[int, int], BeforeValidator(_to_interval)]


class WorkingHoursConfig(_Frozen):
    """Optional per project: normal hazards' deadlines then count only working time."""

    days: list[Weekday] = Field(default=["mon", "tue", "wed", "thu", "fri"], min_length=1)
    hours: list[Interval] = Field(default=[(8 * 60, 12 * 60), (13 * 60, 18 * 60)], min_length=1)
    holidays: Literal["cn", "none"] = "cn"

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        ordered = sorted(value)
        for (_, end), (start, _) in itertools.pairwise(ordered):
            if start < end:
                msg = "intervals overlap"
                raise ValueError(msg)
        return ordered

    @field_validator("days")
    @classmethod
    def _unique_days(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            msg = "a day is listed twice"
            raise ValueError(msg)
        return value

    def calendar(self, timezone: str) -> WorkCalendar:
        holidays, workdays = cn_calendar() if self.holidays == "cn" else (frozenset(), frozenset())
        return WorkCalendar(
            timezone,
            frozenset(WEEKDAYS.index(d) for d in self.days),
            tuple(self.hours),
            holidays=holidays,
            workdays=workdays,
        )


@functools.cache
def cn_calendar() -> tuple[frozenset[date], frozenset[date]]:
    """China's public holidays and make-up working days (调休), from `chinese-calendar`."""
    import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type hints

    holidays: dict[date, Any] = chinese_calendar.holidays
    workdays: dict[date, Any] = chinese_calendar.workdays
    return frozenset(holidays), frozenset(workdays)


def cn_calendar_years() -> range:
    """The years whose official holidays `chinese-calendar` knows."""
    holidays, _ = cn_calendar()
    return range(min(holidays).year, max(holidays).year + 1)


# A hazard carries the holidays of the next year with it; no escalation chain runs longer.
CALENDAR_HORIZON = timedelta(days=400)


class ProjectConfig(_Frozen):
    name: str = Field(min_length=1)
    chat_id: int
    site: SiteConfig | None = None
    chain: list[LevelConfig] = Field(min_length=1)
    evidence_from: Literal["chain", "anyone"] | None = None
    working_hours: WorkingHoursConfig | None = None

    def snapshot(self) -> ChainSnapshot:
        """The chain as the core sees it, to copy onto a new hazard."""
        return ChainSnapshot(
            tuple(
                ChainLevel(
                    role=level.role,
                    members=tuple(
                        Member(user_id=m.id, username=m.username, name=m.name)
                        for m in level.members
                    ),
                    deadline=level.deadline,
                )
                for level in self.chain
            )
        )

    def usernames(self) -> list[str]:
        """Members written as @username without an id: resolved when the bot first sees them."""
        return [m.username for lv in self.chain for m in lv.members if m.id is None and m.username]


class LexiconConfig(_Frozen):
    """Words a project adds to the shipped classifier lexicon, without code changes."""

    extra_hazard: list[str] = []
    extra_ack: list[str] = []
    extra_not_hazard: list[str] = []


class Config(_Frozen):
    admins: list[int] = []
    telegram: TelegramConfig = TelegramConfig()
    storage: StorageConfig = StorageConfig()
    defaults: Defaults = Defaults()
    lexicon: LexiconConfig = LexiconConfig()
    projects: list[ProjectConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_chats(self, info: ValidationInfo) -> Config:
        if info.context and info.context.get("located"):
            return self  # parse_config reports it with the line of the second chat_id
        seen: set[int] = set()
        for project in self.projects:
            if project.chat_id in seen:
                msg = f"chat_id {project.chat_id} is used by two projects"
                raise ValueError(msg)
            seen.add(project.chat_id)
        return self

    def project_for_chat(self, chat_id: int) -> ProjectConfig | None:
        return self.projects_by_chat.get(chat_id)

    @functools.cached_property
    def projects_by_chat(self) -> dict[int, ProjectConfig]:
        """Built once per config: the sweep asks for every hazard, over hundreds of projects."""
        return {project.chat_id: project for project in self.projects}

    def policy(self, project: ProjectConfig, now: datetime) -> Policy:
        """The timing rules to copy onto a hazard of `project` opened at `now`."""
        d = self.defaults
        calendar = None
        if project.working_hours is not None:
            today = now.astimezone(ZoneInfo(d.timezone)).date()
            calendar = project.working_hours.calendar(d.timezone).window(
                today - timedelta(days=1), today + CALENDAR_HORIZON
            )
        return Policy(
            critical_factor=d.critical_factor,
            repeat_every=d.repeat_every,
            max_repeats=d.max_repeats,
            rectify_within=d.rectify_within,
            calendar=calendar,
        )


class Problem:
    """One thing wrong with a config file, located by line and dotted key where known."""

    __slots__ = ("key", "line", "message")

    def __init__(self, line: int | None, key: str, message: str) -> None:
        self.line = line
        self.key = key
        self.message = message

    def render(self, path: str) -> str:
        return f"{path}:{self.line or 1}: {self.key or '(file)'}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self.line!r}, {self.key!r}, {self.message!r})"


class ConfigError(Exception):
    """The config file cannot be used; `problems` says why, one entry per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))


def dotted(path: tuple[int | str, ...]) -> str:
    """`projects.0.chain.1.deadline`: list indices as numbers between dots."""
    return ".".join(str(part) for part in path)


_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_SYNTAX_END = re.compile(r"\s*\(at end of document\)\s*$")


def parse_config(text: str) -> Config:
    """Parse TOML text into a Config, or raise ConfigError listing every problem with its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc, text)]) from None
    lines = KeyLines(text)  # scanned only if there is a problem to place
    problems = _cross_checks(data, lines)
    try:
        config = Config.model_validate(data, context={"located": True})
    except ValidationError as exc:
        problems += [_problem(err, lines) for err in exc.errors()]
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.key))
        raise ConfigError(problems)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem(None, "", "the file is not UTF-8 text")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([Problem(None, "", f"cannot read the file: {reason}")]) from None
    return parse_config(text)


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(exc)
    line: int | None = getattr(exc, "lineno", None)  # Python 3.14 has it; 3.11 only says it
    found = _SYNTAX_AT.search(message)
    if found:
        line = line or int(found.group(1))
        message = message[: found.start()]
    elif _SYNTAX_END.search(message):
        line = line or text.count("\n") + 1
        message = _SYNTAX_END.sub("", message)
    return Problem(line, "(syntax)", f"TOML syntax: {message}")


def _cross_checks(
    data: dict[str, Any], lines: Mapping[tuple[str | int, ...], int]
) -> list[Problem]:
    """Rules across entries, checked on the raw data so they are reported with everything else."""
    problems: list[Problem] = []
    projects = data.get("projects")
    if not isinstance(projects, list):
        return problems
    first: dict[int, int] = {}
    for index, project in enumerate(projects):
        chat_id = project.get("chat_id") if isinstance(project, dict) else None
        if not isinstance(chat_id, int) or isinstance(chat_id, bool):
            continue
        if chat_id in first:
            path = ("projects", index, "chat_id")
            other = ("projects", first[chat_id], "chat_id")
            msg = f"chat_id {chat_id} is already used by {dotted(other)} (line {lines.get(other)})"
            problems.append(Problem(line_of(lines, path), dotted(path), msg))
        else:
            first[chat_id] = index
    return problems


_TYPE_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list [...]",
    "model_type": "a table",
    "dict_type": "a table",
    "tuple_type": "a string",
}


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _known_keys() -> list[str]:
    models: list[type[BaseModel]] = [
        Config,
        TelegramConfig,
        WebhookConfig,
        StorageConfig,
        Defaults,
        LexiconConfig,
        ProjectConfig,
        SiteConfig,
        LevelConfig,
        MemberEntry,
        WorkingHoursConfig,
    ]
    return sorted({name for model in models for name in model.model_fields})


def _problem(err: Any, lines: Mapping[tuple[str | int, ...], int]) -> Problem:
    loc: tuple[str | int, ...] = tuple(err["loc"])
    kind, last = err["type"], (loc[-1] if loc else "")
    if kind == "missing":
        if last == "chain":
            message = "a project needs a chain: add at least one [[projects.chain]] level"
        elif last == "projects":
            message = "no project: add at least one [[projects]] table"
        else:
            message = f"required key `{last}` is missing"
    elif kind == "extra_forbidden":
        close = difflib.get_close_matches(str(last), _known_keys(), n=1)
        if close and close[0] == last:
            message = (
                f"`{last}` does not belong in this table (a key written below a [table] header "
                "belongs to that table)"
            )
        else:
            message = f"unknown key `{last}`" + (f"; did you mean `{close[0]}`?" if close else "")
    elif kind == "too_short" and last in ("members", "chain", "projects", "days", "hours"):
        message = {
            "members": "a level needs at least one member",
            "chain": "a project needs a chain: add at least one [[projects.chain]] level",
            "projects": "no project: add at least one [[projects]] table",
            "days": "list at least one working day",
            "hours": "list at least one interval",
        }[str(last)]
    elif kind in _TYPE_NAMES:
        message = f"expected {_TYPE_NAMES[kind]}, got {_toml_type(err.get('input'))}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(line_of(lines, loc), dotted(loc), message)
