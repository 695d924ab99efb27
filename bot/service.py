"""The application service: turns group events into hazard decisions, stored with their outbox."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from bot.config import Config
from bot.escalator import Escalator
from bot.outbox_rows import enqueue_message, enqueue_reaction
from escalation.classifier import Classification, Severity
from escalation.clock import Clock
from escalation.evidence import EvidenceInput, EvidenceKind, Site, judge_evidence
from escalation.hazard import (
    ACTIVE_STATES,
    HazardState,
    Policy,
    SiteEvidence,
    decide,
    open_hazard,
)
from storage.models import EvidenceRow, HazardRow
from storage.repositories import policy_to_json, to_domain
from storage.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

_HASH_NUMBER = re.compile(r"#\s?(\d{1,7})")
SEEN_EMOJI = "👀"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a message, as far as the core and the texts care."""

    user_id: int
    username: str | None
    name: str


@dataclass(frozen=True, slots=True)
class GroupMessage:
    chat_id: int
    message_id: int
    sender: Sender
    reply_to: int | None = None
    text: str = ""


class AckOutcome(StrEnum):
    REMINDED = "reminded"
    REACTED = "reacted"
    NOT_A_HAZARD_REPLY = "not_a_hazard_reply"


class EvidenceOutcome(StrEnum):
    ON_SITE = "on_site"
    EXTRA = "extra"
    REFUSED = "refused"
    NO_HAZARD = "no_hazard"


def hazard_number_in(text: str | None) -> int | None:
    """The N of a `#N` written in a caption or text."""
    match = _HASH_NUMBER.search(text or "")
    return int(match.group(1)) if match else None


