"""Working-time arithmetic on a calendar: add, measure, pause and warn in working time. Pure code.

The calendar is the plain week (Monday–Friday) with a daily schedule, corrected by public holidays
(`Calendar.holidays`) and make-up workdays on weekends (`Calendar.workdays`, 调休); `sla.calendar` loads both from
the `calendar_day` table. Instants are aware datetimes; the arithmetic runs on the wall clock of `Calendar.tz`, and
results are returned in UTC.

Working time is a clock that only runs inside the periods of workdays. "`m` working minutes after `s`" is the
earliest instant at which that clock has advanced by `m`: a limit that ends exactly at 12:00 ends at 12:00, not at
14:00 when the afternoon starts. Weeks without an exception day are skipped arithmetically, so a limit of weeks
costs a few steps, not one per day.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

DEFAULT_SCHEDULE = ((dt.time(8, 0), dt.time(12, 0)), (dt.time(14, 0), dt.time(18, 0)))
UNITS = ("work_min", "work_day", "min")
"""Units of a class-dictionary time limit: working minutes, working days, natural minutes."""

_ZERO = dt.timedelta(0)
_TICK = dt.timedelta(microseconds=1)
_ONE_DAY = dt.timedelta(days=1)
_MINUTE = dt.timedelta(minutes=1)
_MAX_DAYS = 20 * 366  # a bound on day walks: no sane limit spans twenty years

Offsets = tuple[tuple[dt.timedelta, dt.timedelta], ...]


def _offset(t: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which days are worked and the working periods of a day, in a time zone."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    schedule: tuple[tuple[dt.time, dt.time], ...] = DEFAULT_SCHEDULE
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up workdays (调休) on weekends
    # derived once in __post_init__: periods as offsets from midnight, their total, and the exception days as
    # ordinals (sorted, for skipping plain weeks; as sets, for the day walk)
    offsets: Offsets = field(init=False, repr=False, compare=False)
    per_day: dt.timedelta = field(init=False, repr=False, compare=False)
    exceptions: tuple[int, ...] = field(init=False, repr=False, compare=False)
    worked_ordinals: frozenset[int] = field(init=False, repr=False, compare=False)
    free_ordinals: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.schedule:
            raise ValueError("the daily schedule needs at least one working period")
        previous_end: dt.time | None = None
        for begin, end in self.schedule:
            if begin >= end:
                raise ValueError(f"working period {begin:%H:%M}-{end:%H:%M} must end after it begins")
            if previous_end is not None and begin < previous_end:
                raise ValueError("working periods must be in order and must not overlap")
            previous_end = end
        offsets = tuple((_offset(a), _offset(b)) for a, b in self.schedule)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "per_day", sum((b - a for a, b in offsets), _ZERO))
        object.__setattr__(self, "exceptions", tuple(sorted(d.toordinal() for d in self.holidays | self.workdays)))
        object.__setattr__(self, "worked_ordinals", frozenset(d.toordinal() for d in self.workdays))
        object.__setattr__(self, "free_ordinals", frozenset(d.toordinal() for d in self.holidays - self.workdays))

    def is_workday(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def is_work_ordinal(self, ordinal: int) -> bool:
        """`is_workday` on a proleptic ordinal (day 1, a Monday, is 1 January of year 1): the fast path."""
        if ordinal in self.worked_ordinals:
            return True
        return (ordinal - 1) % 7 < 5 and ordinal not in self.free_ordinals

    def periods(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_workday(day):
            return []
        return [(dt.datetime.combine(day, a, self.tz), dt.datetime.combine(day, b, self.tz)) for a, b in self.schedule]

    @property
    def minutes_per_day(self) -> int:
        """Working minutes of one workday."""
        return int(self.per_day // _MINUTE)

    def plain_days_from(self, day: dt.date) -> int:
        """How many days from `day` on follow the plain week (no holiday or make-up day among them)."""
        i = bisect.bisect_left(self.exceptions, day.toordinal())
        return self.exceptions[i] - day.toordinal() if i < len(self.exceptions) else _MAX_DAYS

    def workdays_between(self, first: dt.date, stop: dt.date) -> int:
        """Workdays in [first, stop)."""
        if stop <= first:
            return 0
        weeks, rest = divmod(stop.toordinal() - first.toordinal(), 7)
        count = weeks * 5 + sum((first.weekday() + i) % 7 < 5 for i in range(rest))
        lo = bisect.bisect_left(self.exceptions, first.toordinal())
        hi = bisect.bisect_left(self.exceptions, stop.toordinal())
        for ordinal in self.exceptions[lo:hi]:
            day = dt.date.fromordinal(ordinal)
            count += self.is_workday(day) - (day.weekday() < 5)
        return count


def _local(instant: dt.datetime, cal: Calendar) -> tuple[dt.date, dt.timedelta]:
    """The local day of an aware instant and its wall-clock offset from midnight."""
    if instant.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    local = instant.astimezone(cal.tz)
    return local.date(), _offset(local.time())


def _instant(day: dt.date, offset: dt.timedelta, cal: Calendar) -> dt.datetime:
    """The UTC instant of a wall-clock offset on a local day."""
    return (dt.datetime.combine(day, dt.time()) + offset).replace(tzinfo=cal.tz).astimezone(dt.UTC)


def _worked(offsets: Offsets, lo: dt.timedelta, hi: dt.timedelta) -> dt.timedelta:
    """Working time of a workday between two wall-clock offsets."""
    total = _ZERO
    for a, b in offsets:
        overlap = min(b, hi) - max(a, lo)
        if overlap > _ZERO:
            total += overlap
    return total


def advance(start: dt.datetime, amount: dt.timedelta, cal: Calendar) -> dt.datetime:
    """The earliest instant at which `amount` of working time has passed since `start` (UTC)."""
    if amount < _ZERO:
        raise ValueError("working time to add must not be negative")
    day, now = _local(start, cal)
    if amount == _ZERO:
        return start.astimezone(dt.UTC)
    ordinal, per_day, week = day.toordinal(), cal.per_day, 5 * cal.per_day
    exception = -1  # the first exception day on or after `ordinal`, once looked up
    for _ in range(_MAX_DAYS):
        if now == _ZERO and amount > week:
            if exception < ordinal:
                exception = ordinal + cal.plain_days_from(dt.date.fromordinal(ordinal))
            if exception - ordinal >= 7:  # whole plain weeks at once, leaving some time for the day walk
                weeks = min((exception - ordinal) // 7, (amount - _TICK) // week)
                amount -= weeks * week
                ordinal += 7 * weeks
                continue
        if cal.is_work_ordinal(ordinal):
            if now == _ZERO and amount > per_day:  # a whole workday, without looking at its periods
                amount -= per_day
            else:
                for a, b in cal.offsets:
                    begin = max(a, now)
                    if begin >= b:
                        continue
                    if amount <= b - begin:
                        return _instant(dt.date.fromordinal(ordinal), begin + amount, cal)
                    amount -= b - begin
        ordinal, now = ordinal + 1, _ZERO
    raise ValueError("working-time limit too large")


def working_time(a: dt.datetime, b: dt.datetime, cal: Calendar) -> dt.timedelta:
    """Working time in [a, b); zero when b <= a."""
    if b <= a:
        return _ZERO
    day_a, lo = _local(a, cal)
    day_b, hi = _local(b, cal)
    if day_a == day_b:
        return _worked(cal.offsets, lo, hi) if cal.is_workday(day_a) else _ZERO
    total = cal.workdays_between(day_a + _ONE_DAY, day_b) * cal.per_day
    if cal.is_workday(day_a):
        total += _worked(cal.offsets, lo, _ONE_DAY)
    if cal.is_workday(day_b):
        total += _worked(cal.offsets, _ZERO, hi)
    return total


def add_working_minutes(start: dt.datetime, minutes: int, cal: Calendar) -> dt.datetime:
    """The instant when `minutes` working minutes have passed after `start` (aware datetimes; UTC result)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return advance(start, dt.timedelta(minutes=minutes), cal)


