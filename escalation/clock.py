"""The clock the core is given: an interface, and a fake that tests move by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where `now` comes from; the core never asks the system for the time."""

    def now(self) -> datetime:
        """Timezone-aware UTC time."""
        ...

    def real_seconds_until(self, when: datetime) -> float | None:
        """How long to really wait until `when`; None when this clock never moves by itself."""
        ...


class FakeClock:
    """A clock that stands still until a test advances it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            msg = "FakeClock needs a timezone-aware start"
            raise ValueError(msg)
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def real_seconds_until(self, when: datetime) -> float | None:
        return None
