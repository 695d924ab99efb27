"""The escalation DM's buttons (我去现场, 已安排人员, 叫停施工): recorded; none stops the clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.texts import Texts, escalation_keyboard
from escalation.chain import ChainSnapshot
from escalation.hazard import ACTIVE_STATES
from storage.models import HazardFields

if TYPE_CHECKING:
    from bot.service import HazardService, Sender

# callback_data prefix → event kind
ACTIONS = {"go": "going", "sent": "delegated", "stop": "stop_work"}


# An outbox payload's name for the escalation DM's buttons, rendered when the DM is sent.
ESCALATION_BUTTONS = "escalation"


def dm_payload(texts: Texts, row: HazardFields) -> dict[str, Any]:
    """What every escalation DM carries besides its text: the buttons, and the report's photo.

    The buttons are named, not written out: they are the same three for every DM but for the
    hazard's id, which the row holds. A catch-up writes 100,000 of these DMs, and encoding,
    parsing and storing the full keyboard in each cost about a tenth of it (BENCHMARKS.md).
    """
    payload: dict[str, Any] = {"buttons": ESCALATION_BUTTONS, "language": texts.language}
    if row.photo_file_id:
        payload["photo"] = row.photo_file_id
    return payload


def reply_markup(payload: dict[str, Any], hazard_id: int | None) -> dict[str, Any] | None:
    """The inline keyboard an outbox row asks for: written out (a /list page), or named."""
    if (markup := payload.get("reply_markup")) is not None:
        return markup  # type: ignore[no-any-return]
    if payload.get("buttons") == ESCALATION_BUTTONS and hazard_id is not None:
        return escalation_keyboard(str(payload.get("language")), hazard_id)
    return None


class Buttons:
    """A press is answered in the button's own popup; the group hears of 我去现场 and 叫停施工."""

    def __init__(self, core: HazardService) -> None:
        self._core = core

    async def pressed(self, presser: Sender, action: str, hazard_id: int) -> str:
        """Record one press; returns the short answer shown to the person who pressed."""
        core = self._core
        texts = core.texts
        kind = ACTIONS.get(action)
        now = core.now()
        async with core.uow() as uow:
            row = await uow.hazards.get(hazard_id)
            if row is None or kind is None:
                return texts.button_unknown()
            chain = ChainSnapshot.from_json(row.chain)
            level = next(
                (
                    k
                    for k, lv in enumerate(chain.levels, 1)
                    if any(m.matches(presser.user_id, presser.username) for m in lv.members)
                ),
                None,
            )
            if level is None or presser.anonymous:
                return texts.button_outside(number=row.number)
            if row.state not in ACTIVE_STATES:
                return texts.button_inactive(number=row.number, state=row.state)
            earlier = await uow.events.of_kind(row.id, kind)
            if any(e.actor_id == presser.user_id for e in earlier):
                return texts.button_again()
            member = next(
                m
                for m in chain.level(level).members
                if m.matches(presser.user_id, presser.username)
            )
            who = member.name or presser.name
            await core.seen(uow, presser)
            uow.events.append(row.id, kind, now, actor_id=presser.user_id, actor_name=who)
            if kind == "going":
                text = texts.going(number=row.number, who=who)
                answer = texts.going_ok()
            elif kind == "stop_work":
                role = chain.level(level).role
                text = texts.stop_order(number=row.number, who=who, role=role, text=row.text)
                answer = texts.stop_ok()
            else:
                text, answer = None, texts.delegated_ok()
            if text is not None:
                await core.say(
                    uow,
                    row,
                    kind,
                    row.chat_id,
                    text,
                    reply_to=row.report_message_id,
                    key=f"{row.id}:{kind}:{presser.user_id}",
                )
            await uow.commit()
            return answer
