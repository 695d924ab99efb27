"""A local Telegram Bot API over real HTTP, for tests, the demo and benchmarks (no internet).

Usage::

    async with LocalBotApi() as api:
        app = (ApplicationBuilder().token(api.token).base_url(api.base_url)
               .base_file_url(api.base_file_url).build())
        api.start_bot(42)                       # the user side enqueues updates
        await api.wait_sent(42)                 # then inspect what the bot did

Modules: server (HTTP, inspection, injection), users (user-side actions), methods (Bot API
handlers), world (shared state and rules), formatting (parse_mode), params, state.
"""

from bot.sandbox.server import LocalBotApi
from bot.sandbox.state import ApiCall

__all__ = ["ApiCall", "LocalBotApi"]
