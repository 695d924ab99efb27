"""Escalation in the database: the sweep applies passed deadlines and writes DMs to the outbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.config import Config, ProjectConfig
from bot.outbox_rows import enqueue_message
from bot.texts import Texts
from escalation.chain import Member
from escalation.clock import Clock
from escalation.hazard import CallLevel, Tick, decide
from storage.models import HazardRow, OutboxRow
from storage.repositories import to_domain
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# How long a hazard whose step raised waits before the sweep tries it again.
POISON_DELAY = timedelta(minutes=1)


class Escalator:
    """Applies the core's escalation decisions to hazard rows, with compare-and-set."""

    def __init__(
        self,
        config: Config,
        uow: UnitOfWorkFactory,
        clock: Clock,
        texts: Texts,
        *,
        bot_username: str = "",
    ) -> None:
        self.config = config
        self._uow = uow
        self._clock = clock
        self.texts = texts
        self.bot_username = bot_username

    # ---- escalation --------------------------------------------------------------------------

    async def sweep(self, limit: int = 200) -> int:
        """Apply every passed deadline; returns how many rows were taken (escalated or not).

        Each hazard gets its own savepoint: one that fails is rolled back alone, postponed by
        POISON_DELAY and logged, so it can never block the others or spin the sweep.
        """
        now = self._clock.now()
        taken = 0
        async with self._uow() as uow:
            rows = await uow.hazards.list_due(now, limit)
            for row in rows:
                taken += 1
                try:
                    async with uow.savepoint():
                        await self._step(uow, row, now)
                except Exception as exc:
                    log.exception("hazard %s could not be escalated; postponed", row.id)
                    async with uow.savepoint():
                        await uow.hazards.postpone(row.id, now + POISON_DELAY)
                        uow.events.append(row.id, "engine_error", now, error=type(exc).__name__)
            await uow.commit()
        return taken

    async def _step(self, uow: UnitOfWork, row: HazardRow, now: datetime) -> bool:
        decision = decide(to_domain(row), Tick(), now)
        if not decision.calls:
            return False
        if not await uow.hazards.apply(row, decision.hazard):
            return False  # a stale or duplicate wake-up: someone applied this step already
        project_cfg = self.config.project_for_chat(row.chat_id)
        for call in decision.calls:
            if call.repeat is not None:
                uow.events.append(
                    row.id,
                    "reminded",
                    now,
                    level=call.level,
                    repeat=call.repeat,
                    of=decision.hazard.policy.max_repeats,
                )
            else:
                uow.events.append(
                    row.id,
                    "escalated",
                    now,
                    level=call.level,
                    skipped=list(call.skipped),
                    overdue_since=call.overdue_since.isoformat() if call.overdue_since else None,
                )
            await self.enqueue_call(uow, row, project_cfg, call, now)
        return True

    async def next_deadline(self) -> datetime | None:
        async with self._uow() as uow:
            return await uow.hazards.next_deadline()

    async def enqueue_call(
        self,
        uow: UnitOfWork,
        row: HazardRow,
        project_cfg: ProjectConfig | None,
        call: CallLevel,
        now: datetime,
    ) -> None:
        hazard = to_domain(row)
        level = hazard.chain.level(call.level)
        project_name = project_cfg.name if project_cfg else str(row.chat_id)
        acked = await self._acked(uow, row.id)
        ids = [m.user_id for m in level.members if m.user_id is not None]
        people = await uow.people.get_many(ids)
        for member in level.members:
            if member.user_id is None:
                uow.events.append(row.id, "unresolved_member", now, username=member.username)
                continue
            if call.overdue_since is None:
                assert hazard.deadline is not None
                text = self.texts.dm_critical(
                    number=row.number,
                    project=project_name,
                    role=level.role,
                    text=row.text,
                    deadline=hazard.deadline,
                )
            elif call.repeat is not None:
                text = self.texts.dm_repeat(
                    number=row.number,
                    project=project_name,
                    text=row.text,
                    overdue=call.overdue_since,
                    k=call.repeat,
                    of=hazard.policy.max_repeats,
                    acked=acked,
                )
            else:
                told = await self.labels(uow, list(hazard.chain.members_up_to(call.level - 1)))
                text = self.texts.dm_escalation(
                    number=row.number,
                    project=project_name,
                    role=level.role,
                    text=row.text,
                    reporter=row.reporter_name,
                    opened=row.opened_at,
                    overdue=call.overdue_since,
                    skipped=call.skipped,
                    told=told,
                    acked=acked,
                )
            enqueue_message(
                uow,
                row,
                "dm",
                member.user_id,
                text,
                now,
                key=f"{row.id}:v{row.version}:dm:{member.user_id}",
                recipient=member.user_id,
            )
        if call.overdue_since is None:
            return  # the card already told the group about level 1
        if call.repeat is not None:
            notice = self.texts.group_repeat(
                number=row.number, role=level.role, k=call.repeat, of=hazard.policy.max_repeats
            )
        else:
            unreachable = [
                await self.label(uow, m)
                for m in level.members
                if m.user_id is None or not (people.get(m.user_id) and people[m.user_id].started)
            ]
            notice = self.texts.group_escalated(
                number=row.number,
                level=call.level,
                role=level.role,
                people=await self.labels(uow, level.members),
                unreachable=unreachable,
                start_link=self.start_link(row.chat_id),
            )
        enqueue_message(
            uow, row, "notice", row.chat_id, notice, now, key=f"{row.id}:v{row.version}:notice"
        )

    async def dm_refused(self, uow: UnitOfWork, dm: OutboxRow) -> None:
        """A supervisor we could DM before now refuses (blocked the bot): tell the group, once."""
        if dm.purpose != "dm" or dm.hazard_id is None or dm.recipient_id is None:
            return
        row = await uow.hazards.get(dm.hazard_id)
        if row is None:
            return
        member = next(
            (
                m
                for m in to_domain(row).chain.members_up_to(row.level)
                if m.user_id == dm.recipient_id
            ),
            Member(dm.recipient_id),
        )
        label = await self.label(uow, member)
        text = self.texts.group_unreachable(people=[label], start_link=self.start_link(row.chat_id))
        enqueue_message(
            uow,
            row,
            "unreachable",
            row.chat_id,
            text,
            self._clock.now(),
            key=f"{row.id}:unreachable:{dm.recipient_id}",
        )

    def start_link(self, chat_id: int) -> str:
        return f"https://t.me/{self.bot_username or 'sitewalk_bot'}?start=p{abs(chat_id)}"

    async def _acked(self, uow: UnitOfWork, hazard_id: int) -> list[str]:
        """Who only typed 收到, with the time, for the DMs and the timeline."""
        return [
            f"{e.actor_name or e.actor_id} {self.texts.clock(e.at)}"
            for e in await uow.events.of_kind(hazard_id, "acknowledged")
        ]

    async def labels(self, uow: UnitOfWork, members: Sequence[Member]) -> list[str]:
        return [await self.label(uow, m) for m in members]

    async def label(self, uow: UnitOfWork, member: Member) -> str:
        if member.name:
            return member.name
        if member.user_id is not None:
            person = (await uow.people.get_many([member.user_id])).get(member.user_id)
            if person is not None and person.name:
                return person.name
        return member.label()
