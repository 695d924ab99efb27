"""Trains the shipped n-gram models from the labelled messages: `python -m escalation.train`.

The kind model (hazard / ack / other) learns from every message of TRAIN_FILES; the category
and severity models from their hazards. Parts 7 and 8 are not in TRAIN_FILES: they were written
blind to measure the shipped classifier (docs/classifier.md), and a model that learned them
could no longer be measured on them. Same files, same model: training is deterministic.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

from escalation import lexicon as lx
from escalation.ngram import NgramModel, train

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = Path(__file__).resolve().parent / "data" / "ngram.json.gz"
TRAIN_FILES = (
    "messages_dev.jsonl",
    "messages_heldout.jsonl",
    "messages_heldout_p4.jsonl",
    "messages_heldout_p5.jsonl",
    "messages_heldout_p6.jsonl",
)
KINDS = ("hazard", "ack", "other")
SEVERITIES = ("normal", "critical")


def load(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def fit(rows: list[dict[str, Any]]) -> dict[str, NgramModel]:
    """The three models, from labelled rows (text, kind, and for hazards category, severity)."""
    texts = [(lx.normalise(r["text"]), r) for r in rows]
    hazards = [(t, r) for t, r in texts if r["kind"] == "hazard"]
    categories = sorted({r["category"] for _t, r in hazards})
    return {
        "kind": train([(t, r["kind"]) for t, r in texts], KINDS),
        "category": train([(t, r["category"]) for t, r in hazards], categories),
        "severity": train([(t, r["severity"]) for t, r in hazards], SEVERITIES),
    }


def dump(models: dict[str, NgramModel]) -> bytes:
    text = json.dumps({k: m.to_json() for k, m in models.items()}, ensure_ascii=False)
    # mtime=0: the same models give the same bytes, so git sees a change only when there is one.
    return gzip.compress(text.encode("utf-8"), mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT})")
    args = parser.parse_args(argv)
    rows = load([DATA / name for name in TRAIN_FILES])
    print(
        f"training on {len(rows)} labelled messages from {len(TRAIN_FILES)} files", file=sys.stderr
    )
    models = fit(rows)
    args.out.write_bytes(dump(models))
    sizes = ", ".join(f"{k} {len(m)} features" for k, m in models.items())
    print(f"wrote {args.out} ({sizes})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
