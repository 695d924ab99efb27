"""A linear model over character n-grams: the classifier's second opinion, learned from examples.

The lexicon knows the words it was given; site people keep finding new ones. Three rounds of
hand-tuning lifted every tuned set to F1 1.00 and left text written afterwards near 0.85. A
logistic regression over character 1-3 grams (and English words and word pairs), trained on
the same labelled messages, read that unseen text far better (docs/classifier.md), so the
classifier asks it first and falls back on the rules where it is unsure.

Pure apart from reading its own data file (as the lexicon does); `train` is deterministic, and
`python -m escalation.train` writes that file from the labelled messages.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise, repeat
from operator import add, itemgetter, sub
from typing import Any

_WORD = re.compile(r"[a-z0-9']+")


# Words are marked with a control character no message keeps after normalising, so "on" the
# word and "on" the two letters are different features.
_WORD_MARK = "\x01"


def features(norm: str) -> list[str]:
    """The features of a normalised text (lower case, single spaces): every character 1-, 2-
    and 3-gram with the message's start and end marked (^, $), and its English words and word
    pairs. A feature that occurs twice counts twice, in training as in prediction."""
    s = f"^{norm}$"
    out = list(s.replace(" ", ""))
    pairs = list(map(add, s, s[1:]))  # joined in C: the same strings as slicing, faster
    out += pairs
    out += map(add, pairs, s[2:])
    if _WORD.search(norm):
        words = _WORD.findall(norm)
        out += [_WORD_MARK + w for w in words]
        out += [f"{_WORD_MARK}{a} {b}" for a, b in pairwise(words)]
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """The model's label, its probability, and the features that pushed hardest towards it."""

    label: str
    probability: float
    reasons: tuple[str, ...]


def _softmax_best(totals: list[float]) -> tuple[int, float]:
    """The index of the largest total (the first, on a tie) and its softmax probability."""
    top = max(totals)
    return totals.index(top), 1.0 / sum(math.exp(t - top) for t in totals)


