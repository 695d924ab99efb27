"""The responsibility chain as immutable values, copied onto each hazard when it opens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Member:
    """A person in the chain: a numeric id, or an @username not yet resolved to one."""

    user_id: int | None = None
    username: str | None = None
    name: str | None = None

    def label(self) -> str:
        if self.name:
            return self.name
        if self.username:
            return f"@{self.username}"
        return str(self.user_id)

    def matches(self, user_id: int, username: str | None) -> bool:
        if self.user_id is not None and self.user_id == user_id:
            return True
        return (
            self.username is not None
            and username is not None
            and self.username.lower() == username.lower()
        )


@dataclass(frozen=True, slots=True)
class ChainLevel:
    role: str
    members: tuple[Member, ...]
    deadline: timedelta


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """Levels in order: index 0 is level 1, called when the hazard is registered."""

    levels: tuple[ChainLevel, ...]

    def __post_init__(self) -> None:
        if not self.levels:
            msg = "a chain needs at least one level"
            raise ValueError(msg)

    @property
    def top(self) -> int:
        return len(self.levels)

    def level(self, number: int) -> ChainLevel:
        """Level by its 1-based number."""
        return self.levels[number - 1]

    def members_up_to(self, number: int) -> Iterable[Member]:
        for level in self.levels[:number]:
            yield from level.members

    def includes(self, user_id: int, username: str | None, up_to: int) -> bool:
        """Whether the user is a member of level 1..up_to."""
        return any(m.matches(user_id, username) for m in self.members_up_to(up_to))

    def with_resolved(self, usernames: dict[str, int]) -> ChainSnapshot:
        """Fill in ids for members known only by @username, where the bot has seen them."""
        lowered = {k.lower(): v for k, v in usernames.items()}

        def resolve(m: Member) -> Member:
            if m.user_id is None and m.username and m.username.lower() in lowered:
                return Member(lowered[m.username.lower()], m.username, m.name)
            return m

        return ChainSnapshot(
            tuple(
                ChainLevel(lv.role, tuple(resolve(m) for m in lv.members), lv.deadline)
                for lv in self.levels
            )
        )

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "role": lv.role,
                "deadline_s": int(lv.deadline.total_seconds()),
                "members": [
                    {"id": m.user_id, "username": m.username, "name": m.name} for m in lv.members
                ],
            }
            for lv in self.levels
        ]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> ChainSnapshot:
        return cls(
            tuple(
                ChainLevel(
                    role=lv["role"],
                    deadline=timedelta(seconds=lv["deadline_s"]),
                    members=tuple(
                        Member(m.get("id"), m.get("username"), m.get("name")) for m in lv["members"]
                    ),
                )
                for lv in data
            )
        )
