"""Working-time arithmetic: when a span that counts only working hours and days ends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
# A calendar always has working time within a week or a holiday season; a span that finds none
# in ten years can only come from a broken calendar, and must not spin forever.
_MAX_DAYS = 3660


class NoWorkingTime(ValueError):
    """A calendar that never works (no working days or hours) cannot end any span."""


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Weekly working hours in one timezone, with public holidays and make-up working days (调休).

    A day works when it is in `workdays`, or when its weekday works and it is not in `holidays`.
    Every working day has the same `hours`, as minutes since local midnight, [start, end).
    """

    timezone: str
    weekdays: frozenset[int]  # 0 = Monday … 6 = Sunday
    hours: tuple[tuple[int, int], ...]
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.hours or not (self.weekdays or self.workdays):
            msg = "a working-time calendar needs at least one working day and one interval"
            raise NoWorkingTime(msg)
        end = -1
        for start, stop in self.hours:
            if not 0 <= start < stop <= MINUTES_PER_DAY or start < end:
                msg = f"working hours must be sorted, non-overlapping, within a day: {self.hours}"
                raise ValueError(msg)
            end = stop
        ZoneInfo(self.timezone)  # fail early on an unknown zone

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals of a local day, as aware UTC datetimes."""
        if not self.is_working_day(day):
            return
        zone = ZoneInfo(self.timezone)
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        for start, stop in self.hours:
            # Wall-clock minutes, converted one by one, so a DST change is honoured.
            yield (
                _local(midnight, start).astimezone(UTC),
                _local(midnight, stop).astimezone(UTC),
            )

    def add(self, start: datetime, span: timedelta) -> datetime:
        """The moment at which `span` of working time has passed since `start` (aware UTC)."""
        if span <= timedelta(0):
            return start
        remaining = span
        day = start.astimezone(ZoneInfo(self.timezone)).date()
        for _ in range(_MAX_DAYS):
            for begin, end in self.intervals(day):
                if end <= start:
                    continue
                counted_from = max(begin, start)
                available = end - counted_from
                if remaining <= available:
                    return counted_from + remaining
                remaining -= available
            day += timedelta(days=1)
        msg = f"no working time in {_MAX_DAYS} days after {start.isoformat()}"
        raise NoWorkingTime(msg)

    def is_working(self, when: datetime) -> bool:
        day = when.astimezone(ZoneInfo(self.timezone)).date()
        return any(begin <= when < end for begin, end in self.intervals(day))

    def window(self, first: date, last: date) -> WorkCalendar:
        """The same calendar keeping only exceptions in [first, last], to store on a hazard."""
        return WorkCalendar(
            self.timezone,
            self.weekdays,
            self.hours,
            frozenset(d for d in self.holidays if first <= d <= last),
            frozenset(d for d in self.workdays if first <= d <= last),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "weekdays": sorted(self.weekdays),
            "hours": [[start, stop] for start, stop in self.hours],
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "workdays": sorted(d.isoformat() for d in self.workdays),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkCalendar:
        return cls(
            timezone=str(data["timezone"]),
            weekdays=frozenset(int(d) for d in data["weekdays"]),
            hours=tuple((int(a), int(b)) for a, b in data["hours"]),
            holidays=frozenset(date.fromisoformat(d) for d in data.get("holidays", ())),
            workdays=frozenset(date.fromisoformat(d) for d in data.get("workdays", ())),
        )


def _local(midnight: datetime, minutes: int) -> datetime:
    """Local wall-clock time `minutes` after midnight; 24:00 is the next midnight."""
    day = midnight.date() + timedelta(days=minutes // MINUTES_PER_DAY)
    hour, minute = divmod(minutes % MINUTES_PER_DAY, 60)
    return datetime.combine(day, time(hour, minute), tzinfo=midnight.tzinfo)
