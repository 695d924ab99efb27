"""The application service: turns group events into hazard decisions, stored with their outbox."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from bot.buttons import Buttons
from bot.commands import Commands
from bot.config import Config, ProjectConfig
from bot.escalator import Escalator
from bot.membership import Membership
from bot.outbox_rows import enqueue_message, enqueue_reaction
from escalation.chain import ChainSnapshot
from escalation.classifier import Classification, Severity
from escalation.clock import Clock
from escalation.evidence import EvidenceInput, EvidenceKind, Refusal, Site, judge_evidence
from escalation.hazard import (
    ACTIVE_STATES,
    Decision,
    HazardState,
    SiteEvidence,
    decide,
    open_hazard,
)
from storage.models import EvidenceRow, HazardRow
from storage.repositories import Referred, policy_to_json, to_domain
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

_HASH_NUMBER = re.compile(r"#\s?([0-9]{1,7})")
SEEN_EMOJI = "👀"
# A bare 收到 that replies to nothing still counts as an answer to the one open hazard when a
# chain member types it this soon after the card. Config key to add: defaults.ack_window.
ACK_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a message, as far as the core and the texts care.

    `anonymous` marks an anonymous group admin: Telegram shows the group, not the person, so
    the id is @GroupAnonymousBot's and nobody can tell which admin it was.
    """

    user_id: int
    username: str | None
    name: str
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class GroupMessage:
    """A message in a chat (a group, or a private chat with the bot), as the services see it."""

    chat_id: int
    message_id: int
    sender: Sender
    reply_to: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Photo:
    """The largest size of a photo: its id to send it again, its unique id to spot re-use."""

    file_id: str
    file_unique_id: str


@dataclass(frozen=True, slots=True)
class Reported:
    """A registered report: its #N, and the deadline it set (None when registered before)."""

    number: int
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class ReportToWrite:
    """A hazard report waiting in a batch (`record_many`), with when it came."""

    msg: GroupMessage
    classification: Classification
    at: datetime
    photo: Photo | None = None  # a report made as a photo's caption


@dataclass(frozen=True, slots=True)
class AckToWrite:
    """A bare 收到 waiting in a batch (`record_many`), with when it came."""

    msg: GroupMessage
    at: datetime


GroupWrite = ReportToWrite | AckToWrite


class _Opened(NamedTuple):
    """A hazard row a report of the batch inserted, with what its card and calls need."""

    row: HazardRow
    decision: Decision
    project: ProjectConfig
    labels: list[str]  # level 1's people as the card names them


@dataclass(frozen=True, slots=True)
class Evidence:
    """A photo or location as the handlers read it; `live` for a live location."""

    input: EvidenceInput
    live: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self.input), "kind": str(self.input.kind), "live": self.live}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        fields = {k: v for k, v in data.items() if k != "live"}
        fields["kind"] = EvidenceKind(fields["kind"])
        return cls(EvidenceInput(**fields), bool(data.get("live")))


class AckOutcome(StrEnum):
    REMINDED = "reminded"
    REACTED = "reacted"
    NOT_A_HAZARD_REPLY = "not_a_hazard_reply"
    ALREADY_RECORDED = "already_recorded"  # delivered again after a restart: answered before


class EvidenceOutcome(StrEnum):
    ON_SITE = "on_site"
    EXTRA = "extra"
    REFUSED = "refused"
    ASKED = "asked"
    NO_HAZARD = "no_hazard"
    ALREADY = "already"


def hazard_number_in(text: str | None) -> int | None:
    """The N of a `#N` written in a caption or text."""
    match = _HASH_NUMBER.search(text or "")
    return int(match.group(1)) if match else None


