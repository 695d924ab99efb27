"""Parse and format the duration strings of the config contract ("45s", "30m", "2h", "1d")."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhd])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhd]\s*)+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class DurationError(ValueError):
    """A duration string does not follow the `<number><s|m|h|d>` form."""


def parse_duration(text: str) -> timedelta:
    """Return the timedelta for strings such as "30m", "1h30m" or "45s"."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        msg = f'not a duration: {text!r} (use e.g. "45s", "30m", "2h", "1d")'
        raise DurationError(msg)
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Render a timedelta compactly, e.g. 5400 s -> "1h30m"."""
    total = int(delta.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
