"""Escalation in the database: the sweep applies passed deadlines and writes DMs to the outbox."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.buttons import dm_payload
from bot.config import Config, ProjectConfig
from bot.outbox_rows import outbox_values
from bot.texts import Texts, clip
from escalation.chain import ChainSnapshot, Member
from escalation.clock import Clock
from escalation.hazard import CallLevel, Decision, Hazard, Tick, decide
from storage.models import HazardFields, HazardRow, OutboxRow
from storage.repositories import DueHazard, PersonCard, event_values, to_domain
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

# How long a hazard whose step raised waits before the sweep tries it again.
POISON_DELAY = timedelta(minutes=1)


@dataclass
class Lookups:
    """What rendering a batch of calls needs from the database, fetched once per batch."""

    people: dict[int, PersonCard] = field(default_factory=dict)
    acked: dict[int, list[str]] = field(default_factory=dict)
    # @usernames of the chain resolved since the hazard opened (lower case → id): a member
    # written as @username is DMed once the bot has seen that person, even on older hazards.
    usernames: dict[str, int] = field(default_factory=dict)
    # Chats that became supergroups: the config still names the old id (chat id → project).
    moved: dict[int, ProjectConfig] = field(default_factory=dict)
    # Names rendered once per chain level, for the batch or for the tick (see SweepCache).
    names: dict[tuple[int, int], Names] = field(default_factory=dict)
    # The group notice of an escalation around its #N, once per chain level and group.
    notices: dict[tuple[int, int, int], tuple[str, str]] = field(default_factory=dict)

    def uid(self, member: Member) -> int | None:
        if member.user_id is not None:
            return member.user_id
        return self.usernames.get((member.username or "").lower())


class Names(NamedTuple):
    """A chain level's names as its texts show them, rendered once per level and tick."""

    chain: ChainSnapshot  # held, so that the id() in the key cannot be reused meanwhile
    told: list[str]  # everyone below the level
    people: list[str]  # the level's members
    unreachable: list[str]  # members who never pressed Start


@dataclass
class SweepCache:
    """What the batches of one engine tick share: a catch-up meets the same chains and people
    in every batch. Read at the tick's first need, as a single batch's lookups would be."""

    people: dict[int, PersonCard | None] = field(default_factory=dict)
    names: dict[tuple[int, int], Names] = field(default_factory=dict)
    notices: dict[tuple[int, int, int], tuple[str, str]] = field(default_factory=dict)


@dataclass
class Step:
    """One hazard's escalation step, rendered before anything is written."""

    row: DueHazard
    decision: Decision
    events: list[tuple[str, dict[str, Any]]]
    outbox: list[dict[str, Any]]  # outbox_values, inserted in bulk


def _started(person: PersonCard | None) -> bool:
    return person is not None and person.started


