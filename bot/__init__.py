"""sitewalk's Telegram side: handlers, service, engine timers, outbox, CLI and the local Bot API."""

import os

# Opt in to PTB's future behaviour (durations as timedelta) now: our code handles both, and it
# silences a deprecation warning on every 429.
os.environ.setdefault("PTB_TIMEDELTA", "1")