class NgramModel:
    """Multinomial logistic regression: one weight per (feature, label), summed, softmaxed."""

    def __init__(self, labels: Sequence[str], weights: dict[str, tuple[float, ...]]) -> None:
        self.labels = tuple(labels)
        self._weights = weights
        self._zero = (0.0,) * len(self.labels)

    def predict_features(self, feats: list[str], *, reasons: int = 3) -> Verdict:
        """The most probable label for a text's features, with plain float sums (the reference
        the packed sums of ModelSet are checked against); `reasons` features that favour it
        most are kept to show."""
        ws = list(map(self._weights.get, feats))  # None where the model has no weight
        rows = [w for w in ws if w is not None]
        # Column sums in C: zip(*rows) gives one tuple per label.
        totals = [sum(col) for col in zip(*rows, strict=False)] if rows else list(self._zero)
        best, probability = _softmax_best(totals)
        why: tuple[str, ...] = ()
        if reasons and rows:
            second = _runner_up(totals, best)
            pushes = [0.0 if w is None else w[best] - w[second] for w in ws]
            why = _ranked(feats, pushes, reasons)
        return Verdict(self.labels[best], probability, why)

    def label_features(self, feats: list[str]) -> str:
        """Only the most probable label: the sums without probabilities or reasons."""
        rows = [w for w in map(self._weights.get, feats) if w is not None]
        if not rows:
            return self.labels[0]
        totals = [sum(col) for col in zip(*rows, strict=False)]
        return self.labels[totals.index(max(totals))]

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "weights": {f: [round(v, 4) for v in w] for f, w in sorted(self._weights.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NgramModel:
        labels = data["labels"]
        weights = {f: tuple(float(v) for v in w) for f, w in data["weights"].items()}
        if any(len(w) != len(labels) for w in weights.values()):
            msg = "every n-gram weight needs one value per label"
            raise ValueError(msg)
        return cls(labels, weights)

    def __len__(self) -> int:
        return len(self._weights)


# A ModelSet packs a feature's weights, in units of 1e-4 (the file keeps four decimals, so
# nothing is lost), into integers of 40-bit fields, each offset by _BIAS to stay positive:
# adding a text's integers adds every label's weights at once, exactly, in C. Float sums over
# 18 labels were the classifier's largest cost (docs/classifier.md). The kind weights and a
# count of known features share one small integer, summed for every message; category and
# severity share another, summed only for a report. A field holds _MAX_FEATURES features.
_UNIT = 10_000
_FIELD = 40
_BIAS = 1 << 24
_MASK = (1 << _FIELD) - 1
_MAX_FEATURES = 1 << (_FIELD - 26)  # each adds less than 2 * _BIAS = 2**25 to a field


class ModelSet:
    """The kind, category and severity models in one table, so a text's features are looked up
    once (see _UNIT)."""

    def __init__(self, kind: NgramModel, category: NgramModel, severity: NgramModel) -> None:
        # Only the labels are kept: the table holds every weight, and the models' own dicts
        # would double the memory the bot carries (30 MB).
        self.kind_labels, self.category_labels = kind.labels, category.labels
        self.severity_labels = severity.labels
        table: dict[str, tuple[Any, ...]] = {}
        for f in set().union(*(m._weights for m in (kind, category, severity))):
            kind_w = kind._weights.get(f, kind._zero)
            details = (
                *category._weights.get(f, category._zero),
                *severity._weights.get(f, severity._zero),
            )
            # The last field of the kind integer counts the features, so a sum says how many
            # biases it holds. The kind weights also stand as floats, for the reasons shown.
            table[f] = (_pack(f, kind_w) | 1 << (_FIELD * len(kind_w)), _pack(f, details), *kind_w)
        self._table = table
        # Every message needs only the sum of its kind integers; its full rows are looked up
        # again only for a report or for the reasons shown. Summing from this table instead of
        # the rows' first items took a sixth off classifying (benchmarks/ingest.py), for 3 MB.
        self._kinds = _Starts({f: row[0] for f, row in table.items()})
        # A report also needs the sum of its details integers (category and severity), the
        # same way: the rows themselves only for the reasons shown.
        self._details = _Starts({f: row[1] for f, row in table.items()})
        # What a feature no model knows reads as: it adds nothing and pushes nowhere.
        self._unknown = (0, 0, *kind._zero)
        k, c = len(kind.labels), len(category.labels)
        self._fields = (range(k), range(c), range(c, c + len(severity.labels)))
        self._count_shift = _FIELD * k

    def read(self, norm: str) -> Reading:
        """Add the kind weights of the text's features, all in C: `features(norm)`, each
        counted as often as it occurs, without making that list (a report's reasons do)."""
        s = f"^{norm}$"
        # features() lists the single characters first; reasons never show them.
        singles = len(s) - s.count(" ")
        words = _WORD.findall(norm) if _WORD.search(norm) else []
        count = singles + 2 * len(s) - 3 + max(0, 2 * len(words) - 1)
        if count >= _MAX_FEATURES:
            msg = f"a text of {len(norm)} characters is too long for the model's sums"
            raise ValueError(msg)
        total = self._kinds.total(s, words)
        return Reading(norm, words, self, total, total >> self._count_shift, singles)

    def details_total(self, norm: str, words: list[str]) -> int:
        """The sum of the details integers of `features(norm)` (see `read`)."""
        return self._details.total(f"^{norm}$", words)

    def rows(self, feats: list[str]) -> list[tuple[Any, ...]]:
        return list(map(self._table.get, feats, repeat(self._unknown)))

    def kind_of(self, reading: Reading, *, reasons: int = 3) -> Verdict:
        totals = _unpack(reading.total, reading.found, self._fields[0])
        best, probability = _softmax_best(totals)
        why: tuple[str, ...] = ()
        if reasons and reading.found:
            why = reading.reasons(totals, best, reasons)
        return Verdict(self.kind_labels[best], probability, why)

    def category_of(self, reading: Reading) -> str:
        totals = _unpack(reading.details(), reading.found, self._fields[1])
        return _best(self.category_labels, totals)

    def severity_of(self, reading: Reading) -> str:
        totals = _unpack(reading.details(), reading.found, self._fields[2])
        return _best(self.severity_labels, totals)


class _Starts(dict[str, int]):
    """One integer column of the table (kind or details), summed over a text's features with
    one lookup a position.

    A text's character 1-, 2- and 3-grams come three to a position: the 3-gram that starts
    there, its first two characters, its first. This dict holds, for each 3-gram the model
    knows, the three integers summed; a 3-gram it does not know is summed when met, not kept,
    so the table holds only what the model has. `column` is the column itself.
    """

    def __init__(self, column: dict[str, int]) -> None:
        super().__init__()
        self.column = column
        for f, value in column.items():
            if len(f) == 3 and not f.startswith(_WORD_MARK):
                self[f] = value + self.without_itself(f)

    def without_itself(self, gram: str) -> int:
        """The integers of what `gram` starts with: its first two characters (if it has
        three) and its first (unless a space: features() counts no spaces alone)."""
        column = self.column
        first = 0 if gram[0] == " " else column.get(gram[0], 0)
        return first + column.get(gram[:2], 0) if len(gram) == 3 else first + column.get(gram, 0)

    def __missing__(self, gram: str) -> int:
        return self.without_itself(gram)

    def total(self, s: str, words: list[str]) -> int:
        """The sum over features(norm), where `s` is "^norm$" and `words` its English words."""
        column = self.column
        # The 3-grams with what starts them; then what starts no 3-gram: the last 2-gram and
        # its two characters ("x$", "x" unless a space, "$").
        total = sum(map(self.__getitem__, map(add, map(add, s, s[1:]), s[2:])))
        total += self.without_itself(s[-2:]) + column.get("$", 0)
        if words:
            total += sum(map(column.get, [_WORD_MARK + w for w in words], repeat(0)))
            pairs = [f"{_WORD_MARK}{a} {b}" for a, b in pairwise(words)]
            total += sum(map(column.get, pairs, repeat(0)))
        return total


def _pack(feature: str, weights: tuple[float, ...]) -> int:
    packed = 0
    for i, v in enumerate(weights):
        q = round(v * _UNIT)
        if not -_BIAS < q < _BIAS:
            msg = f"n-gram weight {v} of {feature!r} is out of range"
            raise ValueError(msg)
        packed |= (q + _BIAS) << (_FIELD * i)
    return packed


def _unpack(total: int, found: int, fields: range) -> list[float]:
    bias = found * _BIAS
    return [(((total >> (_FIELD * i)) & _MASK) - bias) / _UNIT for i in fields]


def _best(labels: tuple[str, ...], totals: list[float]) -> str:
    return labels[totals.index(max(totals))]


@dataclass(slots=True)
class Reading:
    """The sum of a text's features' kind integers; the features themselves, and their table
    rows (all zero where no model has one), are made when first needed."""

    norm: str
    words: list[str]  # its English words, as features() finds them
    models: ModelSet
    total: int
    found: int
    singles: int  # how many of feats, at the start, are single characters
    _feats: list[str] | None = None
    _details: int | None = None
    _packs: list[tuple[Any, ...]] | None = None

    @property
    def feats(self) -> list[str]:
        if self._feats is None:
            self._feats = features(self.norm)
        return self._feats

    @property
    def packs(self) -> list[tuple[Any, ...]]:
        """(kind integer, details integer, kind weights...) for each feature."""
        if self._packs is None:
            self._packs = self.models.rows(self.feats)
        return self._packs

    def details(self) -> int:
        """The sum of the category and severity integers, made when a report asks for it."""
        if self._details is None:
            self._details = self.models.details_total(self.norm, self.words)
        return self._details

    def reasons(self, totals: list[float], best: int, n: int) -> tuple[str, ...]:
        """The features that pushed hardest towards kind label `best` rather than the
        runner-up (see `_ranked`)."""
        second = _runner_up(totals, best)
        b, s = best + 2, second + 2  # a row is (kind integer, details integer, kind weights...)
        n0 = self.singles
        packs = self.packs[n0:]
        pushes = list(map(sub, map(itemgetter(b), packs), map(itemgetter(s), packs)))
        return _ranked(self.feats[n0:], pushes, n)


def _runner_up(totals: list[float], best: int) -> int:
    return max((i for i in range(len(totals)) if i != best), key=totals.__getitem__)


def _ranked(feats: list[str], pushes: list[float], n: int) -> tuple[str, ...]:
    """The `n` features with the largest positive push, as shown in `matched`. Single
    characters count in the sum but say little to a reader, so they are not shown; a feature
    met twice is shown once, where it first pushed."""
    # reverse=True keeps equal pushes in the text's order (the sort is stable).
    order = sorted(range(len(pushes)), key=pushes.__getitem__, reverse=True)
    shown: list[str] = []
    for i in order:
        if pushes[i] <= 0:
            break
        f = feats[i]
        if len(f.strip("^$")) > 1 and f not in shown:
            shown.append(f)
            if len(shown) == n:
                break
    return tuple(_show(f) for f in shown)


def _show(feature: str) -> str:
    """A feature as a person reads it: 松动, "harness", "no harness"; ^ and $ mark the ends."""
    if feature.startswith(_WORD_MARK):
        return f'ngram:"{feature[1:]}"'
    return f"ngram:{feature}"


def train(
    examples: Iterable[tuple[str, str]],
    labels: Sequence[str],
    *,
    epochs: int = 15,
    rate: float = 0.2,
    seed: int = 0,
    prune: float = 0.005,
) -> NgramModel:
    """Fit on (normalised text, label) pairs with AdaGrad; the same data and seed give the
    same model. Weights smaller than `prune` for every label are dropped from the file."""
    index = {label: i for i, label in enumerate(labels)}
    data = [(features(text), index[label]) for text, label in examples]
    k = len(labels)
    weights: dict[str, list[float]] = {}
    squares: dict[str, list[float]] = {}
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(data)
        for feats, y in data:
            rows = [weights.setdefault(f, [0.0] * k) for f in feats]
            totals = [sum(w[i] for w in rows) for i in range(k)]
            top = max(totals)
            exps = [math.exp(t - top) for t in totals]
            z = sum(exps)
            for i in range(k):
                g = exps[i] / z - (1.0 if i == y else 0.0)
                if abs(g) < 1e-4:
                    continue
                for f, w in zip(feats, rows, strict=True):
                    sq = squares.setdefault(f, [1e-8] * k)
                    sq[i] += g * g
                    w[i] -= rate * g / math.sqrt(sq[i])
    kept = {f: tuple(w) for f, w in weights.items() if max(abs(v) for v in w) >= prune}
    return NgramModel(labels, kept)


@cache
def shipped_set() -> ModelSet:
    """The shipped models in one table, built once per process; what the classifier uses."""
    models = _load()
    return ModelSet(models["kind"], models["category"], models["severity"])


@cache
def shipped() -> dict[str, NgramModel]:
    """The shipped models one by one (kind, category, severity), read once per process."""
    return _load()


def _load() -> dict[str, NgramModel]:
    raw = (resources.files("escalation") / "data" / "ngram.json.gz").read_bytes()
    data = json.loads(gzip.decompress(raw))
    return {name: NgramModel.from_json(model) for name, model in data.items()}
