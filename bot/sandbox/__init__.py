"""A local Telegram Bot API over real HTTP, for tests, the demo and benchmarks (no internet)."""

from bot.sandbox.server import LocalBotApi
from bot.sandbox.state import ApiCall

__all__ = ["ApiCall", "LocalBotApi"]
