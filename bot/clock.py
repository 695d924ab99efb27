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
    """Time that starts at `start` and runs `speed` times faster than real time (the demo's).

    A clock made `paused` stands at `start` until `resume()`: the demo's set-up takes seconds
    on a slow machine, and at 240x each second would eat four minutes of the story.
    """

    def __init__(self, start: datetime, speed: float, *, paused: bool = False) -> None:
        self._start = start
        self._speed = speed
        self._origin = time.monotonic()
        self._paused = paused

    def resume(self) -> None:
        """Time runs on from `start`, from now."""
        if self._paused:
            self._origin = time.monotonic()
            self._paused = False

    def now(self) -> datetime:
        return self.at_monotonic(time.monotonic())

    def real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds() / self._speed

    def at_monotonic(self, moment: float) -> datetime:
        """The scaled time of a `time.monotonic()` reading, to place logged events on it; a
        reading from before `resume()` is `start`."""
        if self._paused:
            return self._start
        return self._start + timedelta(seconds=max(0.0, moment - self._origin) * self._speed)
