"""The user side of the sandbox: what people do in Telegram, turned into queued updates."""

from __future__ import annotations

from telegram.constants import UpdateType

from bot.sandbox.formatting import command_entities
from bot.sandbox.state import ChatState, Json
from bot.sandbox.world import MEMBER_STATUSES, World, now

UPDATE_KINDS = frozenset(kind.value for kind in UpdateType)


class UserSide:
    """Mixin for LocalBotApi; each action returns the Message (or update payload) it enqueued.

    Misuse by a test (a reply to a missing message, a press on a button that does not exist)
    raises ValueError at once instead of producing an update Telegram could never send.
    """

    world: World

    @property
    def bot_user(self) -> Json:
        return self.world.bot_user

    # ---- who and where ----

    def user(
        self, user_id: int, first_name: str, username: str | None = None, *, is_bot: bool = False
    ) -> Json:
        return self.world.add_user(user_id, first_name, username, is_bot)

    def group(self, chat_id: int, title: str) -> Json:
        return self.world.add_group(chat_id, title)

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Set a member's status silently (no chat_member update); the bot's own id works too."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"status must be one of {sorted(MEMBER_STATUSES)}, got {status!r}")
        state = self.world.chat(chat_id)
        if user_id == self.world.bot_user["id"]:
            state.bot_status = status
        else:
            self.world.user(user_id)
            state.members[user_id] = status

    # ---- messages ----

    def post_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        sender_chat_id: int | None = None,
        forwarded_from: int | None = None,
    ) -> Json:
        content = self.world.text_content(text)
        return self._post(chat_id, user_id, content, reply_to, sender_chat_id, forwarded_from)

    def post_photo(
        self,
        chat_id: int,
        user_id: int,
        *,
        caption: str | None = None,
        reply_to: int | None = None,
        file_unique_id: str | None = None,
        forwarded_from: int | None = None,
    ) -> Json:
        content: Json = {"photo": self.world.new_photo(file_unique_id)}
        if caption:
            content["caption"] = caption
            entities = command_entities(caption)
            if entities:
                content["caption_entities"] = entities
        return self._post(chat_id, user_id, content, reply_to, None, forwarded_from)

    def post_location(
        self,
        chat_id: int,
        user_id: int,
        lat: float,
        lon: float,
        *,
        reply_to: int | None = None,
        horizontal_accuracy: float | None = None,
        live_period: int | None = None,
        forwarded_from: int | None = None,
    ) -> Json:
        location = self.world.fields(
            latitude=lat,
            longitude=lon,
            horizontal_accuracy=horizontal_accuracy,
            live_period=live_period,
        )
        return self._post(chat_id, user_id, {"location": location}, reply_to, None, forwarded_from)

    def post_venue(
        self,
        chat_id: int,
        user_id: int,
        lat: float,
        lon: float,
        title: str,
        address: str,
        *,
        reply_to: int | None = None,
    ) -> Json:
        location: Json = {"latitude": lat, "longitude": lon}
        venue: Json = {"location": location, "title": title, "address": address}
        return self._post(
            chat_id, user_id, {"location": location, "venue": venue}, reply_to, None, None
        )

    def edit_text(self, chat_id: int, message_id: int, text: str) -> Json:
        state, message = self._user_message(chat_id, message_id)
        if "text" not in message:
            raise ValueError(f"message {message_id} in chat {chat_id} has no text to edit")
        base = {k: v for k, v in message.items() if k not in ("text", "entities")}
        return self._edit(state, {**base, **self.world.text_content(text)})

    def edit_location(
        self,
        chat_id: int,
        message_id: int,
        lat: float,
        lon: float,
        *,
        horizontal_accuracy: float | None = None,
    ) -> Json:
        state, message = self._user_message(chat_id, message_id)
        old = message.get("location")
        if old is None or "live_period" not in old:
            raise ValueError(f"message {message_id} in chat {chat_id} is not a live location")
        location = self.world.fields(
            latitude=lat,
            longitude=lon,
            horizontal_accuracy=horizontal_accuracy,
            live_period=old["live_period"],
        )
        return self._edit(state, {**message, "location": location})

    # ---- private chats ----

    def start_bot(self, user_id: int, payload: str | None = None) -> Json:
        account = self.world.user(user_id)
        if account.blocked:
            self._private_status_change(user_id, "kicked", "member")
        account.started, account.blocked = True, False
        text = "/start" if payload is None else f"/start {payload}"
        return self.post_text(user_id, user_id, text)

    def block_bot(self, user_id: int) -> None:
        """Block the bot; Telegram tells the bot with a my_chat_member update (member -> kicked)."""
        account = self.world.user(user_id)
        if not account.blocked:
            account.blocked = True
            self._private_status_change(user_id, "member", "kicked")

    # ---- buttons, groups, reactions ----

    def press_button(self, user_id: int, chat_id: int, message_id: int, data: str) -> Json:
        world = self.world
        state = world.chat(chat_id)
        message = world.find_message(state, message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        offered = [button.get("callback_data") for row in rows for button in row]
        if data not in offered:
            raise ValueError(
                f"message {message_id} in chat {chat_id} has no button with callback_data "
                f"{data!r}; its buttons carry {offered}"
            )
        query: Json = {
            "id": str(4_000_000_000_000 + world.serial()),
            "from": world.user(user_id).user,
            "chat_instance": f"{abs(chat_id) * 7919 % 10**12}",
            "message": message,
            "data": data,
        }
        world.callback(query)
        return world.enqueue("callback_query", query)

    def add_bot_to_group(self, chat_id: int, by_user_id: int, *, as_admin: bool = True) -> Json:
        state = self._group(chat_id)
        old = state.bot_status or "left"
        state.bot_status = "administrator" if as_admin else "member"
        return self.world.enqueue(
            "my_chat_member", self._member_update(state, by_user_id, old, state.bot_status)
        )

    def migrate_group(self, old_chat_id: int, new_chat_id: int) -> Json:
        """Upgrade a group to a supergroup; returns the service message in the old chat."""
        world = self.world
        old = self._group(old_chat_id)
        if old.chat["type"] != "group" or old.migrated_to is not None:
            raise ValueError(f"chat {old_chat_id} is not a basic group")
        if not str(new_chat_id).startswith("-100"):
            raise ValueError(f"supergroup ids start with -100, got {new_chat_id}")
        world.add_group(new_chat_id, old.chat["title"])
        new = world.chat(new_chat_id)
        new.members.update(old.members)
        new.bot_status = old.bot_status
        creator = next((uid for uid, s in old.members.items() if s == "creator"), None)
        sender = None if creator is None else world.user(creator).user
        moved = world.new_message(old, sender, {"migrate_to_chat_id": new_chat_id})
        old.migrated_to = new_chat_id
        world.enqueue("message", moved)
        world.enqueue(
            "message", world.new_message(new, sender, {"migrate_from_chat_id": old_chat_id})
        )
        return moved

    def react(self, chat_id: int, user_id: int, message_id: int, emoji: str | None) -> Json:
        """A user sets (or with None clears) their reaction; delivered only if allowed_updates
        lists message_reaction, as in Telegram."""
        world = self.world
        state = world.chat(chat_id)
        if world.find_message(state, message_id) is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        new = [] if emoji is None else [{"type": "emoji", "emoji": emoji}]
        old = state.user_reactions.get((message_id, user_id), [])
        state.user_reactions[(message_id, user_id)] = new
        payload: Json = {
            "chat": state.chat,
            "message_id": message_id,
            "user": world.user(user_id).user,
            "date": now(),
            "old_reaction": old,
            "new_reaction": new,
        }
        return world.enqueue("message_reaction", payload)

    # ---- whatever else a client can produce (odd clients, fuzzing) ----

    def post_content(
        self,
        chat_id: int,
        user_id: int | None,
        content: Json,
        *,
        reply_to: int | None = None,
        sender_chat_id: int | None = None,
    ) -> Json:
        """Any message content (sticker, document, dice, a service message, ...), stored in the
        chat like every post; from a user, on behalf of a chat (sender_chat), or from nobody."""
        world = self.world
        state = world.chat(chat_id)
        if reply_to is not None and world.find_message(state, reply_to) is None:
            raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
        sender = None if user_id is None else world.user(user_id).user
        sender_chat = None if sender_chat_id is None else world.chat(sender_chat_id).chat
        message = world.new_message(
            state, sender, dict(content), reply_to=reply_to, sender_chat=sender_chat
        )
        if world.sees(state, message):
            world.enqueue("message", message)
        return message

    def edit_unseen(self, chat_id: int, user_id: int, message_id: int, text: str) -> Json:
        """An edit of a message the bot never received (sent before it joined, or lost)."""
        world = self.world
        state = world.chat(chat_id)
        if world.find_message(state, message_id) is not None:
            raise ValueError(f"message {message_id} in chat {chat_id} exists: use edit_text")
        message: Json = {
            "message_id": message_id,
            "date": now() - 3600,
            "edit_date": now(),
            "chat": state.chat,
            "from": world.user(user_id).user,
            **world.text_content(text),
        }
        return world.enqueue("edited_message", message)

    def forge_callback(
        self, user_id: int, data: str, *, chat_id: int | None = None, message_id: int | None = None
    ) -> Json:
        """A button press with any data, as a modified client can send it: on a stored message,
        on one the bot can no longer see (date 0), or on no message at all (an inline one)."""
        world = self.world
        query: Json = {
            "id": str(4_000_000_000_000 + world.serial()),
            "from": world.user(user_id).user,
            "chat_instance": str(abs(chat_id or user_id) * 7919 % 10**12),
            "data": data,
        }
        if chat_id is None:
            query["inline_message_id"] = f"inline-{world.serial()}"
        else:
            state = world.chat(chat_id)
            stored = None if message_id is None else world.find_message(state, message_id)
            query["message"] = stored or {
                "chat": state.chat,
                "message_id": message_id or 1,
                "date": 0,  # InaccessibleMessage
            }
        world.callback(query)
        return world.enqueue("callback_query", query)

    def post_update(self, kind: str, payload: Json) -> Json:
        """Any other update as given (channel_post, inline_query, chat_member, ...)."""
        if kind not in UPDATE_KINDS:
            raise ValueError(f"unknown update type {kind!r}; Telegram sends {sorted(UPDATE_KINDS)}")
        return self.world.enqueue(kind, payload)

    # ---- helpers ----

    def _post(
        self,
        chat_id: int,
        user_id: int,
        content: Json,
        reply_to: int | None,
        sender_chat_id: int | None,
        forwarded_from: int | None,
    ) -> Json:
        world = self.world
        state = world.chat(chat_id)
        if state.migrated_to is not None:
            raise ValueError(f"chat {chat_id} was migrated to {state.migrated_to}")
        if state.chat["type"] == "private":
            if chat_id != user_id:
                raise ValueError(f"only user {chat_id} can post in private chat {chat_id}")
            # Writing to the bot opens the conversation, as pressing Start does.
            account = world.user(user_id)
            account.started, account.blocked = True, False
        if reply_to is not None and world.find_message(state, reply_to) is None:
            raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
        if forwarded_from is not None:
            content = {
                **content,
                "forward_origin": {
                    "type": "user",
                    "date": now() - 60,
                    "sender_user": world.user(forwarded_from).user,
                },
            }
        sender_chat = None if sender_chat_id is None else world.chat(sender_chat_id).chat
        message = world.new_message(
            state, world.user(user_id).user, content, reply_to=reply_to, sender_chat=sender_chat
        )
        if world.sees(state, message):
            world.enqueue("message", message)
        return message

    def _user_message(self, chat_id: int, message_id: int) -> tuple[ChatState, Json]:
        state = self.world.chat(chat_id)
        message = self.world.find_message(state, message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if message.get("from", {}).get("id") == self.world.bot_user["id"]:
            raise ValueError(f"message {message_id} in chat {chat_id} was sent by the bot")
        return state, message

    def _edit(self, state: ChatState, message: Json) -> Json:
        edited = self.world.replace_message(state, {**message, "edit_date": now()})
        if self.world.sees(state, edited):
            self.world.enqueue("edited_message", edited)
        return edited

    def _group(self, chat_id: int) -> ChatState:
        state = self.world.chat(chat_id)
        if state.chat["type"] == "private":
            raise ValueError(f"chat {chat_id} is a private chat, not a group")
        return state

    def _private_status_change(self, user_id: int, old: str, new: str) -> None:
        state = self.world.chat(user_id)
        self.world.enqueue("my_chat_member", self._member_update(state, user_id, old, new))

    def _member_update(self, state: ChatState, by_user_id: int, old: str, new: str) -> Json:
        bot = self.world.bot_user
        return {
            "chat": state.chat,
            "from": self.world.user(by_user_id).user,
            "date": now(),
            "old_chat_member": self.world.chat_member(bot, old),
            "new_chat_member": self.world.chat_member(bot, new),
        }