def add_working_days(start: dt.datetime, days: int, cal: Calendar) -> dt.datetime:
    """`days` working days later: the same working minute of the day, `days` workdays on."""
    return add_working_minutes(start, days * cal.minutes_per_day, cal)


def working_minutes_between(a: dt.datetime, b: dt.datetime, cal: Calendar) -> int:
    """Whole working minutes in [a, b); 0 when b <= a."""
    return int(working_time(a, b, cal) // _MINUTE)


def deadline_for(start: dt.datetime, value: int, unit: str, cal: Calendar) -> dt.datetime:
    """A stage deadline from a class-dictionary limit: `work_min`, `work_day` or natural `min`."""
    if unit == "min":
        return start + dt.timedelta(minutes=value)
    if unit == "work_min":
        return add_working_minutes(start, value, cal)
    if unit == "work_day":
        return add_working_days(start, value, cal)
    raise ValueError(f"unknown time-limit unit {unit!r}")


def _counts_working_time(unit: str) -> bool:
    if unit not in UNITS:
        raise ValueError(f"unknown time-limit unit {unit!r}")
    return unit != "min"


def resume_deadline(
    deadline: dt.datetime, paused_at: dt.datetime, resumed_at: dt.datetime, unit: str, cal: Calendar
) -> dt.datetime:
    """The deadline after a pause (postponement, shelving): the time that was left when the clock stopped is
    granted again from `resumed_at`, counted in working time for working units and natural time for `min`.

    A deadline already passed when the clock stopped stays passed by as much as it was (the pause neither
    forgives nor adds overdue time).
    """
    if resumed_at < paused_at:
        raise ValueError("resumed_at must not be before paused_at")
    if not _counts_working_time(unit):
        return (resumed_at + (deadline - paused_at)).astimezone(dt.UTC)
    if deadline >= paused_at:
        return advance(resumed_at, working_time(paused_at, deadline, cal), cal)
    return advance(deadline, working_time(paused_at, resumed_at, cal), cal)


def warn_at(start: dt.datetime, deadline: dt.datetime, share: float, unit: str, cal: Calendar) -> dt.datetime:
    """The instant when `share` (0..1) of the limit between `start` and `deadline` has passed: in working time for
    working units (so a warning never falls in a lunch break or on a weekend), natural time for `min`."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    if not _counts_working_time(unit):
        return (start + (deadline - start) * share).astimezone(dt.UTC)
    total = working_time(start, deadline, cal)
    return advance(start, dt.timedelta(seconds=round(total.total_seconds() * share)), cal)
