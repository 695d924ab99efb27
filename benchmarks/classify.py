"""Classifier throughput: messages per second on one core over the labelled message sets.

`python benchmarks/classify.py [--quick]` prints one JSON line:
{"name": "classify", "value": N, "unit": "msg/s", "baseline": null, "ratio": null}.

It classifies every message of tests/data/messages_*.jsonl repeatedly, in rounds of ~0.4 s
(~2 s in all), pinned to one CPU, and reports the best round measured in process CPU time.
Best-of and CPU time, as `timeit` does, because on a shared machine the other processes only
ever make a round slower; they never make the classifier faster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from escalation.classifier import Classifier  # noqa: E402

ROUNDS = 5


def messages() -> list[str]:
    """Every labelled message, dev and held-out, in file order."""
    texts: list[str] = []
    for path in sorted((ROOT / "tests" / "data").glob("messages_*.jsonl")):
        with path.open(encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def measure(quick: bool = False, *, explained: bool = False) -> float:
    """Messages per second, best of five rounds of CPU time (each ~0.4 s, quick ~0.2 s).

    `explained` also reads every verdict's `matched`, which the classifier builds only when
    read (the bot reads it for reports): what `sitewalk classify` pays for each line.
    """
    classifier = Classifier()
    texts = messages()
    for text in texts:  # warm-up: the first pass compiles nothing, but fills CPU caches
        classifier.classify(text)
    seconds = 0.2 if quick else 0.4
    best = 0.0
    for _ in range(ROUNDS):
        done, started = 0, time.process_time()
        while (elapsed := time.process_time() - started) < seconds:
            if explained:
                for text in texts:
                    classifier.classify(text).matched  # noqa: B018 - reading it is the point
            else:
                for text in texts:
                    classifier.classify(text)
            done += len(texts)
        best = max(best, done / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rounds of 0.2 s instead of 0.4 s")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal says
    value = measure(args.quick)
    print(f"classify: {value:,.0f} messages/s on one core", file=sys.stderr)
    line = {"name": "classify", "value": round(value), "unit": "msg/s"}
    print(json.dumps({**line, "baseline": None, "ratio": None}))
    explained = measure(args.quick, explained=True)
    print(f"classify, every matched read: {explained:,.0f} messages/s", file=sys.stderr)
    line = {"name": "classify_explained", "value": round(explained), "unit": "msg/s"}
    print(json.dumps({**line, "baseline": round(value), "ratio": round(explained / value, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
