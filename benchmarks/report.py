"""Rewrites the results block of BENCHMARKS.md: the figures table and the machine they ran on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Figure

BEGIN = "<!-- results:begin (written by benchmarks/run.py) -->"
END = "<!-- results:end -->"


def _number(x: float) -> str:
    if x == float("inf"):
        return "∞"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def results_block(
    figures: Sequence[Figure], machine: dict[str, Any], *, when: str, mode: str, seconds: float
) -> str:
    lines = [
        BEGIN,
        f"Run: {when}, `{mode}`, {seconds / 60:.1f} min, at commit {machine['commit']}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram']} RAM, "
        f"{machine['os']}; Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {machine['postgresql']}. Speed probe at the start (`speed_probe`: 200,000 "
        f"lookups in a large dict, best of 5; lower is faster): {machine['probe_ms']} ms.",
        "",
        "| name | value | unit | baseline | baseline is | ratio | goal | met | setup |",
        "|---|---:|---|---:|---|---:|---|:---:|---|",
    ]
    for f in figures:
        lines.append(
            f"| `{f.name}` | {_number(f.value)} | {f.unit} | {_number(f.baseline)} | "
            f"{f.baseline_is} | {_number(f.ratio)} | {f.goal} | "
            f"{'—' if f.met is None else 'yes' if f.met else '**no**'} | {f.note} |"
        )
    lines.append(END)
    return "\n".join(lines)


def rewrite(path: Path, block: str) -> None:
    """Replace the block between the markers; append it when the file has none yet."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
