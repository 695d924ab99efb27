"""Decides whether a group message is a hazard report, a bare acknowledgement, or other."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any


class Kind(StrEnum):
    HAZARD = "hazard"
    ACK = "ack"
    OTHER = "other"


class Severity(StrEnum):
    NORMAL = "normal"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one message, with the words and rules that decided it."""

    text: str
    kind: Kind
    category: str | None
    severity: Severity
    matched: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "kind": str(self.kind),
            "category": self.category,
            "severity": str(self.severity),
            "matched": list(self.matched),
        }


@dataclass(frozen=True, slots=True)
class LexiconExtension:
    """Words a project adds to the shipped lexicon."""

    extra_hazard: tuple[str, ...] = ()
    extra_ack: tuple[str, ...] = ()
    extra_not_hazard: tuple[str, ...] = ()


@cache
def _shipped() -> dict[str, Any]:
    raw = (resources.files("escalation") / "data" / "lexicon.toml").read_text("utf-8")
    return tomllib.loads(raw)


_STRIP = re.compile(r"[\s\W_]+")


class Classifier:
    """A rule engine over the shipped lexicon plus a project's extension."""

    def __init__(self, extension: LexiconExtension | None = None) -> None:
        ext = extension or LexiconExtension()
        lex = _shipped()
        self._hazard = tuple(lex["hazard"]["words"]) + ext.extra_hazard
        self._ack = frozenset(p.lower() for p in (*lex["ack"]["phrases"], *ext.extra_ack))
        self._not = tuple(lex["not_hazard"]["phrases"]) + ext.extra_not_hazard

    def classify(self, text: str, *, is_reply: bool = False) -> Classification:
        low = text.lower()
        for phrase in self._not:
            if phrase in low:
                return Classification(text, Kind.OTHER, None, Severity.NORMAL, (f"not:{phrase}",))
        for word in self._hazard:
            if word in low:
                return Classification(text, Kind.HAZARD, None, Severity.NORMAL, (f"hazard:{word}",))
        bare = _STRIP.sub("", low)
        if bare and bare in self._ack:
            return Classification(text, Kind.ACK, None, Severity.NORMAL, (f"ack:{bare}",))
        return Classification(text, Kind.OTHER, None, Severity.NORMAL, ())


def classify_lines(lines: Iterable[str], classifier: Classifier) -> Iterator[str]:
    """One JSON object per input line; blank lines are skipped, a trailing newline is stripped.

    Objects are written with ``ensure_ascii=False`` so Chinese stays readable.
    """
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        yield json.dumps(classifier.classify(text).to_json(), ensure_ascii=False)
