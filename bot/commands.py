"""Slash commands: lists, a hazard's timeline, the chain, dismissal, ids, help, /start, /mine."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.error import TelegramError

from bot.texts import COMMANDS, Keyboard, Texts, clip
from escalation.chain import ChainSnapshot
from escalation.hazard import Dismissed, HazardState, IllegalTransition, decide
from storage.models import HazardRow
from storage.repositories import to_domain
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.service import GroupMessage, HazardService, Sender

log = logging.getLogger(__name__)

# A page holds this many lines, and never more than PAGE_CHARS characters.
PAGE_LINES = 15
PAGE_CHARS = 3500
_NUMBER = re.compile(r"[0-9]{1,7}")  # ASCII only: str.isdigit() also accepts "²"
_START_PAYLOAD = re.compile(r"p([0-9]{1,16})")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a long answer, with the ‹ › buttons that lead to its neighbours."""

    text: str
    keyboard: Keyboard | None = None


def paginate(head: str, lines: Sequence[str]) -> list[str]:
    """Split lines into pages under Telegram's size limit, the head on top of each page."""
    pages: list[list[str]] = [[]]
    size = len(head)
    for line in lines:
        line = clip(line, 500)
        current = pages[-1]
        if current and (len(current) >= PAGE_LINES or size + len(line) + 1 > PAGE_CHARS):
            pages.append([])
            size = len(head)
        pages[-1].append(line)
        size += len(line) + 1
    return ["\n".join([head, *chunk]) if chunk else head for chunk in pages]


