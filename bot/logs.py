"""Logging set-up that never lets the bot token reach a log line, at any level."""

from __future__ import annotations

import logging


def secret_parts(secrets: list[str]) -> list[str]:
    """What must never be shown: each secret, and a token's secret half (after the colon)."""
    return [s for secret in secrets for s in (secret, secret.partition(":")[2]) if s]


def redact(text: str, secrets: list[str]) -> str:
    """`text` with each of `secrets` (see secret_parts) replaced by <token>."""
    for secret in secrets:
        text = text.replace(secret, "<token>")
    return text


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's final message; PTB logs URLs that contain the token."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self._secrets)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(*, verbose: bool, secrets: list[str]) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx, PTB's default client, logs every request line with the token in its URL; the bot
    # sends through aiohttp (bot/http.py), which logs none, but anything built on PTB's default
    # stays quiet too.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO)
    # APScheduler logs every run of every job at INFO: the precise wake-ups would flood the log.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # The token is also a path segment of every URL: redact the whole token and its secret half.
    redacting = RedactSecrets(secret_parts(secrets))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
