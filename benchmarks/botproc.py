"""The bot under measurement, in its own process: the real one, or a no-op PTB bot as baseline.

A third mode, `acks-free`, is the real bot with every 收到 costing nothing once classified: it
bounds what any cheaper handling of acknowledgements (batched writes, say) could buy on ingest.

Each polls the local Bot API named in the config. A counting handler in a late group prints one
JSON line on stdout when `--expect` updates were handled; `ready` is printed once polling runs.
Both lines carry the process's CPU time, so a run can tell CPU spent from time spent waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.app import build_application, runtime_of
from bot.batches import WriteBatcher
from bot.clock import SystemClock
from bot.config import load_config
from bot.logs import configure_logging
from bot.service import GroupMessage
from storage.db import create_engine

COUNTER_GROUP = 1000  # after every handler of the bot: counting never changes what it does


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


async def _ready_when(started: Awaitable[None]) -> None:
    await started
    emit("ready", cpu=time.process_time())


def _acknowledgements_cost_nothing() -> None:
    """Every 收到 is still classified, then answers nothing: no read, no write, no send."""

    def nothing(self: WriteBatcher, msg: GroupMessage, at: datetime, update: Update) -> None:
        return None  # not held: the update counts as handled when its handler returns

    WriteBatcher.acknowledge = nothing  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--mode", choices=["real", "acks-free", "noop"], default="real")
    parser.add_argument("--schema")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--sweep-every", type=float, default=15.0)
    args = parser.parse_args()

    config = load_config(args.config)
    token = os.environ["SITEWALK_TOKEN"]
    configure_logging(verbose=False, secrets=[token])
    logging.getLogger().setLevel(os.environ.get("SITEWALK_BENCH_LOG", "WARNING"))
    api = config.telegram.api_base_url.rstrip("/")
    app: Application[Any, Any, Any, Any, Any, Any]
    if args.mode != "noop":
        if args.mode == "acks-free":
            _acknowledgements_cost_nothing()
        db = create_engine(config.storage.url, schema=args.schema)
        app = build_application(
            config,
            token=token,
            clock=SystemClock(),
            db=db,
            sweep_every=args.sweep_every,
            own_process=True,  # as `sitewalk run` builds it
        )
        # build_application was given the engine, so the Runtime will not dispose of it.
    else:
        app = ApplicationBuilder().token(token).base_url(f"{api}/bot").build()

    handled = 0

    async def count(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        nonlocal handled
        handled += 1
        if handled == args.expect:
            emit("handled", n=handled, cpu=time.process_time())

    app.add_handler(TypeHandler(Update, count), group=COUNTER_GROUP)
    inner_post_init = app.post_init

    async def post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        if inner_post_init is not None:
            await inner_post_init(application)
        if args.mode != "noop":
            # Ready once start-up is complete: the catch-up and the classifier's loading (after
            # the catch-up since fix 9) are start-up, not part of what ingest measures.
            runtime = runtime_of(application)
            application.bot_data["ready"] = asyncio.create_task(_ready_when(runtime.warmed()))
        else:
            emit("ready", cpu=time.process_time())

    app.post_init = post_init
    profile = os.environ.get("SITEWALK_BENCH_PROFILE")
    profiler = None
    if profile:  # where a goal is missed: `SITEWALK_BENCH_PROFILE=out.txt` profiles the bot
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    app.run_polling(
        allowed_updates=Update.ALL_TYPES,
        poll_interval=0.0,
        stop_signals=(signal.SIGTERM, signal.SIGINT),
    )
    if profiler is not None and profile:
        profiler.stop()
        with open(profile, "w", encoding="utf-8") as out:
            out.write(profiler.output_text(unicode=True, show_all=False))
    emit("exit", maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