class Commands:
    """Each command reads the database once; group answers go through the outbox."""

    def __init__(self, core: HazardService) -> None:
        self._core = core

    @property
    def texts(self) -> Texts:
        return self._core.texts

    # ---- group commands ----------------------------------------------------------------------

    async def hazards(self, msg: GroupMessage) -> None:
        """/hazards: the group's active hazards, with level and time left."""
        await self._answer(msg, await self.page(msg.chat_id, "hz", "", 1))

    async def hazard(self, msg: GroupMessage, args: Sequence[str]) -> None:
        """/hazard N: one hazard's timeline, every event in order."""
        number = _number(args[0]) if args else None
        if number is None:
            await self._answer(msg, Page(self.texts.usage_hazard()))
            return
        page = await self.page(msg.chat_id, "tl", str(number), 1)
        await self._answer(msg, page)

    async def chain(self, msg: GroupMessage) -> None:
        """/chain: roles and people, who can be DMed, and the start link for the others."""
        await self._answer(msg, await self.page(msg.chat_id, "ch", "", 1))

    async def ids(self, msg: GroupMessage, title: str) -> None:
        """/id: the chat's id and the sender's, ready for the TOML."""
        text = self.texts.ids(chat=msg.chat_id, user=msg.sender.user_id, title=title)
        await self._answer(msg, Page(text))

    async def usage_report(self, msg: GroupMessage) -> None:
        await self._answer(msg, Page(self.texts.usage_report()))

    async def help(self, msg: GroupMessage) -> None:
        await self._answer(msg, Page(self.texts.help(private=False)))

    async def dismiss(self, msg: GroupMessage, args: Sequence[str], *, is_admin: bool) -> bool:
        """/dismiss N reason: a false alarm, by the reporter or an admin; True when dismissed."""
        number = _number(args[0]) if args else None
        reason = " ".join(args[1:]).strip()
        core = self._core
        async with core.uow() as uow:
            row = await uow.hazards.by_number(msg.chat_id, number) if number else None
            done = False
            if number is None or not reason:
                text = self.texts.usage_dismiss()
            elif row is None:
                text = self.texts.no_such_hazard(number=number)
            elif not (is_admin or row.reporter_id == msg.sender.user_id):
                text = self.texts.dismiss_denied(number=number)
            else:
                text, done = await self._dismiss(uow, row, msg.sender, reason)
            await core.say(
                uow,
                row if done else None,
                "command",
                msg.chat_id,
                text,
                reply_to=msg.message_id,
                key=f"cmd:{msg.chat_id}:{msg.message_id}",
            )
            await uow.commit()
            return done

    async def _dismiss(
        self, uow: UnitOfWork, row: HazardRow, sender: Sender, reason: str
    ) -> tuple[str, bool]:
        now = self._core.now()
        try:
            decision = decide(to_domain(row), Dismissed(reason), now)
        except IllegalTransition:
            return self.texts.dismiss_state(number=row.number, state=row.state), False
        if not await uow.hazards.apply(row, decision.hazard):
            return self.texts.dismiss_state(number=row.number, state=row.state), False
        who = self._core.name_of(sender)
        uow.events.append(
            row.id, "dismissed", now, actor_id=sender.user_id, actor_name=who, reason=reason
        )
        return self.texts.dismissed(number=row.number, who=who, reason=reason), True

    async def _answer(self, msg: GroupMessage, page: Page) -> None:
        core = self._core
        payload = {"reply_markup": page.keyboard} if page.keyboard else None
        async with core.uow() as uow:
            await core.say(
                uow,
                None,
                "command",
                msg.chat_id,
                page.text,
                reply_to=msg.message_id,
                key=f"cmd:{msg.chat_id}:{msg.message_id}",
                payload=payload,
            )
            await uow.commit()

    # ---- private commands --------------------------------------------------------------------

    async def start(self, sender: Sender, payload: str | None) -> str:
        """/start [pCHAT]: the person can be DMed from now on, and is tied to the link's project."""
        core = self._core
        now = core.now()
        async with core.uow() as uow:
            await uow.people.mark_started(sender.user_id, sender.username, sender.name, now)
            text = self.texts.started(name=sender.name)
            if payload:
                match = _START_PAYLOAD.fullmatch(payload)
                chat_id = -int(match.group(1)) if match else None
                project = await core.project_in(uow, chat_id) if chat_id else None
                if project is None:
                    text = self.texts.start_bad_link(name=sender.name)
                else:
                    await uow.people.bind(project.chat_id, sender.user_id, now)
                    chain = project.snapshot()
                    roles = [
                        self.texts.role_at(role=level.role, k=k)
                        for k, level in enumerate(chain.levels, 1)
                        if any(m.matches(sender.user_id, sender.username) for m in level.members)
                    ]
                    text = (
                        self.texts.start_bound(name=sender.name, project=project.name, roles=roles)
                        if roles
                        else self.texts.start_outside(
                            name=sender.name, project=project.name, user=sender.user_id
                        )
                    )
            await uow.commit()
        return text

    async def mine(self, sender: Sender, page: int = 1) -> Page:
        """/mine: open hazards that have called this person, across projects."""
        return await self.page(sender.user_id, "mine", "", page, sender=sender)

    def help_private(self) -> str:
        return self.texts.help(private=True)

    # ---- pages -------------------------------------------------------------------------------

    async def page(
        self, chat_id: int, kind: str, arg: str, number: int, *, sender: Sender | None = None
    ) -> Page:
        """Page `number` of a paged answer; the same call serves the ‹ › buttons."""
        async with self._core.uow() as uow:
            if kind == "hz":
                pages = await self._hazard_pages(uow, chat_id)
            elif kind == "tl" and (hazard := _number(arg)) is not None:
                pages = await self._timeline_pages(uow, chat_id, hazard)
            elif kind == "ch":
                pages = await self._chain_pages(uow, chat_id)
            elif kind == "mine" and sender is not None:
                pages = await self._mine_pages(uow, sender)
            else:
                pages = []
        if not pages or not 1 <= number <= len(pages):
            return Page(self.texts.page_gone())
        text = pages[number - 1]
        if len(pages) > 1:
            text += "\n" + self.texts.page_footer(k=number, of=len(pages))
        prefix = f"pg:{kind}:{arg}"
        return Page(text, self.texts.page_keyboard(prefix=prefix, page=number, pages=len(pages)))

    async def _hazard_pages(self, uow: UnitOfWork, chat_id: int) -> list[str]:
        rows = await uow.hazards.active_in_chat(chat_id)
        now = self._core.now()
        lines = []
        for row in rows:
            chain = ChainSnapshot.from_json(row.chain)
            lines.append(
                self.texts.hazard_line(
                    number=row.number,
                    state=row.state,
                    level=row.level,
                    role=chain.level(row.level).role,
                    left=row.deadline - now if row.deadline else None,
                    text=row.text,
                )
            )
        return paginate(self.texts.hazards_head(count=len(rows)), lines)

    async def _timeline_pages(self, uow: UnitOfWork, chat_id: int, number: int) -> list[str]:
        row = await uow.hazards.by_number(chat_id, number)
        if row is None:
            return [self.texts.no_such_hazard(number=number)]
        events = await uow.events.for_hazard(row.id)
        lines = [
            self.texts.event_line(at=e.at, kind=e.kind, actor=e.actor_name, detail=e.detail)
            for e in events
        ]
        acked = [
            f"{e.actor_name or e.actor_id} {self.texts.clock(e.at)}"
            for e in events
            if e.kind == "acknowledged"
        ]
        if acked:
            lines.append(self.texts.timeline_acked(acked))
        head = self.texts.timeline_head(
            number=row.number, state=row.state, level=row.level, text=row.text
        )
        return paginate(head, lines)

    async def _chain_pages(self, uow: UnitOfWork, chat_id: int) -> list[str]:
        project = await self._core.project_in(uow, chat_id)
        if project is None:
            return []
        chain = project.snapshot()
        members = list(chain.members_up_to(chain.top))
        names = [m.username for m in members if m.user_id is None and m.username]
        chain = chain.with_resolved(await uow.people.ids_for_usernames(names))
        ids = [m.user_id for m in chain.members_up_to(chain.top) if m.user_id is not None]
        people = await uow.people.get_many(ids)
        labels = await self._core.escalator.labels(uow, list(chain.members_up_to(chain.top)))
        lines: list[str] = []
        index = 0
        any_missing = False
        for k, level in enumerate(chain.levels, 1):
            marked = []
            for member in level.members:
                person = people.get(member.user_id) if member.user_id is not None else None
                reachable = bool(person and person.started)
                any_missing = any_missing or not reachable
                marked.append((labels[index], reachable))
                index += 1
            lines.append(
                self.texts.chain_level(k=k, role=level.role, deadline=level.deadline, people=marked)
            )
        lines.append(self.texts.chain_legend())
        if any_missing:
            lines.append(self.texts.chain_start(link=self._core.escalator.start_link(chat_id)))
        return paginate(self.texts.chain_head(project=project.name), lines)

    async def _mine_pages(self, uow: UnitOfWork, sender: Sender) -> list[str]:
        now = self._core.now()
        lines = []
        for row in await uow.hazards.all_active():
            if row.state is not HazardState.OPEN:
                continue
            chain = ChainSnapshot.from_json(row.chain)
            if not chain.includes(sender.user_id, sender.username, up_to=row.level):
                continue
            project = await self._core.project_in(uow, row.chat_id)
            lines.append(
                self.texts.mine_line(
                    number=row.number,
                    project=project.name if project else str(row.chat_id),
                    level=row.level,
                    left=row.deadline - now if row.deadline else None,
                    text=row.text,
                )
            )
        return paginate(self.texts.mine_head(count=len(lines)), lines)


def _number(arg: str) -> int | None:
    """ "3" or "#3" → 3; anything else is not a hazard number."""
    text = arg.strip().removeprefix("#")
    return int(text) if _NUMBER.fullmatch(text) else None


async def publish_commands(bot: Bot, language: str) -> None:
    """setMyCommands for groups and private chats, in zh and en, and the default language.

    A failure is logged, not raised: the bot works without the command menu.
    """
    scopes = {"group": BotCommandScopeAllGroupChats(), "private": BotCommandScopeAllPrivateChats()}
    try:
        for name, scope in scopes.items():
            for code in ("zh", "en"):
                commands = [BotCommand(c, d) for c, d in COMMANDS[name][code]]
                await bot.set_my_commands(commands, scope=scope, language_code=code)
            default = [BotCommand(c, d) for c, d in COMMANDS[name][language]]
            await bot.set_my_commands(default, scope=scope)
    except TelegramError as exc:
        log.warning("could not publish the command menu: %s", exc)
