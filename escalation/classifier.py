"""Decides whether a group message is a hazard report, a bare acknowledgement, or other."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property, partial
from typing import NamedTuple

from escalation import lexicon as lx
from escalation import ngram


class Kind(StrEnum):
    HAZARD = "hazard"
    ACK = "ack"
    OTHER = "other"


class Severity(StrEnum):
    NORMAL = "normal"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, eq=False)
class Classification:
    """The verdict on one message, with the words and rules that decided it (`matched`).

    `why` is `matched`, or a function that makes it on first reading: ranking the n-grams that
    weighed most costs as much as the verdict, and the bot reads the reasons of a report, while
    the thousands of 收到 and chatter lines it only skips are never asked why.
    """

    text: str
    kind: Kind
    category: str | None
    severity: Severity
    why: tuple[str, ...] | Callable[[], tuple[str, ...]]

    @property
    def matched(self) -> tuple[str, ...]:
        why = self.why
        if callable(why):
            why = why()
            object.__setattr__(self, "why", why)  # made once; the value does not change
        return why

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Classification):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.text, self.kind, self.category, self.severity, self.matched)

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


# How far apart (in characters between the two terms) an object and its state may be.
# Chinese packs a clause into a few characters; English spends more on articles and spaces.
_GAP_ZH = 10
_GAP_EN = 32
# How far back a Chinese failure may find the topic of the clause before (see `_topic`).
_TOPIC_GAP_ZH = 20
# Longer messages are not bare acknowledgements, and the ack grammar backtracks.
_ACK_MAX_CHARS = 80
_SENTENCE_END = re.compile(r"[。!?;\n]|\.(?:\s|$)")
# A Chinese question without a question mark ends in a particle: 修了没, 处理了没有.
_QUESTION_END = re.compile(r"(?:吗|么|呢|了没有?)\W*$")
_LATIN = re.compile("[a-z]")
# Where the first clause of a reply ends ("收到，…", "noted - …", "好的 …").
_CLAUSE_END = re.compile(r"[,.;:!~。、\s-]+")
# Words that make "整改完毕" a promise, not a claim: "今天全部整改完毕", "will get it sorted".
# A time word followed by 已 dates a claim instead ("上午已经处理了").
_PROMISE = re.compile(
    r"(?:马上|立即|立刻|今天|明天|之前(?![群说发就的也都我他有])|之内|下班前|尽快|会|将|下午|上午|晚上"
    r"|今晚|中午|一会|等会|待会|稍后|回头)(?!\s*已)"
    r"|\bwill\b|\btoday\b|\basap\b|\blater\b|\btomorrow\b"
)
# A bare "1" (or "111", "+1") is how many groups say 收到.
_BARE_ONE = re.compile(r"\+?1{1,4}[.!。]*")
# A report that ends by asking who did it ("栏杆没了，谁拆的?") still reports; the question is
# about a person, not about the hazard.
_WHO_TAIL = re.compile(r",\s*(?:这是|是|到底是|到底|又是)?(?:谁|哪个|\bwho\b)[^,]{0,20}$")
_EVIDENCE_KINDS = frozenset({lx.ACT, lx.HAZARD_WORD, lx.IMMINENCE})
# Objects that pattern states (failure, presence, proximity) can pair with.
_PAIRED_OBJECTS = frozenset(
    kind for kind, states in lx.PAIRS.items() if states & {lx.FAILURE, lx.PRESENCE, lx.PROXIMITY}
)
_FILTER_KINDS = frozenset({lx.NEGATION, lx.RESOLUTION, lx.NOTICE})
# What names a hazard in an explanation, besides its objects.
_EXPLAINING = lx.STATE_ROLES | _EVIDENCE_KINDS
# Filters that deny or close a hazard; unlike a notice or a question they outrank imminence.
_DENIALS = ("negation:", "resolution:", "stats:")


class _Hit(NamedTuple):
    """A term or pattern found in the text. A tuple, because a message makes several."""

    start: int
    end: int
    term: str
    roles: tuple[lx.Role, ...]
    kinds: frozenset[str]
    latin: bool


class RuleClassifier:
    """A rule engine over the shipped lexicon plus a project's extension."""

    def __init__(self, extension: LexiconExtension | None = None) -> None:
        if extension is None or extension == LexiconExtension():
            self._lex = lx.shipped()
        else:
            self._lex = lx.build(
                lx.shipped_data(),
                extra_hazard=extension.extra_hazard,
                extra_ack=extension.extra_ack,
                extra_not_hazard=extension.extra_not_hazard,
            )
        self._rank = {cat: i for i, cat in enumerate(self._lex.priority)}

    def classify(self, text: str, *, is_reply: bool = False) -> Classification:
        """Classify one message. `is_reply` is accepted for callers; the verdict does not need it.

        A bare 收到 is an ack wherever it appears; the bot decides what an ack outside a reply
        means. A reply that acknowledges and also reports something new is a hazard.
        """
        return self.decide(text, lx.normalise(text))

    def decide(self, text: str, norm: str, hits: list[_Hit] | None = None) -> Classification:
        """`classify` for a text already normalised by `lexicon.normalise` (and scanned)."""
        if hits is None:
            hits = self.scan(norm)
        hazard = self._hazard(text, norm, hits)
        if hazard is not None and hazard.kind is Kind.HAZARD:
            return hazard
        ack = self._ack(text, norm, hits)
        if ack is not None:
            return ack
        if hazard is not None:
            return hazard
        return Classification(text, Kind.OTHER, None, Severity.NORMAL, ("rule:no_evidence",))

    def may_be_imminent(self, norm: str) -> bool:
        """False when no imminence term occurs in the text at all: the scan could find none."""
        return self._lex.imminence.search(norm) is not None

    @staticmethod
    def imminent(hits: list[_Hit]) -> bool:
        """Whether any hit says danger is imminent: only then can the rules call it critical."""
        return any(lx.IMMINENCE in h.kinds for h in hits)

    @staticmethod
    def terms(hits: list[_Hit]) -> list[str]:
        """The hits that could be evidence, as the rules name them: object:配重块, failure:松动."""
        named = []
        for h in hits:
            for role in h.roles:  # a tuple: the same order in every process, unlike h.kinds
                if role.kind in lx.OBJECT_ROLES:
                    named.append(f"object:{h.term}")
                elif role.kind in _EXPLAINING:
                    named.append(f"{role.kind}:{h.term}")
        return _dedupe(named)

    def scan(self, norm: str) -> list[_Hit]:
        """Every lexicon term and pattern in the text, in order of position."""
        lex = self._lex
        info = lex.info
        make = _Hit._make  # a third of the cost of calling _Hit(...) with keywords resolved
        hits = [make((start, end, term, *info[term])) for start, end, term in lex.terms(norm)]
        paired = any(not h.kinds.isdisjoint(_PAIRED_OBJECTS) for h in hits)
        extra = self._pattern_hits(norm, lex.all_patterns if paired else lex.act_patterns)
        if not paired and any(not h.kinds.isdisjoint(_PAIRED_OBJECTS) for h in extra):
            # A pattern found the object (a load on the hook); its states may be patterns too.
            extra = self._pattern_hits(norm, lex.all_patterns)
        if extra:
            hits = sorted(hits + extra, key=lambda h: h.start)
        return hits

    def _pattern_hits(self, norm: str, patterns: tuple[lx.PatternSet, lx.PatternSet]) -> list[_Hit]:
        """Hits of the (Chinese, English) patterns; each runs only on text in its script."""
        chinese, english = patterns
        extra = []
        for pattern in (
            chinese if not norm.isascii() else None,
            english if _LATIN.search(norm) else None,
        ):
            if pattern is None:
                continue
            for m, roles, kinds in pattern.hits(norm):
                extra.append(_Hit(m.start(), m.end(), m.group(), roles, kinds, False))
        return extra

    def _hazard(self, text: str, norm: str, hits: list[_Hit]) -> Classification | None:
        """A hazard when some sentence holds evidence that no filter in its segment cancels.

        Returns OTHER, with the filters that fired, when all evidence was cancelled; and None
        when there was no evidence at all.
        """
        if not hits:
            return None
        kinds = frozenset().union(*(h.kinds for h in hits))
        if lx.NOT_HAZARD in kinds:
            denied = tuple(f"not_hazard:{h.term}" for h in hits if _has(h, lx.NOT_HAZARD))
            return Classification(text, Kind.OTHER, None, Severity.NORMAL, denied)
        if kinds.isdisjoint(_EVIDENCE_KINDS) and (
            kinds.isdisjoint(lx.PAIRS) or kinds.isdisjoint(lx.STATE_ROLES)
        ):
            # Most chatter: nothing here could be evidence, so skip the clause analysis.
            fired = [f"{k}:{h.term}" for h in hits for k in h.kinds if k in _FILTER_KINDS]
            if not fired:
                return None
            why_not = (*_dedupe(fired), "rule:no_evidence")
            return Classification(text, Kind.OTHER, None, Severity.NORMAL, why_not)

        evidence: list[tuple[str, str]] = []  # (category, reason)
        reasons: list[str] = []
        imminent: list[_Hit] = []
        cancelled: list[str] = []
        filters: list[str] = []
        first_evidence: int | None = None
        # Most messages have no connective, no filter word and no question word: those steps
        # then skip their loops over the hits.
        segments = _split(hits, norm) if lx.CONNECTIVE in kinds else [(hits, 0, len(norm))]
        filtered = not kinds.isdisjoint(_FILTER_KINDS)
        asking = lx.QUESTION in kinds
        for seg_hits, start, end in segments:
            seg_filters = self._segment_filters(seg_hits, norm[start:end], filtered)
            filters += seg_filters
            denials = [r for r in seg_filters if r.startswith(_DENIALS)]
            for sentence_hits, sentence_text, sentence_at in _sentences(seg_hits, norm, start, end):
                found, why, urgent = self._evidence(sentence_hits, norm)
                if urgent and not denials:
                    # Urgency counts for the whole message: "有人在下面！吊的钢管没捆牢".
                    imminent += urgent
                # 随时 or 有人在下面 alone is not a report ("随时联系我"); 有人晕倒 is.
                if not found and not any(_named(h) for h in urgent):
                    continue
                # An imminent danger outranks a notice or a question mark, not a denial.
                if urgent:
                    blocked = denials
                else:
                    blocked = seg_filters + _question(
                        sentence_hits, sentence_text, sentence_at, asking
                    )
                if blocked:
                    cancelled += why + blocked
                    continue
                evidence += found or [(lx.GENERIC, "imminence")]
                reasons += why
                if first_evidence is None:
                    first_evidence = sentence_hits[0].start
        if not evidence:
            if cancelled or filters:
                why_not = (*_dedupe(cancelled + filters), "rule:no_evidence")
                return Classification(text, Kind.OTHER, None, Severity.NORMAL, why_not)
            return None

        category = self._category(evidence, imminent, hits)
        severity = Severity.CRITICAL if imminent else Severity.NORMAL
        reasons += [f"imminence:{h.term}" for h in imminent]
        if first_evidence and self._is_ack(_before_connective(hits, norm, first_evidence)):
            reasons.append("rule:ack_with_new_hazard")
        reasons.append(f"category:{category}")
        return Classification(text, Kind.HAZARD, category, severity, tuple(_dedupe(reasons)))

    def _segment_filters(self, hits: list[_Hit], seg_text: str, filtered: bool) -> list[str]:
        """Denials, fixes, notices and statistics: each cancels a report in its segment.

        A notice word right after an absence is a missing procedure, not a notice:
        "操作工也没培训" reports untrained operators. `filtered` is false when the message
        holds no denial, fix or notice word.
        """
        fired = []
        if filtered:
            fired = [
                f"{role.kind}:{h.term}"
                for prev, h in zip([None, *hits], hits, strict=False)
                for role in h.roles
                if role.kind in (lx.NEGATION, lx.RESOLUTION, lx.NOTICE)
                and not (
                    role.kind == lx.NOTICE
                    and prev is not None
                    and prev.end == h.start
                    and _has(prev, lx.ABSENCE)
                )
            ]
        stats = self._lex.stats.search(seg_text)
        if stats:
            fired.append(f"stats:{stats.group().strip()}")
        return fired

    def _evidence(
        self, hits: list[_Hit], norm: str
    ) -> tuple[list[tuple[str, str]], list[str], list[_Hit]]:
        """Acts, hazard words and object-state pairs in one sentence; and imminence words."""
        found: list[tuple[str, str]] = []
        why: list[str] = []
        urgent: list[_Hit] = []
        objects: list[tuple[_Hit, lx.Role]] = []
        states: list[_Hit] = []
        for h in hits:
            for role in h.roles:
                if role.kind == lx.ACT:
                    found.append((role.category, f"act:{h.term}"))
                    why.append(f"act:{h.term}")
                elif role.kind == lx.HAZARD_WORD:
                    found.append((lx.GENERIC, f"hazard_word:{h.term}"))
                    why.append(f"hazard_word:{h.term}")
                elif role.kind == lx.IMMINENCE:
                    urgent.append(h)
                elif role.kind in lx.PAIRS:
                    objects.append((h, role))
                elif role.kind in lx.STATE_ROLES and (not states or states[-1] is not h):
                    states.append(h)
        for state in states:
            kinds = [r.kind for r in state.roles if r.kind in lx.STATE_ROLES]
            for obj, role, kind in self._subjects(state, kinds, objects, norm):
                if role.kind == lx.AMENITY:
                    continue  # the air conditioner is broken, not the crane
                category = role.category
                if role.kind == lx.GUARD and category in self._lex.deferring_guards:
                    category = self._guarded(objects, state) or category
                found.append((category, f"object:{obj.term}"))
                why += [f"object:{obj.term}", f"{kind}:{state.term}"]
        return found, why, urgent

    @staticmethod
    def _subjects(
        state: _Hit, state_kinds: list[str], objects: list[tuple[_Hit, lx.Role]], norm: str
    ) -> list[tuple[_Hit, lx.Role, str]]:
        """The objects a state describes, each with the role the state plays for it.

        A failure describes the nearest object before it, as a predicate its subject
        ("X 松动", "X is loose"); an absence the nearest after it ("没有X", "no X"); each falls
        back to the other side ("X没有了", "X missing"). A term that can be either (没铺)
        takes whichever reading finds the closer object. A proximity relates two things, so
        it describes every object in reach ("高压线底下有吊车，离得很近"), except an ignition
        source, whose danger is what it ignites. With nothing in reach, a failure may still
        describe the topic of the clause before (see `_topic`).
        """
        reach: list[tuple[int, int, _Hit, lx.Role, str]] = []
        for kind in state_kinds:
            for obj, role in objects:
                if obj is state or kind not in lx.PAIRS[role.kind]:
                    continue
                if kind == lx.PROXIMITY and lx.IGNITION in obj.kinds:
                    continue
                after = obj.start >= state.end
                gap = obj.start - state.end if after else state.start - obj.end
                if kind == lx.PROXIMITY and state.start <= obj.start < state.end:
                    gap = 0  # "离锯片就几公分": the pattern names the thing it is close to
                limit = _GAP_EN if obj.latin or state.latin else _GAP_ZH
                if 0 <= gap <= limit:
                    wrong_side = after if kind != lx.ABSENCE else not after
                    reach.append((int(wrong_side), gap, obj, role, kind))
        if not reach:
            return _topic(state, state_kinds, objects, norm)
        if lx.PROXIMITY in state_kinds:
            return [(obj, role, kind) for _, _, obj, role, kind in reach]
        _, _, obj, role, kind = min(reach, key=lambda r: (r[0], r[1]))
        return [(obj, role, kind)]

    def _guarded(self, objects: list[tuple[_Hit, lx.Role]], state: _Hit) -> str | None:
        """The category of a dangerous thing a fall or generic guard protects, if any.

        A missing cover on a settling pond is a drowning risk; the excavator that knocked a
        rail down (inside the state "被挖机碰倒") is not what the rail guards.
        """
        guarded = [
            r.category
            for h, r in objects
            if r.kind == lx.THING
            and r.category in self._lex.sources
            and not (state.start <= h.start and h.end <= state.end)
        ]
        return self._best(guarded) if guarded else None

    def _category(
        self, evidence: list[tuple[str, str]], imminent: list[_Hit], hits: list[_Hit]
    ) -> str:
        """The evidence's own category first, then imminence, then any object named nearby."""
        # An act names its danger more precisely than an object and a state do.
        acts = [c for c, why in evidence if c != lx.GENERIC and why.startswith("act:")]
        if acts:
            return self._best(acts)
        specific = [cat for cat, _ in evidence if cat != lx.GENERIC]
        if specific:
            return self._best(specific)
        urgent = [
            r.category
            for h in imminent
            for r in h.roles
            if r.kind == lx.IMMINENCE and r.category != lx.GENERIC
        ]
        if urgent:
            return self._best(urgent)
        context = [
            r.category
            for h in hits
            for r in h.roles
            if r.kind in lx.OBJECT_ROLES and r.category != lx.GENERIC
        ]
        if context:
            return self._best(context)
        return self._lex.fallback

    def _best(self, categories: list[str]) -> str:
        return min(categories, key=lambda c: self._rank.get(c, len(self._rank)))

    def _ack(self, text: str, norm: str, hits: list[_Hit]) -> Classification | None:
        """An ack: acknowledgement words only, or a reply that opens with them and adds nothing.

        "收到，马上叫分包负责人过去" opens with 收到 and goes on to promise; it is still words.
        What ends an ack is a question, a report (handled before), or a claim about the site
        ("已经固定了", "没问题") that is not a promise for later ("今天全部整改完毕").
        """
        core = self._ack_terms(norm)
        rule = "rule:whole_message_ack"
        if not core:
            core = self._lead_ack_terms(norm, hits)
            rule = "rule:opens_with_ack"
        if not core:
            return None
        claims = [h.term for h in hits if _has(h, lx.RESOLUTION)]
        if claims and not _PROMISE.search(norm):
            # "这个已经处理了" is made of ack words, but it says the work is done.
            why_not = (*_dedupe(f"resolution:{term}" for term in claims), "rule:no_evidence")
            return Classification(text, Kind.OTHER, None, Severity.NORMAL, why_not)
        reasons = (*_dedupe(f"ack:{term}" for term in core), rule)
        return Classification(text, Kind.ACK, None, Severity.NORMAL, reasons)

    def _lead_ack_terms(self, norm: str, hits: list[_Hit]) -> list[str]:
        """The ack terms of the first clause when the rest asks, announces and claims nothing."""
        if "?" in norm or len(norm) > 2 * _ACK_MAX_CHARS:
            return []
        end = _CLAUSE_END.search(norm)
        if end is None or end.end() >= len(norm):
            return []
        core = self._ack_terms(norm[: end.start()])
        if not core:
            return []
        rest = [h for h in hits if h.start >= end.end()]
        # 通知 after 收到 promises to notify someone; as a notice it would end the ack.
        notices = (h for h in rest if _has(h, lx.NOTICE) and h.term not in self._lex.ack_words)
        if any(_has(h, lx.QUESTION) for h in rest) or any(notices):
            return []
        claims = any(_has(h, lx.NEGATION) or _has(h, lx.RESOLUTION) for h in rest)
        if claims and not _PROMISE.search(norm, end.end()):
            return []
        return core

    def _is_ack(self, norm: str) -> bool:
        return bool(self._ack_terms(norm))

    def _ack_terms(self, norm: str) -> list[str]:
        """The core ack terms when the normalised text is acknowledgement words only."""
        # A question is not an acknowledgement; a long message is not a bare one.
        if "?" in norm or len(norm) > 2 * _ACK_MAX_CHARS:
            return []
        if norm[:1] in ("1", "+") and _BARE_ONE.fullmatch(norm):
            return ["1"]
        if "[" in norm:
            norm = lx.stickers(norm)
        # An English word no ack term contains ("noted" yes, "scaffold" no) rules it out.
        english = norm.isascii() and "@" not in norm
        if english and not self._lex.ack_latin.issuperset(lx.LATIN_WORD.findall(norm)):
            return []
        # Most chatter holds a Chinese character no ack word has: reject before any regex.
        if self._lex.not_ack_han.search(norm):
            return []
        form = lx.ack_form(norm)
        if not form or len(form) > _ACK_MAX_CHARS or not self._lex.ack_chars.issuperset(form):
            # A character no ack word contains rules the grammar out without running it.
            return []
        if not self._lex.ack_full.fullmatch(form):
            return []
        return [m.group() for m in self._lex.ack_core.finditer(form)]


