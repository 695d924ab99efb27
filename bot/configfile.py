"""Where each key, table and array element of a TOML file starts: lines for config errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = frozenset(",]}\n#")


def key_lines(text: str) -> dict[Path, int]:
    """Map every dotted path (list indices as ints) to the 1-based line where it is written.

    Runs after tomllib accepted the text, so it only has to find positions, not judge syntax.
    Should it still stumble, it returns what it found so far: a line is a help, never a reason
    to fail.
    """
    scanner = _Scanner(text)
    with contextlib.suppress(IndexError, ValueError):
        scanner.document()
    return scanner.lines


class KeyLines(Mapping[Path, int]):
    """`key_lines` of a text, scanned at the first lookup.

    Only a config with a problem needs its lines, and scanning took 70% of reading a config of
    500 projects (100 ms of every start, before the catch-up could begin).
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[Path, int] | None = None

    def _found(self) -> dict[Path, int]:
        if self._lines is None:
            self._lines = key_lines(self._text)
        return self._lines

    def __getitem__(self, path: Path) -> int:
        return self._found()[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())


def line_of(lines: Mapping[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest written ancestor (a missing key's table)."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


class _Scanner:
    """A small TOML reader that records positions instead of building values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self._array_tables: dict[Path, int] = {}  # [[a.b]] path -> index of its last element

    # ---- low level -----------------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def _startswith(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def _advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _skip_blanks(self) -> None:
        while self._peek() in (" ", "\t"):
            self._advance()

    def _skip_space(self) -> None:
        """Blanks, newlines and comments."""
        while True:
            char = self._peek()
            if char in (" ", "\t", "\r", "\n"):
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((end if end >= 0 else len(self.text)) - self.pos)
            else:
                return

    def _expect(self, token: str) -> None:
        if not self._startswith(token):
            msg = f"expected {token!r} at line {self.line}"
            raise ValueError(msg)
        self._advance(len(token))

    def _record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    # ---- grammar -------------------------------------------------------------------------------

    def document(self) -> None:
        table: Path = ()
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                return
            line = self.line
            if self._startswith("[["):
                self._advance(2)
                table = self._resolve(self._key(), new_element=True)
                self._expect("]]")
                self._record(table[:-1], line)
                self._record(table, line)
            elif self._startswith("["):
                self._advance()
                table = self._resolve(self._key(), new_element=False)
                self._expect("]")
                self._record(table, line)
            else:
                self._key_value(table)

    def _key_value(self, table: Path) -> None:
        line = self.line
        keys = self._key()
        for end in range(1, len(keys) + 1):
            self._record(table + keys[:end], line)
        self._skip_blanks()
        self._expect("=")
        self._skip_blanks()
        self._value(table + keys)

    def _resolve(self, keys: tuple[str, ...], *, new_element: bool) -> Path:
        """A header's path, with the index of the current element of each array of tables."""
        path: Path = ()
        for number, key in enumerate(keys):
            path += (key,)
            if new_element and number == len(keys) - 1:
                index = self._array_tables.get(path, -1) + 1
                self._array_tables[path] = index
                path += (index,)
            elif path in self._array_tables:
                path += (self._array_tables[path],)
        return path

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_blanks()
            char = self._peek()
            if char == '"':
                parts.append(self._basic_string())
            elif char == "'":
                parts.append(self._literal_string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    msg = f"expected a key at line {self.line}"
                    raise ValueError(msg)
                parts.append(match.group())
                self._advance(len(match.group()))
            self._skip_blanks()
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    def _value(self, path: Path) -> None:
        if self._startswith('"""') or self._startswith("'''"):
            self._multiline_string(self.text[self.pos : self.pos + 3])
        elif self._peek() == '"':
            self._basic_string()
        elif self._peek() == "'":
            self._literal_string()
        elif self._peek() == "[":
            self._array(path)
        elif self._peek() == "{":
            self._inline_table(path)
        else:
            while self._peek() and self._peek() not in _SCALAR_END:
                self._advance()

    def _array(self, path: Path) -> None:
        self._advance()
        index = 0
        while True:
            self._skip_space()
            if self._peek() == "]":
                self._advance()
                return
            self._record((*path, index), self.line)
            self._value((*path, index))
            self._skip_space()
            if self._peek() == ",":
                self._advance()
                index += 1
            elif self._peek() != "]":
                msg = f"expected ',' or ']' at line {self.line}"
                raise ValueError(msg)

    def _inline_table(self, path: Path) -> None:
        self._advance()
        while True:
            self._skip_space()
            if self._peek() == "}":
                self._advance()
                return
            self._key_value(path)
            self._skip_space()
            if self._peek() == ",":
                self._advance()
            elif self._peek() != "}":
                msg = f"expected ',' or '}}' at line {self.line}"
                raise ValueError(msg)

    def _basic_string(self) -> str:
        self._advance()
        start = self.pos
        while self._peek() != '"':
            if not self._peek() or self._peek() == "\n":
                msg = f"unterminated string at line {self.line}"
                raise ValueError(msg)
            self._advance(2 if self._peek() == "\\" else 1)
        # Keys with escapes are rare; their raw text is close enough to name them.
        value = self.text[start : self.pos]
        self._advance()
        return value

    def _literal_string(self) -> str:
        self._advance()
        end = self.text.index("'", self.pos)
        value = self.text[self.pos : end]
        self._advance(end + 1 - self.pos)
        return value

    def _multiline_string(self, quote: str) -> None:
        self._advance(3)
        while not self._startswith(quote):
            if not self._peek():
                msg = "unterminated multi-line string"
                raise ValueError(msg)
            self._advance(2 if quote == '"""' and self._peek() == "\\" else 1)
        self._advance(3)
        # Up to two quotes may close the content right before the delimiter ("""a"""" is valid).
        for _ in range(2):
            if self._peek() == quote[0]:
                self._advance()
