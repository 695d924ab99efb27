"""The classifier's lexicon: loads the shipped TOML, merges a project's words, compiles matchers."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Roles a term can play. Object roles pair with the state roles in PAIRS.
THING = "thing"
GUARD = "guard"
PPE = "ppe"
PROCEDURE = "procedure"
ZONE = "zone"
FUEL = "fuel"
AMENITY = "amenity"
OPERATOR = "operator"
CONTEXT = "context"
FAILURE = "failure"
ABSENCE = "absence"
PRESENCE = "presence"
IGNITION = "ignition"
PROXIMITY = "proximity"
UNFIT = "unfit"
ACT = "act"
HAZARD_WORD = "hazard_word"
IMMINENCE = "imminence"
NEGATION = "negation"
RESOLUTION = "resolution"
NOTICE = "notice"
QUESTION = "question"
CONNECTIVE = "connective"
NOT_HAZARD = "not_hazard"

PAIRS: Mapping[str, frozenset[str]] = {
    THING: frozenset({FAILURE, PROXIMITY}),
    GUARD: frozenset({FAILURE, ABSENCE}),
    PPE: frozenset({ABSENCE}),
    PROCEDURE: frozenset({ABSENCE}),
    ZONE: frozenset({PRESENCE}),
    FUEL: frozenset({IGNITION, PROXIMITY}),
    AMENITY: frozenset({FAILURE, ABSENCE}),
    OPERATOR: frozenset({UNFIT}),
}
OBJECT_ROLES = frozenset(PAIRS) | {CONTEXT}
STATE_ROLES = frozenset({FAILURE, ABSENCE, PRESENCE, IGNITION, PROXIMITY, UNFIT})
GENERIC = "generic"

_OBJECT_TABLES = {
    "things": THING,
    "guards": GUARD,
    "ppe": PPE,
    "procedures": PROCEDURE,
    "zones": ZONE,
    "fuels": FUEL,
    "amenities": AMENITY,
    "operators": OPERATOR,
    "context": CONTEXT,
}
_FILTER_KEYS = {
    "negation": NEGATION,
    "resolution": RESOLUTION,
    "notice": NOTICE,
    "question": QUESTION,
    "connective": CONNECTIVE,
}

# Emoji people use to mean "received" all become 👍; skin tones and joiners go.
_ACK_EMOJI = "👍👌🙏✊💪🫡✅👏🤝🆗✌☑✔"
_EMOJI_TABLE = str.maketrans(
    dict.fromkeys(_ACK_EMOJI, "👍")
    | dict.fromkeys(map(chr, range(0x1F3FB, 0x1F400)))
    | dict.fromkeys("\ufe0f\u200d")
)


# WeChat shows its stickers as text codes: [抱拳], [强], [OK]. Those that mean "received" become
# 👍 for the ack test; any other code is dropped.
_ACK_STICKERS = frozenset(
    {"抱拳", "强", "ok", "握手", "好的", "拳头", "胜利", "合十", "耶", "收到", "赞", "玫瑰"}
)
_STICKER = re.compile(r"\[([^\[\]\s]{1,5})\]")


def stickers(norm: str) -> str:
    """Sticker codes in normalised text replaced: an ack sticker by 👍, any other by a space."""
    return _STICKER.sub(lambda m: " 👍 " if m.group(1) in _ACK_STICKERS else " ", norm)


# Full-width punctuation as Chinese input methods type it, and what NFKC makes of each: one
# ASCII character. With these replaced a message is usually in NFKC already, which is checked
# far faster than made; the result is the same, as NFKC decomposes each of them so anyway.
_FULL_WIDTH = (("，", ","), ("？", "?"), ("！", "!"), ("：", ":"))


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, one space between words."""
    folded = text
    for wide, narrow in _FULL_WIDTH:
        folded = folded.replace(wide, narrow)
    if not unicodedata.is_normalized("NFKC", folded):
        folded = unicodedata.normalize("NFKC", text)
    folded = folded.lower().replace("\u2019", "'")
    return " ".join(folded.split())


