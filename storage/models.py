"""Typed SQLAlchemy 2 tables: projects, people, hazards, their log, evidence and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from escalation.hazard import HazardState


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which stores them without a zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the database; the core works in aware UTC"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def drop_nul(value: str | None) -> str | None:
    """PostgreSQL refuses NUL in a text column, and the whole transaction with it."""
    return value.replace("\x00", "") if value is not None and "\x00" in value else value


class _DropsNul:
    """Text that people typed (a report, a name): NUL characters dropped on the way in.

    Telegram passes them through and SQLite stores them, but PostgreSQL refuses the string, and
    the report with it. The column's type in the schema is unchanged.
    """

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return drop_nul(value)


class PeopleText(_DropsNul, TypeDecorator[str]):
    """A TEXT column of people's text (see _DropsNul)."""

    impl = Text
    cache_ok = True


class PeopleString(_DropsNul, TypeDecorator[str]):
    """A VARCHAR(n) column of people's text (see _DropsNul)."""

    impl = String
    cache_ok = True


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


def _string_enum(enum: type[StrEnum]) -> SAEnum:
    """Store enum values as short strings, so SQLite and PostgreSQL hold the same text."""
    return SAEnum(
        enum, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    next_number: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]


class Person(Base):
    __tablename__ = "people"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(PeopleString(64), index=True)
    name: Mapped[str | None] = mapped_column(PeopleString(200))
    started: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    last_seen_at: Mapped[datetime | None]


class HazardFields(Protocol):
    """What texts and outbox rows read of a hazard: a HazardRow, or a sweep's `DueHazard`."""

    @property
    def id(self) -> int: ...
    @property
    def chat_id(self) -> int: ...
    @property
    def number(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def reporter_name(self) -> str: ...
    @property
    def opened_at(self) -> datetime: ...
    @property
    def photo_file_id(self) -> str | None: ...
    @property
    def version(self) -> int: ...


class HazardRow(Base):
    __tablename__ = "hazards"
    __table_args__ = (
        UniqueConstraint("project_id", "number"),
        # The sweep reads due hazards in deadline order. (state, deadline), the first index
        # for it, cannot give that order for two active states, so PostgreSQL sorted every due
        # row for each batch (15 ms a batch at 20,000 due); it is gone (0004): every step of
        # every hazard rewrote it. Only active hazards keep a deadline, so this index is theirs.
        Index("ix_hazards_deadline", "deadline"),
        Index("ix_hazards_chat_msg", "chat_id", "report_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    number: Mapped[int]
    chat_id: Mapped[int] = mapped_column(BigInteger)
    report_message_id: Mapped[int]
    card_message_id: Mapped[int | None]
    reporter_id: Mapped[int | None] = mapped_column(BigInteger)
    reporter_name: Mapped[str] = mapped_column(PeopleString(200))
    text: Mapped[str] = mapped_column(PeopleText())
    category: Mapped[str | None] = mapped_column(String(32))
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[HazardState] = mapped_column(_string_enum(HazardState))
    level: Mapped[int]
    deadline: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    # Compare-and-set token: every applied decision bumps it, so a stale wake-up changes nothing.
    version: Mapped[int] = mapped_column(Integer, default=0)
    chain: Mapped[list[Any]]
    policy: Mapped[dict[str, Any]]
    ack_reminded: Mapped[bool] = mapped_column(Boolean, default=False)
    photo_file_id: Mapped[str | None] = mapped_column(String(200))


class HazardEvent(Base):
    """Append-only: every transition, acknowledgement, refusal and delivery failure."""

    __tablename__ = "hazard_events"
    __table_args__ = (
        # Every DM the sweep renders names who acknowledged the hazard: found through this
        # small index, not among all of each hazard's events. Other events never enter it.
        Index(
            "ix_hazard_events_acked",
            "hazard_id",
            postgresql_where=text("kind = 'acknowledged'"),
            sqlite_where=text("kind = 'acknowledged'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str | None] = mapped_column(PeopleString(200))
    detail: Mapped[dict[str, Any]]


class EvidenceRow(Base):
    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_message", "chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int]
    file_unique_id: Mapped[str | None] = mapped_column(String(200), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accepted: Mapped[bool] = mapped_column(Boolean)
    refusal: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]


class OutboxRow(Base):
    """A Bot API call to make, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_ready", "status", "not_before"),
        # Replies to a bot message (evidence in a DM, a chosen button) are found by its id.
        # Only sent rows have one: a row written (a catch-up writes 200,000) skips this index.
        Index(
            "ix_outbox_sent",
            "chat_id",
            "sent_message_id",
            postgresql_where=text("sent_message_id IS NOT NULL"),
            sqlite_where=text("sent_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Not indexed: no query reads the outbox by hazard, and every row written paid for it (0005).
    hazard_id: Mapped[int | None] = mapped_column(ForeignKey("hazards.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    recipient_id: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(PeopleText())
    reply_to_message_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]]
    # A unique key per intended delivery: even a bug that applied a step twice cannot send twice.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(_string_enum(OutboxStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    sent_message_id: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ChatMigration(Base):
    """A group that became a supergroup; the config may still name the old id."""

    __tablename__ = "chat_migrations"

    old_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    new_chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime]


class Binding(Base):
    """A person who opened the bot through a project's start link (keyed by the config chat id)."""

    __tablename__ = "bindings"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bound_at: Mapped[datetime]
