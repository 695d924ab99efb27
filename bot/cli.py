"""The `sitewalk` command line: run, check-config, dry-run, classify, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.config import ConfigError, LexiconConfig, load_config

if TYPE_CHECKING:  # run's imports stay inside it: the other commands start without PTB
    from pydantic import SecretStr
    from telegram import Bot

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sitewalk", description="实地走: hazards need site visits, not 收到."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bot (polling or webhook, as configured)")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    check = sub.add_parser("check-config", help="validate a config file; exit 0 or 2")
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--db", metavar="URL", help="read who the bot has seen here (default: the config's storage)"
    )

    dry = sub.add_parser("dry-run", help="how a text is read, its card and escalation schedule")
    dry.add_argument("--config", required=True, metavar="FILE")
    dry.add_argument("--chat", required=True, type=int, metavar="ID", help="the project's chat_id")
    dry.add_argument("--at", metavar='"YYYY-MM-DD HH:MM"', help="local report time (default: now)")
    dry.add_argument("text", help="the message as it would be posted in the group")

    classify = sub.add_parser("classify", help="JSON lines: how each stdin line is read")
    classify.add_argument("--config", metavar="FILE", help="use this file's [lexicon] additions")

    demo = sub.add_parser("demo", help="replay the Qingjiangpu morning offline")
    demo.add_argument("--speed", type=float, default=240.0, help="simulated seconds per second")
    demo.add_argument("--language", choices=["zh", "en"], default="zh")

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.config, args.verbose)
        if args.command == "check-config":
            return _check_config(args.file, args.db)
        if args.command == "dry-run":
            return _dry_run(args.config, args.chat, args.text, args.at)
        if args.command == "classify":
            return _classify(args.config)
        if args.command == "demo":
            from bot.demo import run_demo

            return run_demo(speed=args.speed, language=args.language)
    except ConfigError as exc:
        path = str(getattr(args, "config", None) or getattr(args, "file", "config"))
        for problem in exc.problems:
            print(problem.render(path), file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KeyboardInterrupt:
        return EXIT_FAILED
    parser.error(f"unknown command {args.command}")
    return EXIT_FAILED  # pragma: no cover - parser.error exits


def _check_config(path: str, db_url: str | None) -> int:
    from bot.checkconfig import read_directory, summary

    config = load_config(path)
    directory = read_directory(config, db_url)
    print(summary(config, path, directory, datetime.now(UTC)))
    return EXIT_OK


def _dry_run(path: str, chat_id: int, text: str, at: str | None) -> int:
    from bot.dryrun import classifier_for, parse_at, render

    config = load_config(path)
    project = config.project_for_chat(chat_id)
    if project is None:
        known = ", ".join(str(p.chat_id) for p in config.projects)
        print(f"{path}: no project has chat_id {chat_id} (known: {known})", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        now = parse_at(at, config.defaults.timezone) if at else datetime.now(UTC)
    except ValueError as exc:
        print(f"sitewalk dry-run: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(render(config, project, text, now.astimezone(UTC), classifier_for(config)))
    return EXIT_OK


def _classify(config_path: str | None) -> int:
    from escalation.classifier import Classifier, LexiconExtension, classify_lines

    lex = load_config(config_path).lexicon if config_path else LexiconConfig()
    classifier = Classifier(
        LexiconExtension(tuple(lex.extra_hazard), tuple(lex.extra_ack), tuple(lex.extra_not_hazard))
    )
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    for line in classify_lines(stdin, classifier):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _run(path: str, verbose: bool) -> int:
    from telegram import Update

    from bot.app import build_application
    from bot.clock import SystemClock
    from bot.logs import configure_logging

    config = load_config(path)
    token = config.telegram.token()
    hook = config.telegram.webhook if config.telegram.mode == "webhook" else None
    webhook_secret = hook.secret().get_secret_value() if hook is not None else ""
    # PTB logs setWebhook's parameters at debug: the webhook secret is redacted like the token.
    configure_logging(verbose=verbose, secrets=[token.get_secret_value(), webhook_secret])
    app = build_application(
        config,
        token=token.get_secret_value(),
        clock=SystemClock(),
        config_path=path,
        own_process=True,
    )
    problem = asyncio.run(
        _first_contact(app.bot, config.telegram.api_base_url, config.telegram.token_env, token)
    )
    if problem is not None:
        print(f"sitewalk run: {problem}", file=sys.stderr)
        return EXIT_FAILED
    logging.getLogger("sitewalk").info(
        "starting: %d project(s), Bot API %s", len(config.projects), config.telegram.api_base_url
    )
    if hook is not None:
        app.run_webhook(
            listen=hook.listen,
            port=hook.port,
            # Served at the path of `url`, as PTB's examples set it up behind a proxy that passes
            # the path on: PTB alone serves "/" only, and a post to /sitewalk was a 404.
            url_path=urlsplit(hook.url).path.rstrip("/"),
            webhook_url=hook.url,
            secret_token=webhook_secret,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        # run_polling stops cleanly on SIGINT and SIGTERM (PTB's default stop_signals).
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return EXIT_OK


async def _first_contact(bot: Bot, api: str, token_env: str, token: SecretStr) -> str | None:
    """One getMe before anything starts; what went wrong as one line, else None.

    Without it, a wrong token or an unreachable Bot API ended `sitewalk run` in a traceback from
    inside PTB's start-up. The bot is shut down again here; `run_polling` initialises it anew.
    """
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.logs import redact, secret_parts

    try:
        async with bot:
            return None
    except InvalidToken:
        return f"Telegram refused the token in {token_env}: check it with @BotFather"
    except TelegramError as exc:
        reason = redact(exc.message, secret_parts([token.get_secret_value()]))
        if isinstance(exc, NetworkError):
            return f"cannot reach the Bot API at {api}: {reason}"
        return f"the Bot API refused getMe: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