def _before_connective(hits: list[_Hit], norm: str, position: int) -> str:
    """The text before `position`, without a connective that ends it ("收到，另外" → "收到，")."""
    before = [h for h in hits if h.end <= position]
    if before and _has(before[-1], lx.CONNECTIVE):
        return norm[: before[-1].start]
    return norm[:position]


def _topic(
    state: _Hit, state_kinds: list[str], objects: list[tuple[_Hit, lx.Role]], norm: str
) -> list[tuple[_Hit, lx.Role, str]]:
    """The object a Chinese failure describes from a clause before: "砖墙砌了三米多高，…，就晃".

    A Chinese sentence names its topic once and comments on it in the clauses that follow, so
    a failure with no object in reach may describe the nearest one before it, at most two
    commas back and _TOPIC_GAP_ZH characters away. Not when the failure modifies what follows
    it ("松动的那个抽屉"), and not across another object.
    """
    if state.latin or lx.FAILURE not in state_kinds or norm.startswith("的", state.end):
        return []
    before = [(obj, role) for obj, role in objects if obj.end <= state.start]
    if not before:
        return []
    obj, role = max(before, key=lambda o: o[0].end)
    between = norm[obj.end : state.start]
    if (
        lx.FAILURE not in lx.PAIRS[role.kind]
        or len(between) > _TOPIC_GAP_ZH
        or sum(between.count(c) for c in ",、") > 2
    ):
        return []
    return [(obj, role, lx.FAILURE)]


