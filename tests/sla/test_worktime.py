"""Working-time arithmetic on the official calendar: weekends, public holidays, make-up days, pauses, warnings."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid_mgmt.sla.holidays import OFFICIAL_DAYS
from grid_mgmt.sla.worktime import (
    Calendar,
    add_working_days,
    add_working_minutes,
    deadline_for,
    resume_deadline,
    warn_at,
    working_minutes_between,
)

CST = ZoneInfo("Asia/Shanghai")
CAL = Calendar(
    holidays=frozenset(d.day for d in OFFICIAL_DAYS if d.kind == "holiday"),
    workdays=frozenset(d.day for d in OFFICIAL_DAYS if d.kind == "workday"),
)


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    """Beijing time."""
    return dt.datetime(y, mo, d, h, mi, tzinfo=CST)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


def test_a_deadline_across_a_weekend_a_public_holiday_and_a_make_up_saturday_lands_on_the_right_minute() -> None:
    # Fri 18 Sep 2026 16:00: 120 min that day; Sat 19 off; Sun 20 make-up workday (480 → 600);
    # Mon 21 – Thu 24 (→ 2520); Fri 25 – Sun 27 中秋节; Mon 28 – Wed 30 (→ 3960); Oct 1–7 国庆节;
    # Thu 8, Fri 9 (→ 4920); make-up Sat 10 Oct: 360 left = 08:00–12:00 and 14:00–16:00.
    assert add_working_days(at(2026, 9, 18, 16), 11, CAL) == utc(2026, 10, 10, 8)  # Sat 10 Oct 16:00 CST
    assert deadline_for(at(2026, 9, 18, 16), 11 * 480, "work_min", CAL) == at(2026, 10, 10, 16)


def test_two_working_days_from_friday_afternoon_use_the_make_up_sunday() -> None:
    # Fri 16:00–18:00 = 120; Sat 19 Sep not worked; Sun 20 Sep (make-up) = 480; Mon 08:00–12:00 and 14:00–16:00.
    assert add_working_days(at(2026, 9, 18, 16), 2, CAL) == at(2026, 9, 21, 16)
    assert deadline_for(at(2026, 9, 18, 16), 2, "work_day", CAL) == utc(2026, 9, 21, 8)


def test_across_national_day_it_lands_on_the_make_up_saturday() -> None:
    # Wed 30 Sep 10:00: 360 that day; Oct 1–7 off; Thu 8 and Fri 9 = 960; Sat 10 Oct 08:00 + 120.
    assert add_working_days(at(2026, 9, 30, 10), 3, CAL) == at(2026, 10, 10, 10)
    # one working day from Wed 30 Sep 17:00: 60 that day, then Thu 8 Oct 08:00–12:00, 14:00–17:00
    assert add_working_days(at(2026, 9, 30, 17), 1, CAL) == at(2026, 10, 8, 17)


def test_an_ordinary_weekend_is_skipped() -> None:
    assert add_working_days(at(2026, 10, 16, 16), 1, CAL) == at(2026, 10, 19, 16)  # Fri → Mon
    assert add_working_minutes(at(2026, 10, 17, 10), 30, CAL) == at(2026, 10, 19, 8, 30)  # from a Saturday


@pytest.mark.parametrize(
    ("start", "minutes", "expected"),
    [
        (at(2026, 10, 19, 12, 30), 60, at(2026, 10, 19, 15)),  # lunch: counts from 14:00
        (at(2026, 10, 19, 7), 60, at(2026, 10, 19, 9)),  # before work
        (at(2026, 10, 19, 19), 60, at(2026, 10, 20, 9)),  # after work: next morning
        (at(2026, 10, 19, 8), 240, at(2026, 10, 19, 12)),  # exactly the morning: 12:00, not 14:00
        (at(2026, 10, 19, 11), 60, at(2026, 10, 19, 12)),
        (at(2026, 10, 19, 14), 480, at(2026, 10, 20, 12)),  # a whole working day from 14:00: 12:00 next day
        (at(2026, 10, 19, 8), 480, at(2026, 10, 19, 18)),  # a whole day ends at 18:00 that day
        (at(2026, 10, 19, 12), 0, at(2026, 10, 19, 12)),  # nothing to add: the start itself
        (at(2026, 10, 19, 11, 59), 1, at(2026, 10, 19, 12)),
        (at(2026, 10, 19, 11, 59), 2, at(2026, 10, 19, 14, 1)),
        (dt.datetime(2026, 10, 19, 1, 30, tzinfo=dt.UTC), 30, at(2026, 10, 19, 10)),  # UTC input: 09:30 CST
    ],
)
def test_start_inside_before_after_and_between_periods(start: dt.datetime, minutes: int, expected: dt.datetime) -> None:
    result = add_working_minutes(start, minutes, CAL)
    assert result == expected and result.tzinfo is dt.UTC


def test_naive_start_and_negative_minutes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_minutes(dt.datetime(2026, 10, 19, 9), 10, CAL)
    with pytest.raises(ValueError, match="negative"):
        add_working_minutes(at(2026, 10, 19, 9), -1, CAL)
    with pytest.raises(ValueError, match="unit"):
        deadline_for(at(2026, 10, 19, 9), 1, "fortnight", CAL)


def test_working_minutes_between() -> None:
    assert working_minutes_between(at(2026, 10, 19, 12, 30), at(2026, 10, 19, 15), CAL) == 60
    assert working_minutes_between(at(2026, 10, 19, 7), at(2026, 10, 19, 19), CAL) == 480
    assert working_minutes_between(at(2026, 10, 16, 17), at(2026, 10, 19, 9), CAL) == 120  # over a weekend
    assert working_minutes_between(at(2026, 9, 30, 17), at(2026, 10, 8, 9), CAL) == 120  # over 国庆节
    assert working_minutes_between(at(2026, 10, 10, 7), at(2026, 10, 10, 19), CAL) == 480  # make-up Saturday
    assert working_minutes_between(at(2026, 10, 17, 7), at(2026, 10, 17, 19), CAL) == 0  # an ordinary Saturday
    assert working_minutes_between(at(2026, 10, 1, 9), at(2026, 10, 1, 17), CAL) == 0  # a holiday Thursday
    assert working_minutes_between(at(2026, 10, 19, 12), at(2026, 10, 19, 14), CAL) == 0  # lunch


def test_working_minutes_between_is_zero_backwards_and_additive() -> None:
    a, b, c = at(2026, 9, 18, 16), at(2026, 9, 30, 10, 15), at(2026, 10, 12, 9, 45)
    assert working_minutes_between(b, a, CAL) == 0 and working_minutes_between(a, a, CAL) == 0
    ab, bc = working_minutes_between(a, b, CAL), working_minutes_between(b, c, CAL)
    assert ab + bc == working_minutes_between(a, c, CAL)
    # Fri 120 + Sun 480 + Mon–Thu 1920 + Mon–Tue 960 + Wed 08:00–10:15 135
    assert ab == 3615


def test_resume_deadline_across_a_holiday() -> None:
    # paused Wed 30 Sep 10:00 with the deadline at 16:00 (240 working minutes left), resumed on Fri 2 Oct (a
    # holiday): the clock restarts on Thu 8 Oct 08:00 and the 240 minutes end at 12:00
    deadline, paused = at(2026, 9, 30, 16), at(2026, 9, 30, 10)
    assert resume_deadline(deadline, paused, at(2026, 10, 2, 9), "work_min", CAL) == at(2026, 10, 8, 12)
    assert resume_deadline(deadline, paused, at(2026, 10, 2, 9), "work_day", CAL) == at(2026, 10, 8, 12)
    # natural minutes: 6 hours left, granted from the resumption
    assert resume_deadline(deadline, paused, at(2026, 10, 2, 9), "min", CAL) == at(2026, 10, 2, 15)
    # resumed at once: nothing changes
    assert resume_deadline(deadline, paused, paused, "work_min", CAL) == deadline


def test_resume_deadline_when_already_overdue_keeps_the_overdue_time() -> None:
    # due Mon 10:00, paused at 11:00 (60 working minutes late), resumed Tue 09:00: still 60 working minutes late
    deadline = resume_deadline(at(2026, 10, 19, 10), at(2026, 10, 19, 11), at(2026, 10, 20, 9), "work_min", CAL)
    assert deadline == at(2026, 10, 19, 18)
    assert working_minutes_between(deadline, at(2026, 10, 20, 9), CAL) == 60
    with pytest.raises(ValueError, match="resumed_at"):
        resume_deadline(at(2026, 10, 19, 10), at(2026, 10, 19, 11), at(2026, 10, 19, 10), "work_min", CAL)


def test_warn_at_share() -> None:
    # 960 working minutes from Fri 18 Sep 16:00 to Mon 21 Sep 16:00; 80 % = 768: Fri 120, Sun 480, Mon 08:00 + 168
    start, deadline = at(2026, 9, 18, 16), at(2026, 9, 21, 16)
    assert warn_at(start, deadline, 0.8, "work_day", CAL) == at(2026, 9, 21, 10, 48)
    assert warn_at(start, deadline, 0.8, "min", CAL) == at(2026, 9, 21, 16) - dt.timedelta(hours=14, minutes=24)
    assert warn_at(start, deadline, 1.0, "work_min", CAL) == deadline
    assert warn_at(start, deadline, 0.0, "work_min", CAL) == start
    with pytest.raises(ValueError, match="share"):
        warn_at(start, deadline, 1.5, "work_min", CAL)


def test_schedule_is_checked() -> None:
    with pytest.raises(ValueError, match="end after"):
        Calendar(schedule=((dt.time(12), dt.time(8)),))
    with pytest.raises(ValueError, match="overlap"):
        Calendar(schedule=((dt.time(8), dt.time(12)), (dt.time(11), dt.time(18))))
    with pytest.raises(ValueError, match="at least one"):
        Calendar(schedule=())


def test_another_schedule_and_time_zone() -> None:
    cal = Calendar(tz=ZoneInfo("Europe/Berlin"), schedule=((dt.time(9), dt.time(17)),))
    assert cal.minutes_per_day == 480
    # a DST weekend (29 Mar 2026): Fri 16:00 CET + 120 → Mon 10:00 CEST
    start = dt.datetime(2026, 3, 27, 16, tzinfo=cal.tz)
    assert add_working_minutes(start, 120, cal) == dt.datetime(2026, 3, 30, 10, tzinfo=cal.tz)


def test_twenty_working_days_is_fast() -> None:
    start = at(2026, 9, 18, 16)
    began = time.perf_counter()
    for _ in range(1000):
        add_working_days(start, 20, CAL)
    assert (time.perf_counter() - began) / 1000 < 200e-6  # a few dozen day steps, not thousands of periods


def _reference_add(start: dt.datetime, minutes: int, cal: Calendar) -> dt.datetime:
    """The plain period-by-period walk (slow, obviously right), for minutes > 0."""
    remaining = dt.timedelta(minutes=minutes)
    local = start.astimezone(cal.tz)
    day = local.date()
    while True:
        for a, b in cal.periods(day):
            begin = max(a, local)
            if begin < b:
                if remaining <= b - begin:
                    return begin + remaining
                remaining -= b - begin
        day += dt.timedelta(days=1)


INSTANTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31, 23, 59), timezones=st.just(CST)
).map(lambda d: d.replace(second=0, microsecond=0))


@settings(max_examples=300, deadline=None)
@given(start=INSTANTS, minutes=st.integers(min_value=0, max_value=20_000))
def test_adding_then_measuring_gives_back_the_minutes(start: dt.datetime, minutes: int) -> None:
    end = add_working_minutes(start, minutes, CAL)
    assert end >= start
    assert working_minutes_between(start, end, CAL) == minutes
    if minutes > 0:
        assert end == _reference_add(start, minutes, CAL)


@settings(max_examples=200, deadline=None)
@given(a=INSTANTS, b=INSTANTS)
def test_measuring_is_zero_backwards_and_splits_anywhere(a: dt.datetime, b: dt.datetime) -> None:
    lo, hi = min(a, b), max(a, b)
    middle = (lo + (hi - lo) / 3).replace(second=0, microsecond=0)
    assert working_minutes_between(hi, lo, CAL) == 0
    total = working_minutes_between(lo, hi, CAL)
    assert working_minutes_between(lo, middle, CAL) + working_minutes_between(middle, hi, CAL) == total


@settings(max_examples=60, deadline=None)
@given(start=INSTANTS, minutes=st.integers(min_value=1, max_value=300_000))
def test_long_limits_agree_with_the_period_walk(start: dt.datetime, minutes: int) -> None:
    assert add_working_minutes(start, minutes, CAL) == _reference_add(start, minutes, CAL)
