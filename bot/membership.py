"""The bot's membership: joining a group, being blocked in a DM, a group becoming a supergroup."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.service import HazardService


class Membership:
    """What changes when the bot's place in a chat changes."""

    def __init__(self, core: HazardService) -> None:
        self._core = core

    async def joined_group(
        self, chat_id: int, title: str, *, admin: bool, reads_all: bool, when: int
    ) -> None:
        """Added to a group: one message, an introduction or how to configure the group.

        In an unconfigured group that message is the only one the bot ever sends; it names
        nothing but the group's own id. Without admin rights and with privacy mode on, the bot
        sees only commands and replies to itself, and the message says so.
        """
        core = self._core
        async with core.uow() as uow:
            project = await core.project_in(uow, chat_id)
            if project is not None:
                text = core.texts.intro(project=project.name)
            else:
                text = core.texts.unconfigured(chat=chat_id, title=title)
            if not admin and not reads_all:
                text += "\n\n" + core.texts.cannot_see()
            await core.say(uow, None, "joined", chat_id, text, key=f"joined:{chat_id}:{when}")
            await uow.commit()

    async def private_chat(self, user_id: int, *, blocked: bool) -> None:
        """A person blocked or unblocked the bot: /chain shows it before an escalation needs it."""
        core = self._core
        async with core.uow() as uow:
            if blocked:
                await uow.people.mark_unreachable(user_id, "blocked the bot")
            else:
                person = (await uow.people.get_many([user_id])).get(user_id)
                await uow.people.mark_started(
                    user_id,
                    person.username if person else None,
                    person.name if person else None,
                    core.now(),
                )
            await uow.commit()

    async def migrated(self, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup: its hazards, its project and the config lookup follow.

        Both service messages (in the old chat and in the new) arrive; the second changes
        nothing. Returns True when this call moved the chat.
        """
        core = self._core
        async with core.uow() as uow:
            if not await uow.projects.record_migration(old_chat_id, new_chat_id, core.now()):
                return False
            await uow.projects.move_chat(old_chat_id, new_chat_id)
            await uow.commit()
        return True