def _question(hits: list[_Hit], sentence: str, at: int, asking: bool) -> list[str]:
    """Why a sentence asks rather than reports: a question word, a "?", a final particle.

    A last clause that asks who did it ("…没了，谁拆的?") is left out: it asks about a person.
    `at` is where the sentence starts in the normalised text; `asking` is false when the
    message holds no question word.
    """
    # The tail needs one of its three words; most sentences have none, and `in` is cheaper.
    if "谁" in sentence or "哪个" in sentence or "who" in sentence:
        tail = _WHO_TAIL.search(sentence)
        if tail is not None and tail.start() > 0:
            hits = [h for h in hits if h.start < at + tail.start()]
            sentence = sentence[: tail.start()]
    if asking:
        words = [f"question:{h.term}" for h in hits if _has(h, lx.QUESTION)]
        if words:
            return words
    if "?" in sentence or _QUESTION_END.search(sentence):
        return ["question:?"]
    return []


def _named(hit: _Hit) -> bool:
    """Whether an imminence word names its danger (晕倒, 着火了) rather than only its urgency."""
    return any(r.kind == lx.IMMINENCE and r.category != lx.GENERIC for r in hit.roles)


def _has(hit: _Hit, kind: str) -> bool:
    return kind in hit.kinds


def _split(hits: list[_Hit], norm: str) -> Iterator[tuple[list[_Hit], int, int]]:
    """Hits and bounds of each segment between connectives ("收到，另外…" opens a new one)."""
    start = 0
    current: list[_Hit] = []
    for h in hits:
        if _has(h, lx.CONNECTIVE):
            yield current, start, h.start
            current, start = [], h.end
        else:
            current.append(h)
    yield current, start, len(norm)


