"""Working-time arithmetic: add working minutes or days to an instant on a calendar. Pure code.

The calendar here is the plain week (Monday–Friday) and a daily schedule; public holidays and make-up workdays
plug in through `Calendar.holidays` / `Calendar.workdays` (the workers issue ships the official calendar).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

DEFAULT_SCHEDULE = ((dt.time(8, 0), dt.time(12, 0)), (dt.time(14, 0), dt.time(18, 0)))


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which days are worked and the working periods of a day, in a time zone."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    schedule: tuple[tuple[dt.time, dt.time], ...] = DEFAULT_SCHEDULE
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up workdays (调休) on weekends

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def periods(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_workday(day):
            return []
        return [(dt.datetime.combine(day, a, self.tz), dt.datetime.combine(day, b, self.tz)) for a, b in self.schedule]


def add_working_minutes(start: dt.datetime, minutes: int, cal: Calendar) -> dt.datetime:
    """The instant when `minutes` working minutes have passed after `start` (aware datetimes)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    remaining = dt.timedelta(minutes=minutes)
    local = start.astimezone(cal.tz)
    day = local.date()
    for _ in range(3660):  # ten years of days: a bound, never reached with sane limits
        for a, b in cal.periods(day):
            begin = max(a, local)
            if begin >= b:
                continue
            available = b - begin
            if remaining <= available:
                return (begin + remaining).astimezone(dt.UTC)
            remaining -= available
        day += dt.timedelta(days=1)
    raise ValueError("working-time limit too large")


def add_working_days(start: dt.datetime, days: int, cal: Calendar) -> dt.datetime:
    """`days` working days later: the same working minute of the day, `days` workdays on."""
    per_day = (
        sum(
            int((dt.datetime.combine(dt.date.min, b) - dt.datetime.combine(dt.date.min, a)).total_seconds())
            for a, b in cal.schedule
        )
        // 60
    )
    return add_working_minutes(start, days * per_day, cal)


def deadline_for(start: dt.datetime, value: int, unit: str, cal: Calendar) -> dt.datetime:
    """A stage deadline from a class-dictionary limit: `work_min`, `work_day` or natural `min`."""
    if unit == "min":
        return start + dt.timedelta(minutes=value)
    if unit == "work_min":
        return add_working_minutes(start, value, cal)
    if unit == "work_day":
        return add_working_days(start, value, cal)
    raise ValueError(f"unknown time-limit unit {unit!r}")