@dataclass(frozen=True, slots=True)
class Role:
    """One meaning of a term: its role and, for objects, acts and imminence, a category."""

    kind: str
    category: str


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Compiled lexicon: terms indexed for a longest-match scan, patterns, the ack grammar."""

    roles: Mapping[str, tuple[Role, ...]]
    # Per term: its roles, the set of their kinds, whether it is ASCII (one lookup per hit).
    info: Mapping[str, tuple[tuple[Role, ...], frozenset[str], bool]]
    # Terms that start with anything but an ASCII letter or digit, by their first two
    # characters: the lengths of the longer ones, longest first. `singles`, the one-character
    # terms, is only asked about such characters too.
    lengths: Mapping[str, tuple[int, ...]]
    singles: frozenset[str]
    starts: frozenset[str]  # first characters of terms, and ASCII word characters
    # Matched at the start of an ASCII word: group 1 is the longest term starting there, or
    # else the match is the word itself, which no term starts inside.
    word_scan: re.Pattern[str]
    # Every ASCII term, for `finditer` over an ASCII message. A second regex, because one that
    # also matched the words without terms (to skip them) would make a Match of each.
    ascii_scan: re.Pattern[str]
    # (Chinese, English) patterns: acts and objects alone, and with states (beside an object).
    act_patterns: tuple[PatternSet, PatternSet]
    all_patterns: tuple[PatternSet, PatternSet]
    stats: re.Pattern[str]
    # Every imminence term, as one regex: a text where it finds nothing cannot be critical.
    imminence: re.Pattern[str]
    ack_full: re.Pattern[str]
    ack_chars: frozenset[str]
    ack_latin: frozenset[str]  # every ASCII word an ack can contain
    # A Chinese character no ack word or name contains: one search rejects most chatter.
    not_ack_han: re.Pattern[str]
    ack_core: re.Pattern[str]
    ack_words: frozenset[str]  # the core ack terms, normalised
    priority: tuple[str, ...]
    fallback: str
    sources: frozenset[str]
    deferring_guards: frozenset[str]

    def terms(self, norm: str) -> list[tuple[int, int, str]]:
        """Leftmost-longest, non-overlapping lexicon terms in normalised text.

        A term that starts with an ASCII letter or digit starts only where a word starts; one
        that ends in one ends only where a word ends (no "no" in "know"). An ASCII message
        (a third of them, and the longest) is scanned by one regex in C: a prefix trie whose
        first branches are the few ASCII characters, so CPython's engine, which tries
        alternatives one by one, rejects a word after a handful of comparisons.

        Chinese terms start with some 900 different characters, too many branches for that
        engine at every position; there each position probes a dict with only the lengths of
        terms that share its first two characters, and each ASCII word is one regex match.
        """
        if norm.isascii():
            return [(m.start(), m.end(), m.group()) for m in self.ascii_scan.finditer(norm)]
        found: list[tuple[int, int, str]] = []
        roles, lengths, singles, word = self.roles, self.lengths, self.singles, _WORD_CHARS
        starts, word_scan = self.starts, self.word_scan
        size = len(norm)
        i = 0
        while i < size:
            ch = norm[i]
            if ch not in starts:
                i += 1  # no term starts with it, and it starts no ASCII word: no slice, no lookup
                continue
            if ch in word:
                # i is where a word starts (a scan never stops inside one), so this matches.
                m = word_scan.match(norm, i)
                assert m is not None
                if m.lastindex:
                    found.append((i, m.end(), m.group()))
                i = m.end()
                continue
            for length in lengths.get(norm[i : i + 2], ()):
                end = i + length
                if end > size or (end < size and norm[end] in word and norm[end - 1] in word):
                    continue  # past the end, or ending inside an ASCII word: test no slice
                term = norm[i:end]
                if term in roles:
                    found.append((i, end, term))
                    i = end
                    break
            else:
                if ch in singles:
                    found.append((i, i + 1, ch))
                i += 1
        return found


def _trie(terms: Iterable[str]) -> dict[str, Any]:
    """Terms as nested dicts by character; the key "" marks where a term ends."""
    root: dict[str, Any] = {}
    for term in terms:
        node = root
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}
    return root


def _trie_pattern(terms: Iterable[str]) -> str:
    """A regex alternation factored by common prefixes, preferring the longest term.

    Python's `re` tries alternatives one by one; a prefix trie lets it reject hundreds of
    terms after one character, which keeps a scan of a message in the microseconds.
    """
    root = _trie(terms)

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            # Greedy "?" tries the longer term first, so the longest match wins.
            return "(?:" + body + ")?" if len(branches) == 1 else body + "?"
        return body

    return build(root)


def _alternation(terms: Iterable[str]) -> str:
    """Alternation of terms; ASCII words only match whole words ("no" is not in "know")."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for term in terms:
        key = (_is_word_char(term[0]), _is_word_char(term[-1]))
        groups.setdefault(key, []).append(term)
    parts = []
    for (word_start, word_end), members in sorted(groups.items()):
        pattern = "(?:" + _trie_pattern(members) + ")"
        if word_start:
            pattern = "(?<![a-z0-9])" + pattern
        if word_end:
            pattern += "(?![a-z0-9])"
        parts.append(pattern)
    return "|".join(parts)


