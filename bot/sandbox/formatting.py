"""Turns Bot API text plus parse_mode into plain text and entities, the way Telegram does."""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

# Telegram strips the markup server-side and rejects malformed markup with a 400; mirroring both
# lets tests catch unescaped user input in bot messages before it reaches real users.
_COMMAND = re.compile(r"(?:(?<=\s)|^)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@])")


class ParseError(ValueError):
    """Markup that Telegram refuses with "Bad Request: can't parse entities: ..."."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[Entity]:
    """The bot_command entities Telegram adds to a plain text."""
    found: list[Entity] = []
    for match in _COMMAND.finditer(text):
        found.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return found


def render(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Plain text and sorted entities for `text`, trimmed as Telegram trims messages."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        plain, entities = _HtmlParser(text).parse()
    elif mode == "markdownv2":
        plain, entities = _MarkdownParser(text, v2=True).parse()
    elif mode == "markdown":
        plain, entities = _MarkdownParser(text, v2=False).parse()
    elif mode == "":
        plain, entities = text, []
    else:
        raise ParseError(f"unsupported parse_mode {parse_mode!r}")
    plain, entities = _trim(plain, entities)
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities]
    for command in command_entities(plain):
        start, end = command["offset"], command["offset"] + command["length"]
        # Commands inside code or links are not commands for Telegram either.
        if not any(a < end and start < b for a, b in taken):
            entities.append(command)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return plain, entities


def _trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    stripped = text.strip()
    if stripped == text:
        return text, [e for e in entities if e["length"] > 0]
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode())


class _Builder:
    """Accumulates plain text and tracks the UTF-16 position for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.position = 0
        self.entities: list[Entity] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.position += utf16_len(text)

    def close(self, entity_type: str, start: int, **extra: Any) -> None:
        if self.position > start:
            self.entities.append(
                {"type": entity_type, "offset": start, "length": self.position - start, **extra}
            )

    def result(self) -> tuple[str, list[Entity]]:
        return "".join(self.parts), self.entities


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z][a-zA-Z0-9-]*"
    r"(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*>"
)
_ATTRIBUTE = re.compile(r"([a-zA-Z][a-zA-Z0-9-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")


class _HtmlParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out = _Builder()
        # (tag name, entity type, start offset, extra fields)
        self.stack: list[tuple[str, str, int, dict[str, Any]]] = []

    def fail(self, message: str, index: int) -> ParseError:
        return ParseError(f"{message} at byte offset {_byte_offset(self.source, index)}")

    def parse(self) -> tuple[str, list[Entity]]:
        source, i = self.source, 0
        while i < len(source):
            lt = source.find("<", i)
            amp = source.find("&", i)
            stops = [p for p in (lt, amp) if p != -1]
            if not stops:
                self.out.add(source[i:])
                break
            stop = min(stops)
            self.out.add(source[i:stop])
            if stop == amp:
                entity = _HTML_ENTITY.match(source, stop)
                if entity is None:
                    # Telegram keeps a bare ampersand as text.
                    self.out.add("&")
                    i = stop + 1
                else:
                    self.out.add(self._decode(entity.group(1), stop))
                    i = entity.end()
            elif source.startswith("</", stop):
                i = self._end_tag(stop)
            else:
                i = self._start_tag(stop)
        if self.stack:
            name = self.stack[-1][0]
            raise ParseError(f'Can\'t find end tag corresponding to start tag "{name}"')
        return self.out.result()

    def _decode(self, name: str, index: int) -> str:
        if name in _NAMED:
            return _NAMED[name]
        code = int(name[2:], 16) if name.startswith("#x") else int(name[1:])
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise self.fail("Invalid numeric HTML entity", index)
        return chr(code)

    def _start_tag(self, index: int) -> int:
        match = _START_TAG.match(self.source, index)
        if match is None:
            token = re.match(r"<([a-zA-Z0-9-]*)", self.source[index:])
            raise self.fail(f'Unsupported start tag "{token.group(1) if token else ""}"', index)
        name = match.group(1).lower()
        attrs = {
            key.lower(): (value or "").strip("\"'")
            for key, value in _ATTRIBUTE.findall(match.group(2))
        }
        entity_type = _HTML_TAGS.get(name)
        extra: dict[str, Any] = {}
        if entity_type is None or (name == "span" and attrs.get("class") != "tg-spoiler"):
            raise self.fail(f'Unsupported start tag "{name}"', index)
        if name == "a":
            if not attrs.get("href"):
                # An <a> without href is plain text in Telegram.
                entity_type = ""
            else:
                extra["url"] = attrs["href"]
        elif name == "tg-emoji":
            if not attrs.get("emoji-id"):
                raise self.fail('Custom emoji tag must have "emoji-id" attribute', index)
            extra["custom_emoji_id"] = attrs["emoji-id"]
        elif name == "blockquote" and "expandable" in attrs:
            entity_type = "expandable_blockquote"
        elif name == "code" and self.stack and self.stack[-1][0] == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-") and self.stack[-1][2] == self.out.position:
                self.stack[-1][3]["language"] = language.removeprefix("language-")
                entity_type = ""
        self.stack.append((name, entity_type, self.out.position, extra))
        return match.end()

    def _end_tag(self, index: int) -> int:
        match = _END_TAG.match(self.source, index)
        if match is None:
            raise self.fail("Unexpected end tag", index)
        name = match.group(1).lower()
        if not self.stack:
            raise self.fail(f'Unexpected end tag "{name}"', index)
        open_name, entity_type, start, extra = self.stack.pop()
        if open_name != name:
            raise self.fail(
                f'Unmatched end tag, expected "</{open_name}>", found "</{name}>"', index
            )
        if entity_type:
            self.out.close(entity_type, start, **extra)
        return match.end()


