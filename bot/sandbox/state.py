"""State of the sandbox: small dataclasses for chats, users, files, calls, and the update queue."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# Telegram's own default when allowed_updates was never given (or given as an empty list).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class ApiCall:
    """One Bot API request as received; status stays 0 while the request is pending."""

    method: str
    params: Json
    at: float
    status: int = 0
    description: str = ""  # Telegram's words for an error answer


@dataclass
class Injection:
    """A scripted answer for the next matching calls of one method."""

    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    remaining: int
    delay: float

    def matches(self, method: str, params: Json) -> bool:
        if self.method != method.lower():
            return False
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


@dataclass
class UserState:
    user: Json
    started: bool = False
    blocked: bool = False


@dataclass
class ChatState:
    """A chat and its history; stored message dicts are replaced on edit, never mutated."""

    chat: Json
    next_message_id: int = 1
    messages: dict[int, Json] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    sent_by_bot: list[int] = field(default_factory=list)
    members: dict[int, str] = field(default_factory=dict)
    # None means nobody said: the bot is then treated as a plain member.
    bot_status: str | None = None
    migrated_to: int | None = None
    # (message_id, user_id) -> emojis, so reaction updates can carry old_reaction.
    user_reactions: dict[tuple[int, int], list[Json]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        chat_id: int = self.chat["id"]
        return chat_id

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    # The whole PhotoSize list this file belongs to, so a re-send by file_id reuses it.
    photo: list[Json] | None = None


@dataclass
class CallbackState:
    query: Json
    answered: bool = False


@dataclass
class Webhook:
    url: str = ""
    secret_token: str | None = None
    params: Json = field(default_factory=dict)


class UpdateQueue:
    """Pending updates with increasing ids and long-poll wakeups; O(1) per enqueued update."""

    def __init__(self) -> None:
        self._items: deque[tuple[int, str, Json]] = deque()
        self._ids = itertools.count(1)
        self._wakeup: asyncio.Event | None = None
        self.allowed: frozenset[str] | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def deliverable(self) -> int:
        """Unconfirmed updates of the allowed types: what the bot still has to fetch or confirm."""
        return sum(1 for _, kind, _ in self._items if self.is_allowed(kind))

    def put(self, kind: str, payload: Json) -> Json:
        update_id = next(self._ids)
        update: Json = {"update_id": update_id, kind: payload}
        self._items.append((update_id, kind, update))
        self._wake()
        return update

    def set_allowed(self, allowed: Iterable[str] | None) -> None:
        """Remember allowed_updates like Telegram: None keeps the previous setting."""
        if allowed is not None:
            self.allowed = frozenset(allowed)

    def is_allowed(self, kind: str) -> bool:
        if self.allowed:
            return kind in self.allowed
        return kind not in DEFAULT_EXCLUDED_UPDATES

    def confirm(self, offset: int) -> None:
        """Forget updates before `offset`; a negative offset keeps only the last -offset ones."""
        items = self._items
        if offset < 0:
            while len(items) > -offset:
                items.popleft()
            return
        while items and items[0][0] < offset:
            items.popleft()

    def take(self, limit: int) -> list[Json]:
        """Up to `limit` allowed updates from the front, without removing them.

        Filtering at fetch time (Telegram filters at creation) means an update enqueued before
        the bot's first getUpdates named its allowed_updates is not lost to that race; a skipped
        update stays queued until an offset passes it.
        """
        batch: list[Json] = []
        for _, kind, update in self._items:
            if len(batch) >= limit:
                break
            if self.is_allowed(kind):
                batch.append(update)
        return batch

    def clear(self) -> None:
        self._items.clear()

    async def wait(self, seconds: float) -> None:
        """Sleep until an update is enqueued, the queue closes, or `seconds` pass."""
        if self.closed:
            return
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        event = self._wakeup
        # A timeout scope, not asyncio.wait_for, which on 3.11 can lose a cancel (bot/outbox.py).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Waiters share one Event per generation, so a put costs one set() however many poll.
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
