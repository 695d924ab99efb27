"""`python benchmarks/run.py [--quick]`: every figure, one JSON line each, and BENCHMARKS.md.

Each measurement runs the real bot (bot.app.build_application) in its own process against the
local Bot API over HTTP, on SQLite in a temp dir and PostgreSQL in a fresh schema of `test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import catchup, classifier, ingest, lateness, outbound, sending
from benchmarks.common import ROOT, Figure, machine, progress
from benchmarks.report import results_block, rewrite

Measurement = Callable[[bool, Path], Awaitable[list[Figure]]]
MEASUREMENTS: dict[str, Measurement] = {
    "classify": classifier.run,
    "ingest": ingest.run,
    "lateness": lateness.run,
    "catchup": catchup.run,  # catchup_100k and rss_100k come from the same bot process
    "outbound": outbound.run,
    "sending": sending.run,
}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, under 2 minutes")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(MEASUREMENTS)}"
    )
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(MEASUREMENTS)
    unknown = [name for name in chosen if name not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement(s) {unknown}; choose from {list(MEASUREMENTS)}")

    started = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = await machine()
    progress(f"machine: {json.dumps(info, ensure_ascii=False)}")
    figures: list[Figure] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sitewalk-bench-") as tmp:
        for name in chosen:
            try:
                measured = await MEASUREMENTS[name](args.quick, Path(tmp))
            except Exception as exc:  # one broken measurement must not hide the others
                progress(f"{name} FAILED: {type(exc).__name__}: {exc}")
                failed.append(name)
                continue
            for figure in measured:
                print(json.dumps(figure.to_json(), ensure_ascii=False), flush=True)
            figures.extend(measured)
    seconds = time.monotonic() - started
    progress(f"done in {seconds:.0f} s")
    if not args.no_write and figures:
        mode = "python benchmarks/run.py" + (" --quick" if args.quick else "")
        if args.only:
            mode += f" --only {args.only}"
        block = results_block(figures, info, when=when, mode=mode, seconds=seconds)
        rewrite(ROOT / "BENCHMARKS.md", block)
        progress("BENCHMARKS.md rewritten")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
