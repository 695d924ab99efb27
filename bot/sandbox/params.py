"""Reads Bot API request parameters from any encoding PTB or curl may use, with typed access."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

# Free-text fields stay strings even when they look like JSON: a user may well type "42".
STRING_KEYS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "photo",
        "document",
        "data",
        "title",
        "address",
        "description",
        "short_description",
        "name",
        "url",
        "secret_token",
        "language_code",
        "emoji",
        "action",
        "business_connection_id",
        "ip_address",
        "foursquare_id",
        "google_place_id",
    }
)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class ApiError(Exception):
    """A Bot API error answer: the HTTP status doubles as error_code, as in Telegram."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class Upload:
    """A file sent as a multipart part."""

    filename: str
    content_type: str
    data: bytes


def decode_value(key: str, value: str) -> Any:
    """Undo PTB's JSON encoding of non-string values sent as form fields."""
    if key in STRING_KEYS:
        return value
    stripped = value.strip()
    if stripped in ("true", "false"):
        return stripped == "true"
    if stripped[:1] in ("{", "[") or _NUMBER.fullmatch(stripped):
        try:
            return json.loads(stripped)
        except ValueError:
            # Left as a string; the typed accessors answer 400 if it was meant to be JSON.
            return value
    return value


class Params:
    """Decoded parameters of one request; typed getters raise 400 ApiErrors."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None) -> None:
        self.values = values
        self.uploads = uploads or {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def req_int(self, key: str) -> int:
        value = self.opt_int(key)
        if value is None:
            raise bad_request(f"{key} is empty")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad_request(f"invalid {key} specified")
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"invalid {key} specified") from None

    def req_str(self, key: str, *, empty: str | None = None) -> str:
        value = self.opt_str(key)
        if not value:
            raise bad_request(empty or f"{key} is empty")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise bad_request(f"{key} must be a string")

    def opt_bool(self, key: str) -> bool:
        value = self.values.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", ""):
            return value.lower() in ("true", "1")
        if isinstance(value, int):
            return value != 0
        raise bad_request(f"invalid {key} specified")

    def opt_float(self, key: str) -> float | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad_request(f"invalid {key} specified")
        try:
            return float(value)
        except ValueError:
            raise bad_request(f"invalid {key} specified") from None

    def opt_dict(self, key: str) -> dict[str, Any] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"can't parse {key} JSON object")
        return value

    def opt_list(self, key: str) -> list[Any] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request(f"can't parse {key} JSON array")
        return value

    def chat_id(self, key: str = "chat_id") -> int | str:
        """An integer id, or an "@username" string."""
        value = self.values.get(key)
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            return value
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad_request("chat not found")
        try:
            return int(value)
        except ValueError:
            raise bad_request("chat not found") from None


async def read_params(request: web.Request) -> Params:
    """Parameters from the query string overlaid with the body (JSON, form or multipart)."""
    values: dict[str, Any] = {k: decode_value(k, v) for k, v in request.query.items()}
    uploads: dict[str, Upload] = {}
    if not request.can_read_body:
        return Params(values)
    content_type = request.content_type
    try:
        if content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise bad_request("request body must be a JSON object")
            values.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            _merge_form(await request.post(), values, uploads)
        elif await request.read():
            raise bad_request(f"unsupported Content-Type {content_type!r}")
    except ValueError as exc:
        raise bad_request(f"can't parse request body: {exc}") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request Entity Too Large") from None
    return Params(values, uploads)


def _merge_form(
    form: MultiDictProxy[str | bytes | bytearray | web.FileField],
    values: dict[str, Any],
    uploads: dict[str, Upload],
) -> None:
    for key, value in form.items():
        if isinstance(value, web.FileField):
            data = value.file.read()
            uploads[key] = Upload(value.filename, value.content_type, data)
            values[key] = f"<upload {value.filename}, {len(data)} bytes>"
        elif isinstance(value, str):
            values[key] = decode_value(key, value)
        else:
            values[key] = decode_value(key, bytes(value).decode(errors="replace"))