def _scan_trie(terms: Iterable[str]) -> str:
    """A prefix trie of terms that matches the longest one a scan may take at a position.

    Like `_trie_pattern`, but a term that ends in an ASCII letter or digit only ends where a
    word ends, so "no" is not found in "not" while "not" still is.
    """
    root = _trie(terms)
    if not root:
        return "(?!)"  # no term: never matches

    def build(node: dict[str, Any], last: str) -> str:
        branches = [re.escape(ch) + build(child, ch) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            # Tried after every longer branch, so the longest term wins.
            branches.append("(?![a-z0-9])" if _is_word_char(last) else "")
        if len(branches) == 1:
            return branches[0]
        if branches[-1] == "":
            return "(?:" + "|".join(branches[:-1]) + ")?"
        return "(?:" + "|".join(branches) + ")"

    return build(root, "")


def _ascii_scan(terms: Iterable[str]) -> re.Pattern[str]:
    """The regex of `Lexicon.ascii_scan`; a term that starts with a letter or digit, at a word."""
    ascii = [t for t in terms if t.isascii()]
    at_word = _scan_trie(t for t in ascii if _is_word_char(t[0]))
    other = _scan_trie(t for t in ascii if not _is_word_char(t[0]))
    return re.compile(f"(?<![a-z0-9]){at_word}|{other}")


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# An ASCII word of an ack's reduced form (digits are gone by then; "i'll" keeps its apostrophe).
LATIN_WORD = re.compile("[a-z']+")


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _is_word_char(ch: str) -> bool:
    return ch in _WORD_CHARS


def _han_except(allowed: frozenset[str]) -> re.Pattern[str]:
    """A regex for one Chinese character (U+4E00 to U+9FFF) not in `allowed`, as ranges."""
    ranges: list[str] = []
    start: int | None = None
    for code in range(0x4E00, 0x9FFF + 2):
        inside = code <= 0x9FFF and chr(code) not in allowed
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append(f"{chr(start)}-{chr(code - 1)}" if code - 1 > start else chr(start))
            start = None
    return re.compile(f"[{''.join(ranges)}]")


@dataclass(frozen=True, slots=True)
class PatternSet:
    """Regexes of one script as a single alternation, and the way back to the one that matched.

    The alternation has no named groups: a group in front of every alternative stops CPython
    from skipping alternatives by their first character, and made the scan twice as slow. A
    match is traced back to its alternative by trying, in order, only those that can start
    with its first character; the first that matches there is the one the engine took.
    """

    regex: re.Pattern[str]
    alternatives: tuple[tuple[re.Pattern[str], tuple[Role, ...], frozenset[str]], ...]
    by_first: Mapping[str, tuple[int, ...]]
    anywhere: tuple[int, ...]  # alternatives whose first characters are not known
    # Chinese patterns, whose first characters are all known, are matched per character
    # instead (see `_dispatched`): the characters they start with, and per character the
    # alternatives that can start with it as one regex, each ending in an empty group, with
    # the alternative each group number ends.
    starts: re.Pattern[str] | None
    by_char: Mapping[str, tuple[re.Pattern[str], tuple[int, ...]]]

    def hits(self, text: str) -> list[tuple[re.Match[str], tuple[Role, ...], frozenset[str]]]:
        """Each match with the roles and kinds of the alternative that made it."""
        if self.starts is not None:
            return self._dispatched(text, self.starts)
        return self._traced(text)

    def _dispatched(
        self, text: str, starts: re.Pattern[str]
    ) -> list[tuple[re.Match[str], tuple[Role, ...], frozenset[str]]]:
        """`_traced`'s matches, found by trying at each position only what can start there.

        At a position whose character starts an alternative, the whole alternation would try
        every alternative, and all but those that can start with that character fail; so the
        first of those that matches is the one it takes, and the one the trace back finds.
        Its empty group names it. This costs about 70% of the whole alternation in C: one
        search for the starting characters skips most positions, and each try is short.
        """
        found = []
        at = starts.search(text)
        while at is not None:
            start = at.start()
            regex, owners = self.by_char[text[start]]
            m = regex.match(text, start)
            if m is None:
                at = starts.search(text, start + 1)
                continue
            if m.end() == start:  # an empty match: leave `finditer` its rules for those
                return self._traced(text)
            assert m.lastindex is not None  # every alternative ends with its group
            _, roles, kinds = self.alternatives[owners[m.lastindex]]
            found.append((m, roles, kinds))
            at = starts.search(text, m.end())
        return found

    def _traced(self, text: str) -> list[tuple[re.Match[str], tuple[Role, ...], frozenset[str]]]:
        """The whole alternation's matches, each traced back to its alternative."""
        first = self.regex.search(text)
        if first is None:  # most messages: one call into C and out
            return []
        found = []
        for m in self.regex.finditer(text, first.start()):
            start = m.start()
            candidates = self.by_first.get(text[start], ())
            if self.anywhere:
                candidates = tuple(sorted((*candidates, *self.anywhere)))
            for index in candidates:
                regex, roles, kinds = self.alternatives[index]
                if regex.match(text, start):
                    found.append((m, roles, kinds))
                    break
        return found


def _pattern_sets(
    sources: Iterable[tuple[str, str, Iterable[str]]],
) -> tuple[PatternSet, PatternSet]:
    """The (Chinese, English) pattern sets of the sources, each regex with its role.

    Split by script because CPython tries alternatives one by one at every position: a
    message in one language then pays for only that language's patterns.
    """
    chinese: list[tuple[str, Role]] = []
    english: list[tuple[str, Role]] = []
    for kind, category, regexes in sources:
        for regex in regexes:
            (english if regex.isascii() else chinese).append((regex, Role(kind, category)))
    return _pattern_set(chinese), _pattern_set(english, word_start=True)


def _pattern_set(entries: list[tuple[str, Role]], *, word_start: bool = False) -> PatternSet:
    """Entries as one guarded regex; English ones (`word_start`) match only at a word's start."""
    by_first: dict[str, list[int]] = {}
    anywhere: list[int] = []
    for index, (regex, _) in enumerate(entries):
        first = _first_chars(regex)
        if first is None:
            anywhere.append(index)
        for ch in first or ():
            by_first.setdefault(ch, []).append(index)
    dispatch = bool(entries) and not word_start and not anywhere
    by_char = {}
    for ch, indices in by_first.items() if dispatch else ():
        owners = [-1]  # group 0, the whole match
        for index in indices:
            groups = re.compile(entries[index][0]).groups
            owners += [-1] * groups + [index]  # the pattern's own groups, then its tag
        body = "|".join(f"(?:{entries[index][0]})()" for index in indices)
        by_char[ch] = (re.compile(body), tuple(owners))
    return PatternSet(
        regex=_compile_guarded([regex for regex, _ in entries], word_start=word_start),
        alternatives=tuple(
            (re.compile(regex), (role,), frozenset((role.kind,))) for regex, role in entries
        ),
        by_first={ch: tuple(indices) for ch, indices in by_first.items()},
        anywhere=tuple(anywhere),
        starts=re.compile(f"[{''.join(map(re.escape, sorted(by_char)))}]") if dispatch else None,
        by_char=by_char,
    )


def _compile_guarded(alternatives: list[str], *, word_start: bool = False) -> re.Pattern[str]:
    """One regex of the alternatives, behind a lookahead for the characters they can start with.

    CPython tries every alternative at every position; the lookahead rejects most positions
    with one set lookup, which makes a hundred patterns cost about what ten did. English
    patterns start at a word ("no ticket", not "piano ticket"), so a lookbehind also skips
    every position inside a word.
    """
    if not alternatives:
        return re.compile("(?!)")
    if word_start:
        # The lookbehind below does what each pattern's leading \\b did, once for all.
        alternatives = [regex.removeprefix("\\b") for regex in alternatives]
    body = "|".join(f"(?:{regex})" for regex in alternatives)
    start = "(?<![a-z0-9])" if word_start else ""
    first = _first_chars(body)
    if first is None:
        return re.compile(f"{start}(?:{body})")
    charset = "".join(re.escape(ch) for ch in sorted(first))
    return re.compile(f"{start}(?=[{charset}])(?:{body})")


_CLASS_ESCAPES = {"d": "0123456789", "s": " \t\n\r\f\v"}


class _Unknown(Exception):
    """A construct the first-character analysis does not follow; the caller skips the guard."""


def _first_chars(regex: str) -> frozenset[str] | None:
    """The characters a match of `regex` can start with, or None when that is not known.

    Follows the subset the lexicon's patterns use: literals, classes, groups, alternation,
    quantifiers, \\b and lookarounds. Anything else (".", a negated class, \\w) gives None.
    """
    try:
        first, nullable, end = _first_of_alternation(regex, 0, need=True)
    except _Unknown:
        return None
    if nullable or end != len(regex):
        return None
    return frozenset(first)


def _first_of_alternation(regex: str, i: int, *, need: bool) -> tuple[set[str], bool, int]:
    """First characters and nullability of `a|b|...` from i up to an unmatched ")" or the end.

    With `need` false the caller only wants the end: what follows a first atom never matters.
    """
    first: set[str] = set()
    nullable = False
    while True:
        seq_first, seq_nullable, i = _first_of_sequence(regex, i, need=need)
        first |= seq_first
        nullable = nullable or seq_nullable
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        return first, nullable, i


def _first_of_sequence(regex: str, i: int, *, need: bool) -> tuple[set[str], bool, int]:
    first: set[str] = set()
    nullable = True
    while i < len(regex) and regex[i] not in "|)":
        atom_first, atom_nullable, i = _first_of_atom(regex, i, need=need and nullable)
        if i < len(regex) and regex[i] in "?*+{":
            if regex[i] in "?*" or regex[i : i + 3] in ("{0,", "{0}"):
                atom_nullable = True
            i = regex.index("}", i) + 1 if regex[i] == "{" else i + 1
            if i < len(regex) and regex[i] == "?":
                i += 1  # lazy
        if nullable:
            first |= atom_first
            nullable = atom_nullable
    return first, nullable, i


def _first_of_atom(regex: str, i: int, *, need: bool) -> tuple[set[str], bool, int]:
    ch = regex[i]
    if ch == "\\":
        nxt = regex[i + 1]
        if nxt in "bB":
            return set(), True, i + 2
        if nxt in _CLASS_ESCAPES:
            return set(_CLASS_ESCAPES[nxt]), False, i + 2
        if nxt.isalnum() and need:
            raise _Unknown
        return {nxt}, False, i + 2
    if ch == "[":
        return _first_of_class(regex, i + 1, need=need)
    if ch == "(":
        if regex.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            start = i + 4 if regex[i + 2] == "<" else i + 3
            _, _, end = _first_of_alternation(regex, start, need=False)
            return set(), True, end + 1
        if regex.startswith("(?:", i):
            start = i + 3
        elif regex.startswith("(?P<", i):
            start = regex.index(">", i) + 1
        elif regex.startswith("(?", i):
            raise _Unknown
        else:
            start = i + 1
        first, nullable, end = _first_of_alternation(regex, start, need=need)
        return first, nullable, end + 1
    if ch in ".^$" and need:
        raise _Unknown
    return {ch}, False, i + 1


def _first_of_class(regex: str, i: int, *, need: bool) -> tuple[set[str], bool, int]:
    if regex[i] == "^":
        if need:
            raise _Unknown
        i += 1
    chars: set[str] = set()
    while regex[i] != "]":
        ch = regex[i]
        if ch == "\\":
            nxt = regex[i + 1]
            if nxt in _CLASS_ESCAPES:
                chars |= set(_CLASS_ESCAPES[nxt])
            elif nxt.isalnum() and need:
                raise _Unknown
            else:
                chars.add(nxt)
            i += 2
        elif regex[i + 1] == "-" and regex[i + 2] != "]":
            chars |= {chr(c) for c in range(ord(ch), ord(regex[i + 2]) + 1)}
            i += 3
        else:
            chars.add(ch)
            i += 1
    return chars, False, i + 1


def _lengths_by_prefix(terms: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """For each two-character prefix, the lengths of longer terms starting so, longest first."""
    lengths: dict[str, set[int]] = {}
    for term in terms:
        if len(term) > 1:
            lengths.setdefault(term[:2], set()).add(len(term))
    return {prefix: tuple(sorted(ls, reverse=True)) for prefix, ls in lengths.items()}


def _add(roles: dict[str, list[Role]], terms: Iterable[str], role: Role) -> None:
    for raw in terms:
        term = normalise(raw)
        if term and role not in roles.setdefault(term, []):
            roles[term].append(role)


def build(
    data: Mapping[str, Any],
    *,
    extra_hazard: Iterable[str] = (),
    extra_ack: Iterable[str] = (),
    extra_not_hazard: Iterable[str] = (),
) -> Lexicon:
    """Compile the parsed TOML plus a project's extra words into a Lexicon."""
    roles: dict[str, list[Role]] = {}
    for table, kind in _OBJECT_TABLES.items():
        for category, terms in data["objects"][table].items():
            _add(roles, terms, Role(kind, category))
    for kind in (FAILURE, ABSENCE, PRESENCE, IGNITION, PROXIMITY, UNFIT):
        _add(roles, data["states"][kind], Role(kind, GENERIC))
    acts = dict(data["acts"])
    _add(roles, acts.pop("hazard_words", ()), Role(HAZARD_WORD, GENERIC))
    for category, terms in acts.items():
        _add(roles, terms, Role(ACT, category))
    _add(roles, extra_hazard, Role(ACT, GENERIC))
    for category, terms in data["imminence"].items():
        _add(roles, terms, Role(IMMINENCE, category))
    filters = data["filters"]
    for key, kind in _FILTER_KEYS.items():
        _add(roles, filters[key], Role(kind, GENERIC))
    _add(roles, extra_not_hazard, Role(NOT_HAZARD, GENERIC))

    # Regexes for acts, and for acts with states, each split by script. State patterns only
    # matter next to an object, so the classifier runs the second only then.
    table = data["patterns"]
    state_sources = [
        (kind, GENERIC, table[kind]) for kind in (FAILURE, PRESENCE, PROXIMITY) if kind in table
    ]
    # Acts and objects (a load on the hook: 吊着一捆钢管) stand alone, so they always run.
    act_sources = [(ACT, category, terms) for category, terms in table["acts"].items()]
    act_sources += [(ZONE, category, terms) for category, terms in table["zones"].items()]
    act_patterns = _pattern_sets(act_sources)
    all_patterns = _pattern_sets(act_sources + state_sources)

    ack = data["ack"]
    core = [normalise(t) for t in (*ack["core"], *extra_ack)]
    vocabulary = [*core, *(normalise(t) for t in ack["filler"])]
    ack_alt = _alternation(t for t in vocabulary if t)
    # Every Chinese character an ack can contain, names included.
    ack_han = frozenset(ch for ch in "".join(vocabulary) if _is_han(ch)) | NAME_CHARS
    return Lexicon(
        roles={term: tuple(rs) for term, rs in roles.items()},
        info={
            term: (tuple(rs), frozenset(r.kind for r in rs), term.isascii())
            for term, rs in roles.items()
        },
        lengths=_lengths_by_prefix(t for t in roles if not _is_word_char(t[0])),
        singles=frozenset(term for term in roles if len(term) == 1),
        starts=frozenset(term[0] for term in roles) | _WORD_CHARS,
        word_scan=re.compile(f"({_scan_trie(t for t in roles if _is_word_char(t[0]))})|[a-z0-9]+"),
        ascii_scan=_ascii_scan(roles),
        act_patterns=act_patterns,
        all_patterns=all_patterns,
        stats=_compile_guarded(list(filters["stats_patterns"])),
        imminence=re.compile(
            _trie_pattern(t for t, rs in roles.items() if any(r.kind == IMMINENCE for r in rs))
            or "(?!)"
        ),
        ack_full=re.compile(rf"\s*(?:(?:{ack_alt})\s*)+"),
        ack_chars=frozenset("".join(vocabulary) + " "),
        ack_latin=frozenset(LATIN_WORD.findall(" ".join(vocabulary))),
        not_ack_han=_han_except(ack_han),
        ack_core=re.compile(_alternation(t for t in core if t)),
        ack_words=frozenset(t for t in core if t),
        priority=tuple(data["categories"]["priority"]),
        fallback=str(data["categories"]["fallback"]),
        sources=frozenset(data["categories"]["sources"]),
        deferring_guards=frozenset(data["categories"]["deferring_guards"]),
    )


@cache
def shipped_data() -> Mapping[str, Any]:
    """The lexicon shipped with the package, parsed once per process."""
    raw = (resources.files("escalation") / "data" / "lexicon.toml").read_text("utf-8")
    return tomllib.loads(raw)


@cache
def shipped() -> Lexicon:
    """The shipped lexicon, compiled once per process."""
    return build(shipped_data())


_MENTION = re.compile(r"@\S+")
# A surname (or 小/老) followed by a title: 王工, 李总, 刘经理, 老张. Removed before the ack test,
# because "王工收到" acknowledges exactly like "收到".
_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁"
    "魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常"
    "武乔贺赖龚文"
)
# 总工 comes before 总, so the longer title is removed whole.
_TITLES = "工|总工|总|经理|主任|科长|队长|师傅|老师|书记|班长|局|部长"
_NAME_TITLE = re.compile(f"(?:[{_SURNAMES}]|老|小)(?:{_TITLES})")
# Chinese characters an ack may contain besides its words: those of names and titles.
NAME_CHARS = frozenset(_SURNAMES + "老小" + _TITLES.replace("|", ""))
_NOISE = re.compile(r"[^\w\s'👍]|[0-9_]")


def ack_form(norm: str) -> str:
    """Normalised text reduced for the ack test: no mentions, names, digits, emoji, punctuation."""
    text = _MENTION.sub(" ", norm.translate(_EMOJI_TABLE))
    text = _NAME_TITLE.sub(" ", text)
    return " ".join(_NOISE.sub(" ", text).split())
