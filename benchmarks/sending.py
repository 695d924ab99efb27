"""Sending: CPU per message through the bot's Bot API client, against PTB's default httpx one.

The client runs in a process of its own (`python -m benchmarks.sending --client URL`), so the
local Bot API serving it in this process is not counted. Each round sends the same messages
(a 👀 reaction, then a reply) through either client, in turns, and the best round of each counts,
in process CPU time: on a shared machine other processes only ever make a round slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, TOKEN, Figure, progress
from bot.sandbox import LocalBotApi

CHAT = -1001000000001
USER = 10_000_001


async def run(quick: bool, workdir: Path) -> list[Figure]:
    calls, rounds = (100, 2) if quick else (300, 5)
    async with LocalBotApi(token=TOKEN) as api:
        api.group(CHAT, "发送")
        api.user(USER, "reporter")
        for i in range(calls):
            api.post_text(CHAT, USER, f"消息 {i}")
        progress(f"sending: {rounds} rounds of {calls} reactions and {calls} replies per client")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.sending",
            "--client",
            api.root,
            "--calls",
            str(calls),
            "--rounds",
            str(rounds),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the sending client exited {proc.returncode}")
    ms = json.loads(out)
    progress(f"  CPU per message: {ms}")
    ours, theirs = ms["aiohttp"], ms["httpx"]
    return [
        Figure(
            "send_cpu",
            ours,
            "ms/message",
            theirs,
            ours / theirs,
            baseline_is="the same through PTB's HTTPXRequest, same run",
            goal="none: what one sent message costs the bot",
            met=None,
            note=f"best of {rounds} rounds of {calls} reactions + {calls} replies, CPU time",
        )
    ]


async def _client(root: str, calls: int, rounds: int) -> dict[str, float]:
    from telegram import ReactionTypeEmoji, ReplyParameters
    from telegram.request import BaseRequest, HTTPXRequest

    from bot.http import AiohttpRequest
    from bot.polling import ConfirmAfterHandlingBot

    def bot(request: BaseRequest) -> ConfirmAfterHandlingBot:
        return ConfirmAfterHandlingBot(TOKEN, base_url=f"{root}/bot", request=request)

    bots = {
        "httpx": bot(HTTPXRequest(connection_pool_size=256)),
        "aiohttp": bot(AiohttpRequest(connection_pool_size=256)),
    }
    best = dict.fromkeys(bots, float("inf"))
    for b in bots.values():
        await b.initialize()
    try:
        for _ in range(rounds):
            for name, b in bots.items():
                started = time.process_time()
                for i in range(1, calls + 1):
                    await b.set_message_reaction(CHAT, i, [ReactionTypeEmoji("👀")])
                    reply = ReplyParameters(i, allow_sending_without_reply=True)
                    await b.send_message(CHAT, f"#{i} 请到现场看一下", reply_parameters=reply)
                spent = time.process_time() - started
                best[name] = min(best[name], spent / (2 * calls) * 1000)
    finally:
        for b in bots.values():
            await b.shutdown()
    return {name: round(ms, 3) for name, ms in best.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, metavar="URL")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_client(args.client, args.calls, args.rounds))))