_V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_V2_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
}
_V2_TYPES = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}
_V1_TYPES = {"*": "bold", "_": "italic"}


class _MarkdownParser:
    """MarkdownV2, or legacy Markdown when v2 is False."""

    def __init__(self, source: str, *, v2: bool) -> None:
        self.source = source
        self.v2 = v2
        self.out = _Builder()
        # (marker, start offset, source index)
        self.stack: list[tuple[str, int, int]] = []
        self.link: tuple[int, int] | None = None

    def fail(self, message: str, index: int) -> ParseError:
        return ParseError(f"{message} at byte offset {_byte_offset(self.source, index)}")

    def parse(self) -> tuple[str, list[Entity]]:
        source, i = self.source, 0
        while i < len(source):
            char = source[i]
            if char == "\\" and i + 1 < len(source) and (self.v2 or source[i + 1] in "_*`["):
                self.out.add(source[i + 1])
                i += 2
            elif char == "`":
                i = self._code(i)
            elif char == "[":
                if self.link is not None:
                    raise self.fail("Nested links are not allowed", i)
                self.link = (self.out.position, i)
                i += 1
            elif char == "]" and self.link is not None:
                i = self._link_end(i)
            elif self.v2 and source.startswith("||", i):
                i = self._toggle("||", i)
            elif self.v2 and source.startswith("__", i):
                i = self._toggle("__", i)
            elif char in "*_" or (self.v2 and char == "~"):
                i = self._toggle(char, i)
            elif self.v2 and char == ">" and (i == 0 or source[i - 1] == "\n"):
                i = self._quote(i)
            elif self.v2 and char in _V2_RESERVED:
                raise ParseError(
                    f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
                )
            else:
                self.out.add(char)
                i += 1
        if self.stack:
            marker, _, index = self.stack[-1]
            name = _V2_NAMES.get(marker, "the") if self.v2 else "the"
            raise self.fail(f"Can't find end of {name} entity starting", index)
        if self.link is not None:
            raise self.fail("Can't find end of the link starting", self.link[1])
        return self.out.result()

    def _toggle(self, marker: str, index: int) -> int:
        if self.stack and self.stack[-1][0] == marker:
            _, start, _ = self.stack.pop()
            types = _V2_TYPES if self.v2 else _V1_TYPES
            self.out.close(types[marker], start)
        elif not self.v2 and self.stack:
            # Legacy Markdown has no nesting: markers inside an entity are text.
            self.out.add(marker)
        else:
            self.stack.append((marker, self.out.position, index))
        return index + len(marker)

    def _code(self, index: int) -> int:
        source = self.source
        fence = "```" if source.startswith("```", index) else "`"
        body_start = index + len(fence)
        end = body_start
        while True:
            end = source.find(fence, end)
            if end == -1:
                raise self.fail("Can't find end of Pre entity starting", index)
            if self.v2 and _escaped(source, end):
                end += 1
                continue
            break
        body = source[body_start:end]
        language = ""
        if fence == "```":
            first, newline, rest = body.partition("\n")
            if newline and first and " " not in first:
                language, body = first, rest
        if self.v2:
            body = re.sub(r"\\([`\\])", r"\1", body)
        start = self.out.position
        self.out.add(body)
        if fence == "`":
            self.out.close("code", start)
        elif language:
            self.out.close("pre", start, language=language)
        else:
            self.out.close("pre", start)
        return end + len(fence)

    def _link_end(self, index: int) -> int:
        assert self.link is not None
        start, _ = self.link
        source = self.source
        if not source.startswith("(", index + 1):
            if self.v2:
                raise ParseError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            self.link = None
            self.out.add("]")
            return index + 1
        close = index + 2
        url_chars: list[str] = []
        while close < len(source) and source[close] != ")":
            if self.v2 and source[close] == "\\" and close + 1 < len(source):
                close += 1
            url_chars.append(source[close])
            close += 1
        if close >= len(source):
            raise self.fail("Can't find end of a URL", index + 1)
        self.link = None
        self.out.close("text_link", start, url="".join(url_chars))
        return close + 1

    def _quote(self, index: int) -> int:
        end = self.source.find("\n", index)
        line_end = len(self.source) if end == -1 else end
        start = self.out.position
        # Consecutive quoted lines form one blockquote, joined by their newlines.
        previous = next(
            (
                e
                for e in reversed(self.out.entities)
                if e["type"] == "blockquote" and e["offset"] + e["length"] + 1 == start
            ),
            None,
        )
        text, entities = _MarkdownParser(self.source[index + 1 : line_end], v2=True).parse()
        self.out.entities.extend({**e, "offset": e["offset"] + start} for e in entities)
        self.out.add(text)
        if previous is not None:
            previous["length"] = self.out.position - previous["offset"]
        else:
            self.out.close("blockquote", start)
        return line_end


def _escaped(source: str, index: int) -> bool:
    slashes = 0
    while index - slashes - 1 >= 0 and source[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1
