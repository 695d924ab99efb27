"""The simulated Telegram world: users, chats, messages, files; shared by the bot and user sides."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from bot.sandbox.formatting import command_entities
from bot.sandbox.params import ApiError, bad_request
from bot.sandbox.state import (
    CallbackState,
    ChatState,
    Json,
    StoredFile,
    UpdateQueue,
    UserState,
    Webhook,
)

ANONYMOUS_ADMIN: Json = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
# The `from` of a message posted on behalf of a channel (sender_chat is that channel).
CHANNEL_BOT: Json = {
    "id": 136817688,
    "is_bot": True,
    "first_name": "Channel",
    "username": "Channel_Bot",
}
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
)
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "left", "kicked"})
# (width, height) of the sizes Telegram makes for a 4:3 photo, largest last.
_PHOTO_SIZES = ((90, 67), (320, 240), (1280, 960))


def now() -> int:
    return int(time.time())


def is_group_id(chat_id: int) -> bool:
    return chat_id < 0


def fake_jpeg(seed: str, size: int = 2048) -> bytes:
    """Bytes with JPEG magic numbers, unique per seed, so downloads can be told apart."""
    body = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + body[:size] + b"\xff\xd9"


def strip_reply(message: Json) -> Json:
    """Telegram never nests reply_to_message more than one level."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