def _sentences(
    hits: list[_Hit], norm: str, start: int, end: int
) -> Iterator[tuple[list[_Hit], str, int]]:
    """Hits, text and start of each sentence in a segment; a "?" belongs to the sentence it ends."""
    i = 0
    for m in _SENTENCE_END.finditer(norm, start, end):
        group: list[_Hit] = []
        while i < len(hits) and hits[i].start < m.end():
            group.append(hits[i])
            i += 1
        if group:
            yield group, norm[start : m.end()], start
        start = m.end()
    if i < len(hits):
        yield hits[i:], norm[start:end], start


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def classify_lines(lines: Iterable[str], classifier: Classifier) -> Iterator[str]:
    """One JSON object per input line; blank lines are skipped, a trailing newline is stripped.

    Objects are written with ``ensure_ascii=False`` so Chinese stays readable.
    """
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        yield json.dumps(classifier.classify(text).to_json(), ensure_ascii=False)


# The model's verdict stands when it is at least this sure; below it, the lexicon's rules decide.
# Chosen on parts 5 and 6 while the model was trained without them (docs/classifier.md).
CONFIDENT = 0.9
# The model learned from chat lines (the longest labelled message has 119 characters); a
# longer text is read by the rules, sentence by sentence, where a report in its first line is
# not outvoted by a page of anything else.
MODEL_MAX_CHARS = 200
# A question is the rules' to read: 哪个配重块? is no report and no ack, 收到? asks rather than
# acknowledges, and 栏杆被拆了，谁拆的? still reports. A bag of n-grams does not see the question.
_ASKS = ("?", "？")


