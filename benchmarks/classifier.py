"""The `classify` figure for run.py, measured by benchmarks/classify.py (the classifier's own)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks import classify
from benchmarks.common import Figure, against_goal, progress

GOAL = 20_000.0


async def run(quick: bool, workdir: Path) -> list[Figure]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})  # one core, as the goal says
    try:
        value = classify.measure(quick)
        explained = classify.measure(quick, explained=True)
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    progress(f"classify: {value:,.0f} messages/s on one core ({explained:,.0f} reading matched)")
    setup = f"{len(classify.messages())} labelled messages, best of 5 rounds of CPU time"
    return [
        against_goal(
            "classify",
            value,
            "msg/s",
            GOAL,
            higher_is_better=True,
            note=setup,
        ),
        Figure(
            "classify_explained",
            explained,
            "msg/s",
            value,
            explained / value,
            baseline_is="`classify`, same run",
            goal="none: what reading every `matched` costs",
            met=None,
            note=f"{setup}; `matched` read for each",
        ),
    ]
