"""The TOML config contract as frozen pydantic models, and loading it from a file."""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
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
    field_validator,
    model_validator,
)

from escalation.chain import ChainLevel, ChainSnapshot, Member
from escalation.durations import DurationError, parse_duration


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookConfig(_Frozen):
    listen: str = "0.0.0.0"  # a webhook must be reachable from Telegram
    port: int = 8443
    url: str
    secret_env: str = "SITEWALK_WEBHOOK_SECRET"


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


class MemberEntry(_Frozen):
    id: int | None = None
    username: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _id_or_username(self) -> MemberEntry:
        if self.id is None and self.username is None:
            msg = "a member needs `id` or `username`"
            raise ValueError(msg)
        return self


def _to_member(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int):
        return {"id": value}
    if isinstance(value, str):
        if not value.startswith("@") or len(value) < 2:
            msg = f'{value!r}: write a numeric id or "@username"'
            raise ValueError(msg)
        return {"username": value[1:]}
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


class ProjectConfig(_Frozen):
    name: str = Field(min_length=1)
    chat_id: int
    site: SiteConfig | None = None
    chain: list[LevelConfig] = Field(min_length=1)
    evidence_from: Literal["chain", "anyone"] | None = None

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
    def _unique_chats(self) -> Config:
        seen: set[int] = set()
        for project in self.projects:
            if project.chat_id in seen:
                msg = f"chat_id {project.chat_id} is used by two projects"
                raise ValueError(msg)
            seen.add(project.chat_id)
        return self

    def project_for_chat(self, chat_id: int) -> ProjectConfig | None:
        for project in self.projects:
            if project.chat_id == chat_id:
                return project
        return None


class Problem:
    """One thing wrong with a config file, located by line and dotted key where known."""

    __slots__ = ("key", "line", "message")

    def __init__(self, line: int | None, key: str, message: str) -> None:
        self.line = line
        self.key = key
        self.message = message

    def render(self, path: str) -> str:
        return f"{path}:{self.line or 1}: {self.key or '(file)'}: {self.message}"


class ConfigError(Exception):
    """The config file cannot be used; `problems` says why, one entry per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.key}: {p.message}" for p in problems))


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def parse_config(text: str) -> Config:
    """Parse TOML text into a Config, or raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        detail = getattr(exc, "msg", str(exc))
        raise ConfigError([Problem(line, "", f"TOML syntax: {detail}")]) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(None, _dotted(tuple(err["loc"])), err["msg"].removeprefix("Value error, "))
            for err in exc.errors()
        ]
        raise ConfigError(problems) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(None, "", f"cannot read the file: {exc.strerror}")]) from None
    return parse_config(text)
