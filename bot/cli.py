"""The `sitewalk` command line: run, check-config, classify, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.config import Config, ConfigError, LexiconConfig, load_config

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
            return _check_config(args.file)
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


def _check_config(path: str) -> int:
    config = load_config(path)
    print(summary(config))
    return EXIT_OK


def summary(config: Config) -> str:
    """One screen: projects, levels, people and deadlines."""
    from escalation.durations import format_duration

    lines = [f"OK: {len(config.projects)} project(s), storage {config.storage.url.split('://')[0]}"]
    for project in config.projects:
        lines.append(f"- {project.name} (chat {project.chat_id})")
        for number, level in enumerate(project.chain, 1):
            people = ", ".join(
                m.name or (f"@{m.username}" if m.username else str(m.id)) for m in level.members
            )
            lines.append(
                f"    {number}. {level.role}: {people} — {format_duration(level.deadline)}"
            )
        if len(project.chain) == 1:
            lines.append("    warning: a single level; nobody above it will be told")
    return "\n".join(lines)


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
    configure_logging(verbose=verbose, secrets=[token.get_secret_value()])
    app = build_application(config, token=token.get_secret_value(), clock=SystemClock())
    logging.getLogger("sitewalk").info(
        "starting: %d project(s), Bot API %s", len(config.projects), config.telegram.api_base_url
    )
    if config.telegram.mode == "webhook":
        import os

        hook = config.telegram.webhook
        assert hook is not None
        app.run_webhook(
            listen=hook.listen,
            port=hook.port,
            webhook_url=hook.url,
            secret_token=os.environ.get(hook.secret_env) or None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        # run_polling stops cleanly on SIGINT and SIGTERM (PTB's default stop_signals).
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