class HazardService:
    """One method per thing that can happen; each is one transaction, outbox included."""

    def __init__(
        self, config: Config, uow: UnitOfWorkFactory, clock: Clock, escalator: Escalator
    ) -> None:
        self.config = config
        self._uow = uow
        self._clock = clock
        self.escalator = escalator
        self.texts = escalator.texts

    # ---- reports -----------------------------------------------------------------------------

    async def report(
        self, msg: GroupMessage, classification: Classification, photo_file_id: str | None = None
    ) -> int | None:
        """Register a hazard report as #N and reply with its card; None for unknown groups."""
        project_cfg = self.config.project_for_chat(msg.chat_id)
        if project_cfg is None:
            return None
        now = self._clock.now()
        async with self._uow() as uow:
            existing = await uow.hazards.by_message(msg.chat_id, msg.message_id)
            if existing is not None:  # a redelivered update or an edit of a registered report
                return existing.number
            await uow.people.seen(msg.sender.user_id, msg.sender.username, msg.sender.name, now)
            project = await uow.projects.get_or_create(msg.chat_id, project_cfg.name, now)
            number = await uow.projects.allocate_number(project)
            chain = project_cfg.snapshot()
            unresolved = [m.username for m in chain.members_up_to(chain.top) if m.user_id is None]
            chain = chain.with_resolved(
                await uow.people.ids_for_usernames(u for u in unresolved if u)
            )
            critical = classification.severity is Severity.CRITICAL
            decision = open_hazard(
                number=number, chain=chain, policy=self._policy(), critical=critical, now=now
            )
            hazard = decision.hazard
            row = HazardRow(
                project_id=project.id,
                number=number,
                chat_id=msg.chat_id,
                report_message_id=msg.message_id,
                reporter_id=msg.sender.user_id,
                reporter_name=msg.sender.name,
                text=msg.text,
                category=classification.category,
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
                photo_file_id=photo_file_id,
            )
            uow.hazards.add(row)
            await uow.hazards.flush()
            uow.events.append(
                row.id,
                "reported",
                now,
                actor_id=msg.sender.user_id,
                actor_name=msg.sender.name,
                message_id=msg.message_id,
                matched=list(classification.matched),
                severity=str(classification.severity),
            )
            level1 = chain.level(1)
            labels = await self.escalator.labels(uow, level1.members)
            assert hazard.deadline is not None
            card = self.texts.card(
                number=number,
                text=msg.text,
                category=classification.category,
                critical=critical,
                role=level1.role,
                people=labels,
                deadline=hazard.deadline,
            )
            enqueue_message(
                uow,
                row,
                "card",
                msg.chat_id,
                card,
                now,
                reply_to=msg.message_id,
                key=f"{row.id}:card",
            )
            for call in decision.calls:
                if call.dm:
                    await self.escalator.enqueue_call(uow, row, project_cfg, call, now)
            await uow.commit()
            return number

    # ---- acknowledgements --------------------------------------------------------------------

    async def acknowledge(self, msg: GroupMessage) -> AckOutcome:
        """A bare 收到 to a hazard: recorded; one reminder per hazard, then only a reaction."""
        if msg.reply_to is None:
            return AckOutcome.NOT_A_HAZARD_REPLY
        now = self._clock.now()
        async with self._uow() as uow:
            row = await uow.hazards.by_message(msg.chat_id, msg.reply_to)
            if row is None or row.state not in ACTIVE_STATES:
                return AckOutcome.NOT_A_HAZARD_REPLY
            await uow.people.seen(msg.sender.user_id, msg.sender.username, msg.sender.name, now)
            uow.events.append(
                row.id,
                "acknowledged",
                now,
                actor_id=msg.sender.user_id,
                actor_name=msg.sender.name,
                text=msg.text,
                message_id=msg.message_id,
            )
            if not row.ack_reminded:
                row.ack_reminded = True
                left = (row.deadline - now) if row.deadline else now - now
                text = self.texts.ack_reminder(number=row.number, left=left)
                enqueue_message(
                    uow,
                    row,
                    "ack_reminder",
                    msg.chat_id,
                    text,
                    now,
                    reply_to=msg.message_id,
                    key=f"{row.id}:ack_reminder",
                )
                outcome = AckOutcome.REMINDED
            else:
                enqueue_reaction(
                    uow,
                    row,
                    msg.chat_id,
                    msg.message_id,
                    SEEN_EMOJI,
                    now,
                    key=f"{row.id}:react:{msg.message_id}",
                )
                outcome = AckOutcome.REACTED
            await uow.commit()
            return outcome

    # ---- evidence ----------------------------------------------------------------------------

    async def evidence(
        self, msg: GroupMessage, evidence: EvidenceInput, caption: str | None = None
    ) -> EvidenceOutcome:
        """A photo or location: accepted proof moves the hazard on site; refusals are recorded."""
        project_cfg = self.config.project_for_chat(msg.chat_id)
        if project_cfg is None:
            return EvidenceOutcome.NO_HAZARD
        now = self._clock.now()
        async with self._uow() as uow:
            row = await self._target(uow, msg, caption)
            if row is None or row.state not in ACTIVE_STATES:
                return EvidenceOutcome.NO_HAZARD
            await uow.people.seen(msg.sender.user_id, msg.sender.username, msg.sender.name, now)
            used = bool(evidence.file_unique_id) and await uow.evidence.photo_used(
                evidence.file_unique_id or ""
            )
            site = project_cfg.site
            evidence_from = project_cfg.evidence_from or self.config.defaults.evidence_from
            verdict = judge_evidence(
                evidence,
                chain=to_domain(row).chain,
                level=row.level,
                anyone=evidence_from == "anyone",
                site=Site(site.lat, site.lon, site.radius_m) if site else None,
                photo_used_before=used,
            )
            uow.evidence.add(
                EvidenceRow(
                    hazard_id=row.id,
                    kind=str(evidence.kind),
                    user_id=msg.sender.user_id,
                    chat_id=msg.chat_id,
                    message_id=msg.message_id,
                    file_unique_id=evidence.file_unique_id,
                    lat=evidence.lat,
                    lon=evidence.lon,
                    accepted=verdict.accepted,
                    refusal=str(verdict.refusal) if verdict.refusal else None,
                    at=now,
                )
            )
            actor_id, actor_name = msg.sender.user_id, msg.sender.name
            if not verdict.accepted:
                assert verdict.refusal is not None
                uow.events.append(
                    row.id,
                    "evidence_refused",
                    now,
                    actor_id=actor_id,
                    actor_name=actor_name,
                    reason=str(verdict.refusal),
                    media=str(evidence.kind),
                    message_id=msg.message_id,
                    distance_m=verdict.distance_m,
                )
                enqueue_message(
                    uow,
                    row,
                    "refusal",
                    msg.chat_id,
                    self.texts.refused(verdict.refusal),
                    now,
                    reply_to=msg.message_id,
                    key=f"{row.id}:refused:{msg.message_id}",
                )
                await uow.commit()
                return EvidenceOutcome.REFUSED
            if row.state is not HazardState.OPEN:
                uow.events.append(
                    row.id,
                    "evidence_extra",
                    now,
                    actor_id=actor_id,
                    actor_name=actor_name,
                    media=str(evidence.kind),
                    message_id=msg.message_id,
                )
                await uow.commit()
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
                media=str(evidence.kind),
                message_id=msg.message_id,
            )
            how = "照片" if evidence.kind is EvidenceKind.PHOTO else "位置"
            if self.texts.language == "en":
                how = "photo" if evidence.kind is EvidenceKind.PHOTO else "location"
            text = self.texts.on_site(number=row.number, who=msg.sender.name, how=how)
            enqueue_message(
                uow,
                row,
                "on_site",
                msg.chat_id,
                text,
                now,
                reply_to=msg.message_id,
                key=f"{row.id}:v{row.version}:on_site",
            )
            await uow.commit()
            return EvidenceOutcome.ON_SITE

    async def _target(
        self, uow: UnitOfWork, msg: GroupMessage, caption: str | None
    ) -> HazardRow | None:
        if msg.reply_to is not None:
            row = await uow.hazards.by_message(msg.chat_id, msg.reply_to)
            if row is not None:
                return row
        number = hazard_number_in(caption)
        if number is not None:
            return await uow.hazards.by_number(msg.chat_id, number)
        return None

    # ---- people ------------------------------------------------------------------------------

    async def started(self, sender: Sender) -> str:
        """A /start in a DM: the person can now be reached by the escalation DMs."""
        async with self._uow() as uow:
            await uow.people.mark_started(
                sender.user_id, sender.username, sender.name, self._clock.now()
            )
            await uow.commit()
        return self.texts.started(name=sender.name)

    def _policy(self) -> Policy:
        d = self.config.defaults
        return Policy(
            critical_factor=d.critical_factor,
            repeat_every=d.repeat_every,
            max_repeats=d.max_repeats,
            rectify_within=d.rectify_within,
        )
