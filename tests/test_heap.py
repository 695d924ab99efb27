"""The bot's own process freezes what start-up built out of the garbage collector's walks."""

from __future__ import annotations

import gc

from bot.app import settle_heap


def test_settle_heap_freezes_the_objects_that_exist_now() -> None:
    """After settle_heap the collector no longer walks the objects alive at that moment (its
    full collections walked them dozens of times in a catch-up); new objects it still walks."""
    gc.unfreeze()
    try:
        kept = {"a": [1, 2]}
        assert any(o is kept for o in gc.get_objects())
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: no generation holds it
        fresh = {"b": [3]}
        assert any(o is fresh for o in gc.get_objects())
    finally:
        gc.unfreeze()