class World:
    """All sandbox state, with the rules both sides share (ids, permissions, message storage)."""

    def __init__(self, bot_user: Json) -> None:
        self.bot_user = bot_user
        self.users: dict[int, UserState] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.file_paths: dict[str, str] = {}
        self.callbacks: dict[str, CallbackState] = {}
        self.updates = UpdateQueue()
        self.webhook = Webhook()
        self.commands: dict[tuple[str, str], list[Json]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.sent_log: list[tuple[int, int]] = []
        self.reaction_log: list[Json] = []
        self.callback_answers: list[Json] = []
        self.privacy_mode = False
        self._serial = itertools.count(1)

    # ---- registry ----

    def user(self, user_id: int) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            user: Json = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
            state = self.users[user_id] = UserState(user)
        return state

    def add_user(self, user_id: int, first_name: str, username: str | None, is_bot: bool) -> Json:
        user: Json = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        state = self.users.get(user_id)
        if state is None:
            self.users[user_id] = UserState(user)
        else:
            state.user = user
            if user_id in self.chats:
                self.chats[user_id].chat = self._private_chat(user)
        return user

    def add_group(self, chat_id: int, title: str) -> Json:
        if not is_group_id(chat_id):
            raise ValueError(f"group ids are negative, got {chat_id}")
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat: Json = {"id": chat_id, "type": kind, "title": title}
        state = self.chats.get(chat_id)
        if state is None:
            self.chats[chat_id] = ChatState(chat)
        else:
            state.chat = chat
        return chat

    def chat(self, chat_id: int) -> ChatState:
        """The chat for a user-side action, created on first use so tests stay short."""
        state = self.chats.get(chat_id)
        if state is None:
            if is_group_id(chat_id):
                self.add_group(chat_id, f"Group {chat_id}")
            else:
                self.chats[chat_id] = ChatState(self._private_chat(self.user(chat_id).user))
            state = self.chats[chat_id]
        return state

    @staticmethod
    def _private_chat(user: Json) -> Json:
        chat: Json = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "username" in user:
            chat["username"] = user["username"]
        return chat

    def serial(self) -> int:
        return next(self._serial)

    # ---- the bot side's view ----

    def bot_chat(self, chat_ref: int | str) -> ChatState:
        """The chat a Bot API call names, with Telegram's errors for chats it cannot use."""
        state: ChatState | None = None
        if isinstance(chat_ref, str):
            name = chat_ref.removeprefix("@").lower()
            state = next(
                (c for c in self.chats.values() if c.chat.get("username", "").lower() == name),
                None,
            )
        else:
            state = self.chats.get(chat_ref)
            if state is None and chat_ref in self.users:
                state = self.chat(chat_ref)
        if state is None:
            raise bad_request("chat not found")
        if state.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": state.migrated_to},
            )
        return state

    def check_can_send(self, state: ChatState) -> None:
        if state.chat["type"] == "private":
            user = self.users[state.id]
            if user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not user.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return
        kind = f"{state.chat['type']} chat"
        if state.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        if state.bot_status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")

    def bot_message(self, state: ChatState, message_id: int | None, *, what: str) -> Json:
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self.find_message(state, message_id)
        if message is None:
            raise bad_request(f"message to {what} not found")
        return message

    # ---- messages ----

    @staticmethod
    def find_message(state: ChatState, message_id: int) -> Json | None:
        if message_id in state.deleted:
            return None
        return state.messages.get(message_id)

    def new_message(
        self,
        state: ChatState,
        sender: Json | None,
        content: Json,
        *,
        reply_to: int | None = None,
        sender_chat: Json | None = None,
    ) -> Json:
        """Store a message with the next id in the chat; `content` holds text, photo, and so on."""
        message: Json = {"message_id": state.take_message_id(), "date": now(), "chat": state.chat}
        if sender_chat is not None:
            message["from"] = ANONYMOUS_ADMIN if sender_chat["id"] == state.id else CHANNEL_BOT
            message["sender_chat"] = sender_chat
        elif sender is not None:
            message["from"] = sender
        if reply_to is not None:
            original = self.find_message(state, reply_to)
            if original is not None:
                message["reply_to_message"] = strip_reply(original)
        message.update(content)
        state.messages[message["message_id"]] = message
        return message

    def replace_message(self, state: ChatState, message: Json) -> Json:
        state.messages[message["message_id"]] = message
        return message

    @staticmethod
    def text_content(text: str) -> Json:
        content: Json = {"text": text}
        entities = command_entities(text)
        if entities:
            content["entities"] = entities
        return content

    # ---- files ----

    def new_photo(self, file_unique_id: str | None, data: bytes | None = None) -> list[Json]:
        """PhotoSize list with per-size file ids; the largest carries `file_unique_id`."""
        serial = self.serial()
        largest_uid = file_unique_id or f"AQADuniq{serial:06d}"
        sizes: list[Json] = []
        for index, (width, height) in enumerate(_PHOTO_SIZES):
            last = index == len(_PHOTO_SIZES) - 1
            # Derived from the largest id, so a re-posted file keeps all its unique ids.
            uid = largest_uid if last else f"{largest_uid}-{width}"
            file_id = f"AgACAgIAAxkBAAI{serial:06d}x{index}"
            payload = data if data is not None and last else fake_jpeg(f"{uid}/{serial}")
            stored = self.store_file(file_id, uid, f"photos/file_{serial}_{index}.jpg", payload)
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": uid,
                    "file_size": len(stored.data),
                    "width": width,
                    "height": height,
                }
            )
        for size in sizes:
            self.files[size["file_id"]].photo = sizes
        return sizes

    def store_file(self, file_id: str, unique_id: str, path: str, data: bytes) -> StoredFile:
        stored = StoredFile(file_id, unique_id, path, data)
        self.files[file_id] = stored
        self.file_paths[path] = file_id
        return stored

    # ---- members ----

    def member_status(self, state: ChatState, user_id: int) -> str:
        if user_id == self.bot_user["id"]:
            return state.bot_status or "member"
        if state.chat["type"] == "private":
            return "member" if user_id == state.id else "left"
        return state.members.get(user_id, "member")

    def chat_member(self, user: Json, status: str) -> Json:
        """ChatMember json with the fields PTB 22 requires for each status."""
        member: Json = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member["can_be_edited"] = user["id"] != self.bot_user["id"]
            member["is_anonymous"] = False
            member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def user_json(self, user_id: int) -> Json:
        if user_id == self.bot_user["id"]:
            return self.bot_user
        return self.user(user_id).user

    def enqueue(self, kind: str, payload: Json) -> Json:
        self.updates.put(kind, payload)
        return payload

    def sees(self, state: ChatState, message: Json) -> bool:
        """Whether privacy mode lets the bot see a group message (always true when it is off)."""
        if not self.privacy_mode or state.chat["type"] == "private":
            return True
        if self.member_status(state, self.bot_user["id"]) in ("administrator", "creator"):
            return True
        reply = message.get("reply_to_message")
        if reply is not None and reply.get("from", {}).get("id") == self.bot_user["id"]:
            return True
        if "text" not in message and "caption" not in message:
            return "photo" not in message and "location" not in message
        text = message.get("text", "")
        first = next(iter(message.get("entities", [])), None)
        if first is None or first["type"] != "bot_command" or first["offset"] != 0:
            return False
        command = text[: first["length"]]
        return "@" not in command or command.endswith("@" + self.bot_user["username"])

    def callback(self, query: Json) -> None:
        self.callbacks[query["id"]] = CallbackState(query)

    def fields(self, **values: Any) -> Json:
        """Json fields with the None values left out, as Telegram omits absent fields."""
        return {k: v for k, v in values.items() if v is not None}