def _event(hazard_id: int, kind: str, at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    """An event as EventRepository.append writes it, for a bulk insert."""
    actor_id = actor_name = None
    if "actor_id" in detail or "actor_name" in detail:  # the sweep's own events have neither
        detail = dict(detail)
        actor_id, actor_name = detail.pop("actor_id", None), detail.pop("actor_name", None)
    return event_values(hazard_id, kind, at, actor_id, actor_name, detail)


class Escalator:
    """Applies the core's escalation decisions to hazard rows, with compare-and-set.

    A sweep takes a batch of due rows (locked with SKIP LOCKED on PostgreSQL), fetches what the
    texts need in two queries, renders every step in memory, applies all level changes in one
    compare-and-set statement, and writes the events and outbox rows of the steps that won in
    one bulk insert each (building ORM objects cost more than the rest of a step).
    """

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

    # ---- the sweep ---------------------------------------------------------------------------

    async def sweep(self, limit: int = 500, cache: SweepCache | None = None) -> int:
        """Apply every passed deadline in one batch; returns how many due rows were taken.

        A hazard whose step raises is postponed by POISON_DELAY and logged, so it can never
        block the others or spin the sweep. `cache` is shared by the batches of one engine tick.
        """
        now = self._clock.now()
        async with self._uow() as uow:
            rows = await uow.hazards.due(now, limit)
            if not rows:
                return 0
            lookups = await self._lookups(
                uow, rows, [r.hazard for r in rows if r.hazard], cache=cache
            )
            steps: list[Step] = []
            poisoned: list[tuple[DueHazard, Exception]] = []
            for row in rows:
                try:
                    step = self._render_step(row, now, lookups)
                except Exception as exc:
                    log.exception("hazard %s could not be escalated; postponed", row.id)
                    poisoned.append((row, exc))
                    continue
                if step is not None:
                    steps.append(step)
            won = await uow.hazards.apply_many([(s.row, s.decision.hazard) for s in steps])
            # A step that lost was a stale or duplicate wake-up: someone applied it already.
            winners = [step for step in steps if step.row.id in won]
            await uow.events.append_many(
                [
                    _event(step.row.id, kind, now, detail)
                    for step in winners
                    for kind, detail in step.events
                ]
            )
            await uow.outbox.add_many([item for step in winners for item in step.outbox])
            for row, error in poisoned:
                await uow.hazards.postpone(row.id, now + POISON_DELAY)
                uow.events.append(row.id, "engine_error", now, error=type(error).__name__)
            await uow.commit()
        return len(rows)

    def _render_step(self, row: DueHazard, now: datetime, lookups: Lookups) -> Step | None:
        if row.hazard is None:  # a row that could not be read fails here, alone, and is postponed
            raise row.error or ValueError(f"hazard {row.id} could not be read")
        decision = decide(row.hazard, Tick(), now)
        if not decision.calls:
            return None
        project_cfg = self.config.project_for_chat(row.chat_id) or lookups.moved.get(row.chat_id)
        events: list[tuple[str, dict[str, Any]]] = []
        outbox: list[dict[str, Any]] = []
        for call in decision.calls:
            if call.repeat is not None:
                events.append(
                    (
                        "reminded",
                        {
                            "level": call.level,
                            "repeat": call.repeat,
                            "of": decision.hazard.policy.max_repeats,
                        },
                    )
                )
            else:
                since = call.overdue_since.isoformat() if call.overdue_since else None
                events.append(
                    (
                        "escalated",
                        {
                            "level": call.level,
                            "skipped": list(call.skipped),
                            "overdue_since": since,
                        },
                    )
                )
            outbox += self._render_call(
                row, row.version + 1, decision.hazard, project_cfg, call, now, lookups, events
            )
        return Step(row, decision, events, outbox)

    async def next_deadline(self) -> datetime | None:
        async with self._uow() as uow:
            return await uow.hazards.next_deadline()

    # ---- rendering calls into outbox rows ----------------------------------------------------

    def enqueue_first_call(
        self,
        uow: UnitOfWork,
        row: HazardRow,
        hazard: Hazard,
        project_cfg: ProjectConfig | None,
        call: CallLevel,
        now: datetime,
    ) -> None:
        """Write the DMs of a new hazard's first call (a critical report's), in its transaction.

        Nothing is read: nobody can have acknowledged a hazard not yet committed, and its chain
        was resolved against the people known when it was copied. (Two queries per critical
        report were a fifth of a busy batch's statements: benchmarks/ingest.py.)
        """
        events: list[tuple[str, dict[str, Any]]] = []
        for values in self._render_call(
            row, row.version, hazard, project_cfg, call, now, Lookups(), events
        ):
            uow.outbox.add(values)  # written with the card, in one statement at commit
        for kind, detail in events:
            uow.events.append(row.id, kind, now, **detail)

    async def _lookups(
        self,
        uow: UnitOfWork,
        rows: Sequence[HazardFields],
        hazards: Iterable[Hazard],
        *,
        cache: SweepCache | None = None,
    ) -> Lookups:
        ids: set[int] = set()
        names: set[str] = set()
        # A batch's hazards share few chain snapshots (one per project): walk each once.
        chains = {id(h.chain): h.chain for h in hazards}
        for chain in chains.values():
            for m in chain.members_up_to(chain.top):
                if m.user_id is not None:
                    ids.add(m.user_id)
                elif m.username:
                    names.add(m.username)
        usernames = {
            name.lower(): uid for name, uid in (await uow.people.ids_for_usernames(names)).items()
        }
        wanted = ids | set(usernames.values())
        if cache is None:
            people = await uow.people.cards(wanted)
        else:
            known = cache.people
            if missing := wanted - known.keys():
                found = await uow.people.cards(missing)
                known.update((uid, found.get(uid)) for uid in missing)
            people = {uid: card for uid in wanted if (card := known[uid]) is not None}
        acks = await uow.events.of_kind_for([row.id for row in rows], "acknowledged")
        acked = {
            hazard_id: [f"{e.actor_name or e.actor_id} {self.texts.clock(e.at)}" for e in events]
            for hazard_id, events in acks.items()
        }
        moved: dict[int, ProjectConfig] = {}
        for chat_id in {row.chat_id for row in rows}:
            if self.config.project_for_chat(chat_id) is None:
                old = await uow.projects.migrated_from(chat_id)
                project = self.config.project_for_chat(old) if old is not None else None
                if project is not None:
                    moved[chat_id] = project
        if cache is None:
            return Lookups(people, acked, usernames, moved)
        return Lookups(people, acked, usernames, moved, cache.names, cache.notices)

    def _render_call(
        self,
        row: HazardFields,
        version: int,
        hazard: Hazard,
        project_cfg: ProjectConfig | None,
        call: CallLevel,
        now: datetime,
        lookups: Lookups,
        events: list[tuple[str, dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """The outbox rows of one call: a DM per member, then one group notice."""
        level = hazard.chain.level(call.level)
        project_name = project_cfg.name if project_cfg else str(row.chat_id)
        acked = lookups.acked.get(row.id, [])
        # "Overdue since" is the first deadline nobody met, not the due time of this call.
        first_missed = hazard.due_after(hazard.opened_at, hazard.level_deadline(1))
        overdue = min(call.overdue_since, first_missed) if call.overdue_since else first_missed
        out: list[dict[str, Any]] = []
        for member in level.members:
            uid = lookups.uid(member)
            if uid is None:
                events.append(("unresolved_member", {"username": member.username}))
                continue
            if call.overdue_since is None:
                assert hazard.deadline is not None
                text = self.texts.dm_critical(
                    number=row.number,
                    project=project_name,
                    role=level.role,
                    text=row.text,
                    deadline=hazard.deadline,
                    now=now,
                )
            elif call.repeat is not None:
                text = self.texts.dm_repeat(
                    number=row.number,
                    project=project_name,
                    text=row.text,
                    overdue=overdue,
                    k=call.repeat,
                    of=hazard.policy.max_repeats,
                    acked=acked,
                )
            else:
                told = self._names(hazard, call.level, lookups).told
                text = self.texts.dm_escalation(
                    number=row.number,
                    project=project_name,
                    role=level.role,
                    text=row.text,
                    reporter=row.reporter_name,
                    opened=row.opened_at,
                    overdue=overdue,
                    skipped=call.skipped,
                    told=told,
                    acked=acked,
                )
            out.append(
                outbox_values(
                    row,
                    "dm",
                    "sendPhoto" if row.photo_file_id else "sendMessage",
                    uid,
                    text,
                    now,
                    key=f"{row.id}:v{version}:dm:{uid}",
                    recipient=uid,
                    payload=dm_payload(self.texts, row),  # buttons, and the report's photo
                )
            )
        if call.overdue_since is None:
            return out  # the card already told the group about level 1
        if call.repeat is not None:
            notice = self.texts.group_repeat(
                number=row.number, role=level.role, k=call.repeat, of=hazard.policy.max_repeats
            )
        else:
            # The same for every hazard of the level in this group but for its #N (its chain
            # object is held by the level's Names, so the id in the key is not reused).
            key = (id(hazard.chain), call.level, row.chat_id)
            if (around := lookups.notices.get(key)) is None:
                names = self._names(hazard, call.level, lookups)
                around = self.texts.group_escalated_around_number(
                    level=call.level,
                    role=level.role,
                    people=names.people,
                    unreachable=names.unreachable,
                    start_link=self.start_link(row.chat_id),
                )
                lookups.notices[key] = around
            notice = clip(f"{around[0]}{row.number}{around[1]}")
        out.append(
            outbox_values(
                row,
                "notice",
                "sendMessage",
                row.chat_id,
                notice,
                now,
                key=f"{row.id}:v{version}:notice",
            )
        )
        return out

    def _names(self, hazard: Hazard, level_no: int, lookups: Lookups) -> Names:
        """Who was told below `level_no`, who is on it, and which of them never pressed Start."""
        chain = hazard.chain
        key = (id(chain), level_no)
        if (names := lookups.names.get(key)) is None:
            members = chain.level(level_no).members
            names = Names(
                chain,
                self._labels(chain.members_up_to(level_no - 1), lookups),
                self._labels(members, lookups),
                [
                    self._label(m, lookups)
                    for m in members
                    if not _started(lookups.people.get(lookups.uid(m) or 0))
                ],
            )
            lookups.names[key] = names
        return names

    # ---- delivery failures -------------------------------------------------------------------

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
        uow.outbox.add(
            outbox_values(
                row,
                "unreachable",
                "sendMessage",
                row.chat_id,
                text,
                self._clock.now(),
                key=f"{row.id}:unreachable:{dm.recipient_id}",
            )
        )

    def start_link(self, chat_id: int) -> str:
        return f"https://t.me/{self.bot_username or 'sitewalk_bot'}?start=p{abs(chat_id)}"

    # ---- names -------------------------------------------------------------------------------

    async def labels(self, uow: UnitOfWork, members: Sequence[Member]) -> list[str]:
        return (await self.labels_many(uow, [members]))[0]

    async def labels_many(
        self, uow: UnitOfWork, groups: Sequence[Sequence[Member]]
    ) -> list[list[str]]:
        """`labels` of several groups of members (a batch's cards), read in one query, and
        only for members the config gives no name."""
        unnamed = {m.user_id for ms in groups for m in ms if m.user_id and not m.name}
        lookups = Lookups(await uow.people.cards(unnamed) if unnamed else {})
        return [self._labels(members, lookups) for members in groups]

    async def label(self, uow: UnitOfWork, member: Member) -> str:
        return (await self.labels(uow, [member]))[0]

    @staticmethod
    def _labels(members: Iterable[Member], lookups: Lookups) -> list[str]:
        return [Escalator._label(m, lookups) for m in members]

    @staticmethod
    def _label(member: Member, lookups: Lookups) -> str:
        """The configured name, else the name Telegram gave, else @username or the id."""
        if member.name:
            return member.name
        uid = lookups.uid(member)
        person = lookups.people.get(uid) if uid is not None else None
        if person is not None and person.name:
            return person.name
        return member.label()
