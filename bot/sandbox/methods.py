"""Bot API method handlers, one function per method, registered in METHODS by name."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram.constants import ReactionEmoji

from bot.sandbox.formatting import Entity, ParseError, render, utf16_len
from bot.sandbox.params import ApiError, Params, bad_request
from bot.sandbox.state import ChatState, Json
from bot.sandbox.world import World, now

Handler = Callable[[World, Params], Awaitable[Any]]

MAX_TEXT = 4096
MAX_CAPTION = 1024
_REACTIONS = frozenset(e.value for e in ReactionEmoji)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_GIFT_TYPES: Json = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}

METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = handler
        return handler

    return register


def lookup(name: str) -> tuple[str, Handler] | None:
    """Telegram treats method names case-insensitively."""
    return _BY_LOWER.get(name.lower())


# ---- shared pieces ----


def _formatted(p: Params, key: str, entities_key: str) -> tuple[str, list[Entity]]:
    raw = p.opt_str(key) or ""
    given = p.opt_list(entities_key)
    try:
        text, entities = render(raw, None if given is not None else p.opt_str("parse_mode"))
    except ParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    if given is not None:
        entities = [e for e in entities if e["type"] == "bot_command"] + given
        entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return text, entities


def _with_text(content: Json, key: str, text: str, entities: list[Entity]) -> Json:
    content = {k: v for k, v in content.items() if k not in (key, f"{key}_entities", "entities")}
    if text:
        content[key] = text
    if entities:
        content["entities" if key == "text" else f"{key}_entities"] = entities
    return content


def _inline_markup(p: Params) -> Json | None:
    """The inline keyboard to store on the message; other keyboards are not echoed by Telegram."""
    markup = p.opt_dict("reply_markup")
    if markup is None or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard: expected an array of button rows")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request("can't parse inline keyboard button: Text must be a String")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def _reply_target(world: World, state: ChatState, p: Params) -> int | None:
    parameters = p.opt_dict("reply_parameters")
    if parameters is not None:
        message_id = parameters.get("message_id")
        allow = bool(parameters.get("allow_sending_without_reply"))
    else:
        message_id = p.opt_int("reply_to_message_id")
        allow = p.opt_bool("allow_sending_without_reply")
    if message_id is None:
        return None
    if not isinstance(message_id, int) or world.find_message(state, message_id) is None:
        if allow:
            return None
        raise bad_request("message to be replied not found")
    return message_id


def _send(world: World, state: ChatState, p: Params, content: Json) -> Json:
    reply_to = _reply_target(world, state, p)
    markup = _inline_markup(p)
    if markup is not None:
        content["reply_markup"] = markup
    message = world.new_message(state, world.bot_user, content, reply_to=reply_to)
    state.sent_by_bot.append(message["message_id"])
    world.sent_log.append((state.id, message["message_id"]))
    return message


def _sendable_chat(world: World, p: Params) -> ChatState:
    state = world.bot_chat(p.chat_id())
    world.check_can_send(state)
    return state


def _own_message(world: World, p: Params) -> tuple[ChatState, Json]:
    if p.get("inline_message_id") is not None:
        raise bad_request("inline messages are not supported by the sandbox")
    state = world.bot_chat(p.chat_id())
    message = world.bot_message(state, p.opt_int("message_id"), what="edit")
    if message.get("from", {}).get("id") != world.bot_user["id"]:
        raise bad_request("message can't be edited")
    return state, message


def _not_modified() -> ApiError:
    return bad_request(
        "message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )


def _edited(world: World, state: ChatState, old: Json, new: Json) -> Json:
    old_content = {k: v for k, v in old.items() if k != "edit_date"}
    if {k: v for k, v in new.items() if k != "edit_date"} == old_content:
        raise _not_modified()
    return world.replace_message(state, {**new, "edit_date": now()})


# ---- updates and webhooks ----


@method("getMe")
async def get_me(world: World, p: Params) -> Any:
    # What @BotFather's privacy setting reports: off means the bot reads all group messages.
    return {**world.bot_user, "can_read_all_group_messages": not world.privacy_mode}


@method("getUpdates")
async def get_updates(world: World, p: Params) -> Any:
    if world.webhook.url:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    queue = world.updates
    offset = p.opt_int("offset")
    limit = min(max(p.opt_int("limit") or 100, 1), 100)
    timeout = max(p.opt_float("timeout") or 0.0, 0.0)
    allowed = p.opt_list("allowed_updates")
    queue.set_allowed(None if allowed is None else [str(kind) for kind in allowed])
    if offset is not None:
        queue.confirm(offset)
    deadline = time.monotonic() + timeout
    while True:
        batch = queue.take(limit)
        remaining = deadline - time.monotonic()
        if batch or queue.closed or remaining <= 0:
            return batch
        await queue.wait(remaining)


@method("setWebhook")
async def set_webhook(world: World, p: Params) -> Any:
    url = p.opt_str("url") or ""
    secret = p.opt_str("secret_token")
    if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    if url and not url.startswith("https://") and not url.startswith("http://"):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if p.opt_bool("drop_pending_updates"):
        world.updates.clear()
    world.webhook.url = url
    world.webhook.secret_token = secret
    world.webhook.params = dict(p.values)
    return True


@method("deleteWebhook")
async def delete_webhook(world: World, p: Params) -> Any:
    if p.opt_bool("drop_pending_updates"):
        world.updates.clear()
    world.webhook.url = ""
    world.webhook.secret_token = None
    return True


@method("getWebhookInfo")
async def get_webhook_info(world: World, p: Params) -> Any:
    return {
        "url": world.webhook.url,
        "has_custom_certificate": False,
        "pending_update_count": len(world.updates),
    }


# ---- sending and editing ----


@method("sendMessage")
async def send_message(world: World, p: Params) -> Any:
    state = _sendable_chat(world, p)
    text, entities = _formatted(p, "text", "entities")
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    content = _with_text({}, "text", text, entities)
    options = p.opt_dict("link_preview_options")
    if options is not None:
        content["link_preview_options"] = options
    return _send(world, state, p, content)


@method("sendPhoto")
async def send_photo(world: World, p: Params) -> Any:
    state = _sendable_chat(world, p)
    upload = p.uploads.get("photo")
    if upload is not None:
        photo = world.new_photo(None, upload.data)
    else:
        file_id = p.opt_str("photo")
        stored = world.files.get(file_id or "")
        if stored is None:
            # No internet in the sandbox, so URLs are as unknown as bad file ids.
            raise bad_request("wrong file identifier/HTTP URL specified")
        photo = stored.photo or [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data),
                "width": 1280,
                "height": 960,
            }
        ]
    caption, entities = _formatted(p, "caption", "caption_entities")
    if utf16_len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return _send(world, state, p, _with_text({"photo": photo}, "caption", caption, entities))


@method("sendLocation")
async def send_location(world: World, p: Params) -> Any:
    state = _sendable_chat(world, p)
    latitude, longitude = p.opt_float("latitude"), p.opt_float("longitude")
    if latitude is None or longitude is None:
        raise bad_request("latitude and longitude are required")
    location = world.fields(
        latitude=latitude,
        longitude=longitude,
        horizontal_accuracy=p.opt_float("horizontal_accuracy"),
        live_period=p.opt_int("live_period"),
    )
    return _send(world, state, p, {"location": location})


@method("sendChatAction")
async def send_chat_action(world: World, p: Params) -> Any:
    _sendable_chat(world, p)
    p.req_str("action", empty="action is empty")
    return True


@method("editMessageText")
async def edit_message_text(world: World, p: Params) -> Any:
    state, message = _own_message(world, p)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    text, entities = _formatted(p, "text", "entities")
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    new = _with_text(message, "text", text, entities)
    return _edited(world, state, message, _with_markup(new, _inline_markup(p)))


@method("editMessageCaption")
async def edit_message_caption(world: World, p: Params) -> Any:
    state, message = _own_message(world, p)
    if "photo" not in message:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = _formatted(p, "caption", "caption_entities")
    if utf16_len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    new = _with_text(message, "caption", caption, entities)
    return _edited(world, state, message, _with_markup(new, _inline_markup(p)))


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, p: Params) -> Any:
    state, message = _own_message(world, p)
    return _edited(world, state, message, _with_markup(message, _inline_markup(p)))


def _with_markup(message: Json, markup: Json | None) -> Json:
    # Telegram drops the inline keyboard when an edit does not repeat it.
    new = {k: v for k, v in message.items() if k != "reply_markup"}
    if markup is not None:
        new["reply_markup"] = markup
    return new


@method("deleteMessage")
async def delete_message(world: World, p: Params) -> Any:
    state = world.bot_chat(p.chat_id())
    message = world.bot_message(state, p.opt_int("message_id"), what="delete")
    own = message.get("from", {}).get("id") == world.bot_user["id"]
    is_group = state.chat["type"] != "private"
    rights = world.member_status(state, world.bot_user["id"]) in ("administrator", "creator")
    if is_group and not own and not rights:
        raise bad_request("message can't be deleted")
    state.deleted.add(message["message_id"])
    return True


@method("setMessageReaction")
async def set_message_reaction(world: World, p: Params) -> Any:
    state = world.bot_chat(p.chat_id())
    message_id = p.opt_int("message_id")
    if message_id is None or world.find_message(state, message_id) is None:
        raise bad_request("MESSAGE_ID_INVALID")
    reaction = p.opt_list("reaction") or []
    for item in reaction:
        if not isinstance(item, dict) or item.get("type") != "emoji":
            raise bad_request("REACTION_INVALID")
        if item.get("emoji") not in _REACTIONS:
            raise bad_request("REACTION_INVALID")
    # Bots react like non-premium users: one reaction per message.
    if len(reaction) > 1:
        raise bad_request("REACTIONS_TOO_MANY")
    world.reaction_log.append(dict(p.values))
    return True


@method("answerCallbackQuery")
async def answer_callback_query(world: World, p: Params) -> Any:
    query_id = p.req_str("callback_query_id", empty="QUERY_ID_INVALID")
    callback = world.callbacks.get(query_id)
    if callback is None or callback.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    if len(p.opt_str("text") or "") > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    callback.answered = True
    world.callback_answers.append(dict(p.values))
    return True


# ---- files, chats, members ----


@method("getFile")
async def get_file(world: World, p: Params) -> Any:
    stored = world.files.get(p.req_str("file_id", empty="file_id is empty"))
    if stored is None:
        raise bad_request("invalid file_id")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


@method("getChat")
async def get_chat(world: World, p: Params) -> Any:
    state = world.bot_chat(p.chat_id())
    return {
        **state.chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": _GIFT_TYPES,
    }


@method("getChatMember")
async def get_chat_member(world: World, p: Params) -> Any:
    state = world.bot_chat(p.chat_id())
    user_id = p.req_int("user_id")
    if user_id != world.bot_user["id"] and user_id not in world.users:
        raise bad_request("user not found")
    return world.chat_member(world.user_json(user_id), world.member_status(state, user_id))


@method("getChatAdministrators")
async def get_chat_administrators(world: World, p: Params) -> Any:
    state = world.bot_chat(p.chat_id())
    if state.chat["type"] == "private":
        raise bad_request("there are no administrators in the private chat")
    ids = [uid for uid, status in state.members.items() if status in ("creator", "administrator")]
    if world.member_status(state, world.bot_user["id"]) == "administrator":
        ids.append(world.bot_user["id"])
    return [world.chat_member(world.user_json(uid), world.member_status(state, uid)) for uid in ids]


# ---- bot profile ----


def _scope_key(p: Params) -> tuple[str, str]:
    scope = p.opt_dict("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), p.opt_str("language_code") or ""


@method("setMyCommands")
async def set_my_commands(world: World, p: Params) -> Any:
    commands = p.opt_list("commands")
    if commands is None:
        raise bad_request("commands is empty")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("BOT_COMMAND_INVALID")
        if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    world.commands[_scope_key(p)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    return True


@method("deleteMyCommands")
async def delete_my_commands(world: World, p: Params) -> Any:
    world.commands.pop(_scope_key(p), None)
    return True


@method("getMyCommands")
async def get_my_commands(world: World, p: Params) -> Any:
    return world.commands.get(_scope_key(p), [])


def _description_methods(kind: str, limit: int) -> None:
    key = "description" if kind == "description" else "short_description"
    setter = "setMy" + kind[0].upper() + kind[1:]
    getter = "getMy" + kind[0].upper() + kind[1:]

    async def set_text(world: World, p: Params) -> Any:
        text = p.opt_str(key) or ""
        if len(text) > limit:
            raise bad_request(f"{key.upper()}_INVALID")
        world.descriptions[(kind, p.opt_str("language_code") or "")] = text
        return True

    async def get_text(world: World, p: Params) -> Any:
        return {key: world.descriptions.get((kind, p.opt_str("language_code") or ""), "")}

    METHODS[setter] = set_text
    METHODS[getter] = get_text


_description_methods("description", 512)
_description_methods("shortDescription", 120)

_BY_LOWER = {name.lower(): (name, handler) for name, handler in METHODS.items()}