class Classifier:
    """What the bot uses: a learned n-gram model first, the lexicon's rules where it is unsure.

    On text written after each tuning round the model read reports and acks far better than
    the rules (docs/classifier.md), so its verdict stands when it is sure. The lexicon decides
    what the model is unsure of and any message with a word the project added in its config
    (its own words win), and it explains and grades every hazard: its terms go in `matched`
    beside the n-grams that weighed most, and its imminence words make a report critical.
    """

    def __init__(self, extension: LexiconExtension | None = None) -> None:
        self._extension = extension
        ext = extension or LexiconExtension()
        words = (*ext.extra_hazard, *ext.extra_ack, *ext.extra_not_hazard)
        self._own_words = tuple(w for w in (lx.normalise(w) for w in words) if w)

    # The model and the lexicon take about half a second to load: loaded when first needed (or
    # by `warm`), so that a restart spends its first second on overdue escalations.
    @cached_property
    def rules(self) -> RuleClassifier:
        return RuleClassifier(self._extension)

    @cached_property
    def _models(self) -> ngram.ModelSet:
        return ngram.shipped_set()

    def warm(self) -> None:
        """Load the model and the lexicon now rather than at the first message."""
        _ = self.rules, self._models

    def classify(self, text: str, *, is_reply: bool = False) -> Classification:
        """Classify one message. `is_reply` is accepted for callers; the verdict does not need it.

        A bare 收到 is an ack wherever it appears; the bot decides what an ack outside a reply
        means. A reply that acknowledges and also reports something new is a hazard.
        """
        norm = lx.normalise(text)
        if self._own_words and any(w in norm for w in self._own_words):
            ruled = self.rules.decide(text, norm)
            return replace(ruled, why=(*ruled.matched, "rule:project_words"))
        if len(norm) > MODEL_MAX_CHARS or norm.rstrip().endswith(_ASKS):
            return self.rules.decide(text, norm)
        models = self._models
        reading = models.read(norm)  # looked up once for the three models
        verdict = models.kind_of(reading, reasons=0)
        if verdict.probability < CONFIDENT:
            ruled = self.rules.decide(text, norm)
            return replace(ruled, why=(*ruled.matched, _model(verdict), "rule:model_unsure"))
        kind = Kind(verdict.label)
        if kind is not Kind.HAZARD:
            return Classification(
                text, kind, None, Severity.NORMAL, partial(_model_why, models, reading)
            )
        # The lexicon explains the report. Its full analysis is needed only for severity, and
        # only where an imminence word could make the report critical; elsewhere the terms it
        # finds say enough, and the rules would have called the report normal.
        rules = self.rules
        hits = rules.scan(norm) if rules.may_be_imminent(norm) else None
        critical = False
        lexicon: list[str] | None = None  # None: the lexicon's terms, named when read
        if hits is not None and rules.imminent(hits):
            ruled = rules.decide(text, norm, hits)
            critical = ruled.kind is Kind.HAZARD and ruled.severity is Severity.CRITICAL
            lexicon = (
                [m for m in ruled.matched if not m.startswith("category:")]
                if ruled.kind is Kind.HAZARD
                else []
            )
        category = models.category_of(reading)
        graded: tuple[str, ...] = ()
        if not critical and models.severity_of(reading) == Severity.CRITICAL:
            critical = True
            graded = ("model:critical",)

        def why() -> tuple[str, ...]:
            terms = (
                rules.terms(rules.scan(norm) if hits is None else hits)
                if lexicon is None
                else lexicon
            )
            return (*_model_why(models, reading), *terms, *graded, f"category:{category}")

        severity = Severity.CRITICAL if critical else Severity.NORMAL
        return Classification(text, Kind.HAZARD, category, severity, why)


def _model_why(models: ngram.ModelSet, reading: ngram.Reading) -> tuple[str, ...]:
    """The model's verdict, its probability, and the n-grams that weighed most."""
    verdict = models.kind_of(reading)
    return (_model(verdict), *verdict.reasons)


def _model(verdict: ngram.Verdict) -> str:
    return f"model:{verdict.label} {verdict.probability:.2f}"
