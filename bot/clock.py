"""Clocks that read real time: the system clock, and a fast one for the demo."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds()


class ScaledClock:
    """Time that starts at `start` and runs `speed` times faster than real time (the demo's)."""

    def __init__(self, start: datetime, speed: float) -> None:
        self._start = start
        self._speed = speed
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self._speed)

    def real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds() / self._speed

    def at_monotonic(self, moment: float) -> datetime:
        """The scaled time of a `time.monotonic()` reading, to place logged events on it."""
        return self._start + timedelta(seconds=(moment - self._origin) * self._speed)