class HazardService:
    """One method per thing that can happen; each is one transaction, outbox included.

    Commands, buttons and membership changes live in their own classes, reached from here so
    that every handler needs only `runtime.service`.
    """

    def __init__(
        self, config: Config, uow: UnitOfWorkFactory, clock: Clock, escalator: Escalator
    ) -> None:
        self.config = config
        self._uow = uow
        self._clock = clock
        self.escalator = escalator
        self.texts = escalator.texts
        self.commands = Commands(self)
        self.buttons = Buttons(self)
        self.membership = Membership(self)

    # ---- shared with the command, button and membership services ----------------------------

    def uow(self) -> UnitOfWork:
        return self._uow()

    def now(self) -> datetime:
        return self._clock.now()

    async def project_for(self, chat_id: int) -> ProjectConfig | None:
        """The configured project of a chat, following a group that became a supergroup."""
        project = self.config.project_for_chat(chat_id)
        if project is not None:
            return project
        async with self._uow() as uow:
            return await self.project_in(uow, chat_id)

    async def project_in(self, uow: UnitOfWork, chat_id: int) -> ProjectConfig | None:
        project = self.config.project_for_chat(chat_id)
        if project is not None:
            return project
        old = await uow.projects.migrated_from(chat_id)
        return None if old is None else self.config.project_for_chat(old)

    async def say(
        self,
        uow: UnitOfWork,
        row: HazardRow | None,
        purpose: str,
        chat_id: int,
        text: str,
        *,
        key: str,
        reply_to: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Write a message to the outbox unless this delivery was written before (a redelivery)."""
        if await uow.outbox.has_key(key):
            return False
        recipient = chat_id if chat_id > 0 else None
        enqueue_message(
            uow,
            row,
            purpose,
            chat_id,
            text,
            self._clock.now(),
            key=key,
            reply_to=reply_to,
            recipient=recipient,
            payload=payload,
        )
        return True

    def name_of(self, sender: Sender) -> str:
        return self.texts.anonymous() if sender.anonymous else sender.name

    async def seen(self, uow: UnitOfWork, sender: Sender) -> None:
        if not sender.anonymous:
            await uow.people.seen(sender.user_id, sender.username, sender.name, self.now())

    # ---- a batch of group messages ------------------------------------------------------------

    async def record_many(self, items: Sequence[GroupWrite]) -> list[Reported | AckOutcome | None]:
        """Reports and bare 收到, in the order they came, in one transaction (`bot/batches.py`)."""
        async with self._uow() as uow:
            outcomes = await self.record_in(uow, items)
            await uow.commit()
        return outcomes

    async def record_in(
        self, uow: UnitOfWork, items: Sequence[GroupWrite]
    ) -> list[Reported | AckOutcome | None]:
        """`record_many` in the caller's transaction, not committed.

        Each item is written as it would have been alone, and sees what the items before it
        wrote: a 收到 replying to a report of the same batch finds it. The batch's statements are
        shared, set by set: one lookup of the messages reports and 收到 refer to, one statement
        taking the #N of every project, one insert of the hazards, one upsert of senders. A
        statement per report or per 收到 was most of what a busy group cost (benchmarks/ingest.py).
        Events and outbox rows are then written in the order the items came.
        """
        reports = [(i, item) for i, item in enumerate(items) if isinstance(item, ReportToWrite)]
        acks = [(i, item) for i, item in enumerate(items) if isinstance(item, AckToWrite)]
        referred = await uow.hazards.by_messages(
            {(r.msg.chat_id, r.msg.message_id) for _, r in reports}
            | {(a.msg.chat_id, a.msg.reply_to) for _, a in acks if a.msg.reply_to is not None}
        )
        known = referred.hazards
        outcomes: list[Reported | AckOutcome | None] = [None] * len(items)
        senders: dict[int, Sender] = {}  # to record as seen, at the end
        opened = await self._open_hazards(uow, reports, known, outcomes, senders)
        targets, again = await self._ack_targets(uow, acks, referred, opened)
        for index, item in enumerate(items):
            if isinstance(item, ReportToWrite):
                if (new := opened.get(index)) is not None:
                    outcomes[index] = self._announce(uow, item, new)
            elif index in again:
                # Committed before a restart, and delivered again because it was never confirmed
                # (or twice in this batch): recorded and answered already, so neither happens twice.
                outcomes[index] = AckOutcome.ALREADY_RECORDED
            elif (row := targets.get(index)) is not None:
                senders[item.msg.sender.user_id] = item.msg.sender
                outcomes[index] = self._acknowledged(uow, row, item.msg, item.at)
            else:
                outcomes[index] = AckOutcome.NOT_A_HAZARD_REPLY
        await self._seen_all(uow, senders.values())
        return outcomes

    async def _seen_all(self, uow: UnitOfWork, senders: Iterable[Sender]) -> None:
        people = [(s.user_id, s.username, s.name) for s in senders if not s.anonymous]
        await uow.people.seen_many(people, self.now())

    # ---- reports -----------------------------------------------------------------------------

    async def report(
        self, msg: GroupMessage, classification: Classification, photo: Photo | None = None
    ) -> Reported | None:
        """Register a hazard report as #N and reply with its card; None for unknown groups."""
        item = ReportToWrite(msg, classification, self._clock.now(), photo)
        (outcome,) = await self.record_many([item])
        assert outcome is None or isinstance(outcome, Reported)
        return outcome

    async def _open_hazards(
        self,
        uow: UnitOfWork,
        reports: Sequence[tuple[int, ReportToWrite]],
        known: dict[tuple[int, int], HazardRow],
        outcomes: list[Reported | AckOutcome | None],
        senders: dict[int, Sender],
    ) -> dict[int, _Opened]:
        """The hazard rows of the batch's new reports, inserted, by the index of their report.

        A report of an unknown group stays None in `outcomes`; one registered before (a
        redelivery, or the same update twice in the batch) gets its #N there and no deadline.
        `known` gains the new rows, so the 收到 after them find them. Their reporters join
        `senders`, unless they are recorded as seen at once.
        """
        new: list[tuple[int, ReportToWrite, ProjectConfig]] = []
        registered: list[tuple[int, tuple[int, int]]] = []
        keys: set[tuple[int, int]] = set()
        for index, report in reports:
            project_cfg = await self.project_in(uow, report.msg.chat_id)
            if project_cfg is None:
                continue
            key = (report.msg.chat_id, report.msg.message_id)
            if key in known or key in keys:
                registered.append((index, key))
            else:
                keys.add(key)
                new.append((index, report, project_cfg))
        opened = await self._insert_hazards(uow, new, senders) if new else {}
        for index, report in reports:
            if (new_one := opened.get(index)) is not None:
                known[report.msg.chat_id, report.msg.message_id] = new_one.row
        for index, key in registered:
            outcomes[index] = Reported(known[key].number, None)
        return opened

    async def _insert_hazards(
        self,
        uow: UnitOfWork,
        new: Sequence[tuple[int, ReportToWrite, ProjectConfig]],
        senders: dict[int, Sender],
    ) -> dict[int, _Opened]:
        """Rows for new reports, numbered and flushed in a few statements shared by all."""
        chains = [cfg.snapshot() for _, _, cfg in new]
        unresolved = {
            m.username for c in chains for m in c.members_up_to(c.top) if m.user_id is None
        } - {None}
        reporters = {r.msg.sender.user_id: r.msg.sender for _, r, _ in new}
        if unresolved or any(not m.name for c in chains for m in c.level(1).members):
            # People are read below, and a reporter may be one of them: seen first, as alone.
            await self._seen_all(uow, reporters.values())
        else:
            senders.update(reporters)
        wanted = Counter(r.msg.chat_id for _, r, _ in new)
        names = {r.msg.chat_id: cfg.name for _, r, cfg in new}
        numbers = await uow.projects.take_numbers(
            {chat: (names[chat], count) for chat, count in wanted.items()}, new[0][1].at
        )
        if unresolved:
            resolved = await uow.people.ids_for_usernames(u for u in unresolved if u)
            chains = [c.with_resolved(resolved) for c in chains]
        labels = await self.escalator.labels_many(uow, [c.level(1).members for c in chains])
        opened: dict[int, _Opened] = {}
        taken = {chat: first for chat, (_, first) in numbers.items()}
        for (index, report, project_cfg), chain, level1 in zip(new, chains, labels, strict=True):
            chat_id = report.msg.chat_id
            number, taken[chat_id] = taken[chat_id], taken[chat_id] + 1
            row, decision = self._hazard_row(
                report, project_cfg, numbers[chat_id][0], number, chain
            )
            uow.hazards.add(row)
            opened[index] = _Opened(row, decision, project_cfg, level1)
        await uow.hazards.flush()
        return opened

    def _hazard_row(
        self,
        report: ReportToWrite,
        project_cfg: ProjectConfig,
        project_id: int,
        number: int,
        chain: ChainSnapshot,
    ) -> tuple[HazardRow, Decision]:
        msg, now = report.msg, report.at
        critical = report.classification.severity is Severity.CRITICAL
        decision = open_hazard(
            number=number,
            chain=chain,
            policy=self.config.policy(project_cfg, now),  # working hours included
            critical=critical,
            now=now,
        )
        hazard = decision.hazard
        row = HazardRow(
            project_id=project_id,
            number=number,
            chat_id=msg.chat_id,
            report_message_id=msg.message_id,
            reporter_id=msg.sender.user_id,
            reporter_name=self.name_of(msg.sender),
            text=msg.text,
            category=report.classification.category,
            critical=critical,
            state=hazard.state,
            level=hazard.level,
            deadline=hazard.deadline,
            opened_at=now,
            repeats=0,
            version=0,
            chain=chain.to_json(),
            policy=policy_to_json(hazard.policy),
            ack_reminded=False,
            photo_file_id=report.photo.file_id if report.photo else None,
        )
        return row, decision

    def _announce(self, uow: UnitOfWork, report: ReportToWrite, opened: _Opened) -> Reported:
        """A new hazard's event, card and first calls, written where its report came."""
        row, decision, classification = opened.row, opened.decision, report.classification
        msg, now, photo = report.msg, report.at, report.photo
        uow.events.append(
            row.id,
            "reported",
            now,
            actor_id=msg.sender.user_id,
            actor_name=row.reporter_name,
            message_id=msg.message_id,
            matched=list(classification.matched),
            severity=str(classification.severity),
        )
        if photo is not None:
            # The report's own photo can never prove a visit later.
            uow.evidence.add(
                EvidenceRow(
                    hazard_id=row.id,
                    kind="report_photo",
                    user_id=msg.sender.user_id,
                    chat_id=msg.chat_id,
                    message_id=msg.message_id,
                    file_unique_id=photo.file_unique_id,
                    accepted=False,
                    at=now,
                )
            )
        hazard = decision.hazard
        assert hazard.deadline is not None
        card = self.texts.card(
            number=row.number,
            text=msg.text,
            category=classification.category,
            critical=row.critical,
            role=hazard.chain.level(1).role,
            people=opened.labels,
            deadline=hazard.deadline,
            now=now,
        )
        # Not `say`: the row is new in this transaction, so no delivery has its key yet.
        enqueue_message(
            uow,
            row,
            "card",
            msg.chat_id,
            card,
            now,
            key=f"{row.id}:card",
            reply_to=msg.message_id,
            payload={"photo": photo.file_id} if photo else None,
        )
        for call in decision.calls:
            if call.dm:
                self.escalator.enqueue_first_call(uow, row, hazard, opened.project, call, now)
        return Reported(row.number, hazard.deadline)

    # ---- acknowledgements --------------------------------------------------------------------

    async def _ack_targets(
        self,
        uow: UnitOfWork,
        acks: Sequence[tuple[int, AckToWrite]],
        referred: Referred,
        opened: dict[int, _Opened],
    ) -> tuple[dict[int, HazardRow], set[int]]:
        """The hazard each 收到 answers, by its index, and which 收到 were recorded before.

        A 收到 to a hazard is recorded; one reminder per hazard, then only a reaction. It answers
        a hazard when it replies to the report or the card, or when a chain member types it
        within ACK_WINDOW of the card while the group has exactly one open hazard (a report of
        the batch made after the 收到 does not count). One already recorded (Telegram delivers
        it again after a restart) is skipped: the 收到 recorded for the hazards replied to came
        with them, those for a hazard found otherwise are read in one query.
        """
        opened_by = {new.row.id: index for index, new in opened.items()}
        targets: dict[int, HazardRow] = {}
        # The open hazards of every chat with a bare 收到, in one query (the batch's new ones
        # included: they are flushed); a 收到 changes no hazard's state, so one read serves all.
        bare = {ack.msg.chat_id for _, ack in acks if ack.msg.reply_to is None}
        open_by_chat = await uow.hazards.open_in_chats(bare)
        for index, ack in acks:
            msg = ack.msg
            if msg.reply_to is not None:
                row = referred.hazards.get((msg.chat_id, msg.reply_to))
                if row is not None and row.state is HazardState.OPEN:
                    targets[index] = row
            else:
                open_rows = [
                    r
                    for r in open_by_chat.get(msg.chat_id, [])
                    if opened_by.get(r.id, -1) < index
                ]
                if (row := self._unreplied_ack_target(open_rows, msg, ack.at)) is not None:
                    targets[index] = row
        looked_up = {r.id for r in referred.hazards.values()} | opened_by.keys()
        recorded = referred.acknowledged | await uow.events.acknowledged_messages(
            {r.id for r in targets.values()} - looked_up  # a bare 收到's hazard
        )
        again = set()
        for index, ack in acks:
            if (row := targets.get(index)) is not None:
                key = (row.id, ack.msg.message_id)
                if key in recorded:
                    again.add(index)
                recorded.add(key)  # the same 收到 twice in this batch counts once
        return targets, again

    def _acknowledged(
        self, uow: UnitOfWork, row: HazardRow, msg: GroupMessage, now: datetime
    ) -> AckOutcome:
        uow.events.append(
            row.id,
            "acknowledged",
            now,
            actor_id=msg.sender.user_id,
            actor_name=self.name_of(msg.sender),
            text=msg.text,
            message_id=msg.message_id,
        )
        if not row.ack_reminded:
            uow.hazards.remind(row)
            left = (row.deadline - now) if row.deadline else timedelta(0)
            text = self.texts.ack_reminder(number=row.number, left=left)
            # Not `say`: this key is written only here, in the transaction that sets
            # ack_reminded, so a hazard not yet reminded cannot have it (its lookup was a
            # statement per reminder).
            enqueue_message(
                uow,
                row,
                "ack_reminder",
                msg.chat_id,
                text,
                now,
                key=f"{row.id}:ack_reminder",
                reply_to=msg.message_id,
            )
            return AckOutcome.REMINDED
        enqueue_reaction(
            uow,
            row,
            msg.chat_id,
            msg.message_id,
            SEEN_EMOJI,
            now,
            key=f"{row.id}:react:{msg.message_id}",
        )
        return AckOutcome.REACTED

    @staticmethod
    def _unreplied_ack_target(
        open_rows: Sequence[HazardRow], msg: GroupMessage, now: datetime
    ) -> HazardRow | None:
        """The hazard a 收到 that replies to nothing answers, if any (see `_ack_targets`)."""
        if len(open_rows) != 1:
            return None
        row = open_rows[0]
        chain = ChainSnapshot.from_json(row.chain)
        in_chain = chain.includes(msg.sender.user_id, msg.sender.username, up_to=chain.top)
        recent = now - row.opened_at <= ACK_WINDOW
        return row if in_chain and recent and not msg.sender.anonymous else None

    # ---- evidence ----------------------------------------------------------------------------

    async def evidence(
        self, msg: GroupMessage, evidence: Evidence, caption: str | None = None
    ) -> EvidenceOutcome:
        """A photo or location in the group: judged against the hazard it belongs to.

        The hazard is the one replied to, else the `#N` in the caption, else the group's only
        open hazard; with several open, the sender is asked with buttons. Media from people who
        could never count, without an explicit target, is ordinary chat and stays unanswered.
        """
        now = self._clock.now()
        async with self._uow() as uow:
            project_cfg = await self.project_in(uow, msg.chat_id)
            if project_cfg is None:
                return EvidenceOutcome.NO_HAZARD
            if await uow.evidence.for_message(msg.chat_id, msg.message_id) is not None:
                return EvidenceOutcome.ALREADY
            row = await self._replied_hazard(uow, msg)
            number = hazard_number_in(caption) if row is None else None
            if row is None and number is not None:
                row = await uow.hazards.by_number(msg.chat_id, number)
                if row is None:
                    await self.say(
                        uow,
                        None,
                        "no_such_hazard",
                        msg.chat_id,
                        self.texts.no_such_hazard(number=number),
                        reply_to=msg.message_id,
                        key=f"nohazard:{msg.chat_id}:{msg.message_id}",
                    )
                    await uow.commit()
                    return EvidenceOutcome.NO_HAZARD
            if row is None:
                open_rows = await uow.hazards.open_in_chat(msg.chat_id)
                anyone = self._anyone(project_cfg)
                eligible = [r for r in open_rows if anyone or _in_chain(r, msg.sender)]
                if not eligible:
                    return EvidenceOutcome.NO_HAZARD
                if len(open_rows) > 1:
                    await self._ask(uow, msg, evidence, eligible)
                    await uow.commit()
                    return EvidenceOutcome.ASKED
                row = open_rows[0]
            if row.state not in ACTIVE_STATES:
                return EvidenceOutcome.NO_HAZARD
            outcome = await self._judge(uow, row, msg, evidence, project_cfg, now)
            await uow.commit()
            return outcome

    async def evidence_by_dm(self, msg: GroupMessage, evidence: Evidence) -> EvidenceOutcome:
        """A photo or location sent to the bot in a DM, as a reply to a hazard's DM."""
        now = self._clock.now()
        async with self._uow() as uow:
            if await uow.evidence.for_message(msg.chat_id, msg.message_id) is not None:
                return EvidenceOutcome.ALREADY
            source = (
                await uow.outbox.by_sent_message(msg.chat_id, msg.reply_to)
                if msg.reply_to is not None
                else None
            )
            row = (
                await uow.hazards.get(source.hazard_id)
                if source is not None and source.hazard_id is not None
                else None
            )
            project_cfg = await self.project_in(uow, row.chat_id) if row is not None else None
            if row is None or project_cfg is None:
                if not self._in_some_chain(msg.sender):
                    return EvidenceOutcome.NO_HAZARD  # a stranger's photo: not ours to answer
                text = self.texts.dm_evidence_hint()
            elif row.state not in ACTIVE_STATES:
                text = self.texts.button_inactive(number=row.number, state=row.state)
            else:
                outcome = await self._judge(uow, row, msg, evidence, project_cfg, now, by_dm=True)
                await uow.commit()
                return outcome
            await self.say(
                uow,
                None,
                "dm_hint",
                msg.chat_id,
                text,
                reply_to=msg.message_id,
                key=f"dmhint:{msg.chat_id}:{msg.message_id}",
            )
            await uow.commit()
            return EvidenceOutcome.NO_HAZARD

    async def choose_hazard(
        self, chat_id: int, question_id: int, presser: Sender, number: int
    ) -> tuple[str, bool]:
        """A button under "which hazard is this for?": the sender's answer is judged as if sent
        with #N. Returns the callback answer, and whether the question is settled."""
        now = self._clock.now()
        async with self._uow() as uow:
            question = await uow.outbox.by_sent_message(chat_id, question_id)
            if question is None or question.purpose != "ask":
                return self.texts.button_unknown(), True
            data = question.payload["evidence"]
            if presser.user_id != data["sender"]["user_id"] or presser.anonymous:
                return self.texts.ask_not_yours(), False
            if await uow.evidence.for_message(chat_id, data["message_id"]) is not None:
                return self.texts.ask_done(), True
            row = await uow.hazards.by_number(chat_id, number)
            project_cfg = await self.project_in(uow, chat_id)
            if row is None or project_cfg is None or row.state not in ACTIVE_STATES:
                return self.texts.button_unknown(), True
            msg = GroupMessage(chat_id, data["message_id"], Sender(**data["sender"]))
            await self._judge(uow, row, msg, Evidence.from_json(data["input"]), project_cfg, now)
            await uow.commit()
            return self.texts.ask_chosen(number=number), True

    async def live_location_moved(self, msg: GroupMessage, evidence: Evidence) -> EvidenceOutcome:
        """A live location update (an edit): it may complete a visit that began outside the fence.

        Only a location already recorded as outside the site is looked at again; an edit can
        never turn another message (a 收到, a photo) into evidence.
        """
        now = self._clock.now()
        async with self._uow() as uow:
            prior = await uow.evidence.for_message(msg.chat_id, msg.message_id)
            if prior is None or prior.accepted or prior.refusal != Refusal.OUTSIDE_SITE:
                return EvidenceOutcome.ALREADY
            row = await uow.hazards.get(prior.hazard_id)
            project_cfg = await self.project_in(uow, row.chat_id) if row is not None else None
            if row is None or project_cfg is None or row.state not in ACTIVE_STATES:
                return EvidenceOutcome.NO_HAZARD
            outcome = await self._judge(
                uow, row, msg, evidence, project_cfg, now, by_dm=msg.chat_id > 0, prior=prior
            )
            await uow.commit()
            return outcome

    async def is_evidence(self, msg: GroupMessage) -> bool:
        """Whether this message was already taken as evidence (or as a report's photo)."""
        async with self._uow() as uow:
            return await uow.evidence.for_message(msg.chat_id, msg.message_id) is not None

    async def _replied_hazard(self, uow: UnitOfWork, msg: GroupMessage) -> HazardRow | None:
        if msg.reply_to is None:
            return None
        return await uow.hazards.by_message(msg.chat_id, msg.reply_to)

    async def _ask(
        self, uow: UnitOfWork, msg: GroupMessage, evidence: Evidence, options: list[HazardRow]
    ) -> None:
        """Several hazards are open: ask the sender which one, with a button per hazard."""
        keyboard = self.texts.ask_keyboard([(r.number, r.text) for r in options])
        data = {
            "message_id": msg.message_id,
            "sender": asdict(msg.sender),
            "input": evidence.to_json(),
        }
        await self.say(
            uow,
            None,
            "ask",
            msg.chat_id,
            self.texts.ask_which(str(evidence.input.kind)),
            reply_to=msg.message_id,
            key=f"ask:{msg.chat_id}:{msg.message_id}",
            payload={"reply_markup": keyboard, "evidence": data},
        )

    def _in_some_chain(self, sender: Sender) -> bool:
        """Whether any configured project has this person in its chain."""
        if sender.anonymous:
            return False
        chains = (project.snapshot() for project in self.config.projects)
        return any(c.includes(sender.user_id, sender.username, up_to=c.top) for c in chains)

    def _anyone(self, project_cfg: ProjectConfig) -> bool:
        evidence_from = project_cfg.evidence_from or self.config.defaults.evidence_from
        return evidence_from == "anyone"

    async def _judge(
        self,
        uow: UnitOfWork,
        row: HazardRow,
        msg: GroupMessage,
        evidence: Evidence,
        project_cfg: ProjectConfig,
        now: datetime,
        *,
        by_dm: bool = False,
        prior: EvidenceRow | None = None,
    ) -> EvidenceOutcome:
        """Judge evidence for one hazard, record it, and say the outcome in one short line.

        `prior` is the stored row of a live location being updated: it is updated in place, and
        a location still outside the fence stays silent (the first refusal already said so).
        """
        ev = evidence.input
        await self.seen(uow, msg.sender)
        used = (
            ev.kind is EvidenceKind.PHOTO
            and ev.file_unique_id is not None
            and await uow.evidence.photo_used(ev.file_unique_id)
        )
        site = project_cfg.site
        verdict = judge_evidence(
            ev,
            chain=to_domain(row).chain,
            level=row.level,
            anyone=self._anyone(project_cfg),
            site=Site(site.lat, site.lon, site.radius_m) if site else None,
            photo_used_before=used,
        )
        refusal = str(verdict.refusal) if verdict.refusal else None
        if prior is None:
            uow.evidence.add(
                EvidenceRow(
                    hazard_id=row.id,
                    kind=str(ev.kind),
                    user_id=ev.user_id,
                    chat_id=msg.chat_id,
                    message_id=msg.message_id,
                    file_unique_id=ev.file_unique_id,
                    lat=ev.lat,
                    lon=ev.lon,
                    accepted=verdict.accepted,
                    refusal=refusal,
                    at=now,
                )
            )
        else:
            prior.lat, prior.lon = ev.lat, ev.lon
            prior.accepted, prior.refusal = verdict.accepted, refusal
        actor_id, actor_name = ev.user_id, self.name_of(msg.sender)
        media = self.texts.how(str(ev.kind), live=evidence.live, by_dm=by_dm)
        if not verdict.accepted:
            assert verdict.refusal is not None
            if prior is not None:
                return EvidenceOutcome.REFUSED
            uow.events.append(
                row.id,
                "evidence_refused",
                now,
                actor_id=actor_id,
                actor_name=actor_name,
                reason=str(verdict.refusal),
                media=media,
                message_id=msg.message_id,
                distance_m=round(verdict.distance_m) if verdict.distance_m is not None else None,
            )
            await self.say(
                uow,
                row,
                "refusal",
                msg.chat_id,
                self.texts.refused(verdict.refusal, verdict.distance_m),
                reply_to=msg.message_id,
                key=f"{row.id}:refused:{msg.chat_id}:{msg.message_id}",
            )
            return EvidenceOutcome.REFUSED
        if row.state is not HazardState.OPEN:
            uow.events.append(
                row.id,
                "evidence_extra",
                now,
                actor_id=actor_id,
                actor_name=actor_name,
                media=media,
                message_id=msg.message_id,
            )
            return EvidenceOutcome.EXTRA
        decision = decide(to_domain(row), SiteEvidence(), now)
        if not await uow.hazards.apply(row, decision.hazard):
            return EvidenceOutcome.NO_HAZARD  # another process moved it first
        uow.events.append(
            row.id,
            "on_site",
            now,
            actor_id=actor_id,
            actor_name=actor_name,
            media=media,
            message_id=msg.message_id,
        )
        text = self.texts.on_site(number=row.number, who=self.name_of(msg.sender), how=media)
        await self.say(
            uow,
            row,
            "on_site",
            row.chat_id,
            text,
            reply_to=row.report_message_id if by_dm else msg.message_id,
            key=f"{row.id}:v{row.version}:on_site",
        )
        if by_dm:
            await self.say(
                uow,
                row,
                "dm_on_site",
                msg.chat_id,
                self.texts.dm_on_site(number=row.number),
                reply_to=msg.message_id,
                key=f"{row.id}:v{row.version}:dm_on_site",
            )
        return EvidenceOutcome.ON_SITE


def _in_chain(row: HazardRow, sender: Sender) -> bool:
    """Whether the sender is anywhere in the hazard's chain (called yet or not)."""
    if sender.anonymous:
        return False
    chain = ChainSnapshot.from_json(row.chain)
    return chain.includes(sender.user_id, sender.username, up_to=chain.top)
