"""The shipped official calendar: complete, consistent, and as the State Council notices say."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from grid_mgmt.sla.holidays import NOTICE_2025, NOTICE_2026, OFFICIAL_DAYS, PROVISIONAL_2027

D = dt.date


def _days(year: int, kind: str) -> set[dt.date]:
    return {d.day for d in OFFICIAL_DAYS if d.day.year == year and d.kind == kind}


def test_no_day_twice_and_fields_fit_the_table() -> None:
    counts = Counter(d.day for d in OFFICIAL_DAYS)
    assert [day for day, n in counts.items() if n > 1] == []
    assert {d.kind for d in OFFICIAL_DAYS} == {"holiday", "workday"}
    assert all(0 < len(d.name) <= 60 and 0 < len(d.source) <= 200 for d in OFFICIAL_DAYS)
    assert [d.day for d in OFFICIAL_DAYS] == sorted(d.day for d in OFFICIAL_DAYS)
    assert {d.day.year for d in OFFICIAL_DAYS} == {2025, 2026, 2027}


def test_every_make_up_workday_is_a_weekend_day() -> None:
    assert all(d.day.weekday() >= 5 for d in OFFICIAL_DAYS if d.kind == "workday")


def test_2025_as_in_the_notice() -> None:
    holidays, workdays = _days(2025, "holiday"), _days(2025, "workday")
    assert len(holidays) == 1 + 8 + 3 + 5 + 3 + 8 == 28
    assert workdays == {D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27), D(2025, 9, 28), D(2025, 10, 11)}
    assert {D(2025, 1, 1), D(2025, 1, 28), D(2025, 2, 4), D(2025, 4, 4), D(2025, 5, 5), D(2025, 6, 2)} <= holidays
    assert {D(2025, 10, 1) + dt.timedelta(days=i) for i in range(8)} <= holidays
    assert D(2025, 1, 27) not in holidays and D(2025, 2, 5) not in holidays and D(2025, 10, 9) not in holidays
    assert {d.source for d in OFFICIAL_DAYS if d.day.year == 2025} == {NOTICE_2025}


def test_2026_as_in_the_notice() -> None:
    holidays, workdays = _days(2026, "holiday"), _days(2026, "workday")
    assert len(holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7 == 33
    assert workdays == {
        D(2026, 1, 4),
        D(2026, 2, 14),
        D(2026, 2, 28),
        D(2026, 5, 9),
        D(2026, 9, 20),
        D(2026, 10, 10),
    }
    assert {D(2026, 2, 15) + dt.timedelta(days=i) for i in range(9)} <= holidays
    assert {D(2026, 6, 19), D(2026, 9, 25), D(2026, 9, 27), D(2026, 10, 1), D(2026, 10, 7)} <= holidays
    assert D(2026, 10, 8) not in holidays and D(2026, 2, 24) not in holidays
    names = {d.day: d.name for d in OFFICIAL_DAYS}
    assert names[D(2026, 2, 17)] == "春节" and names[D(2026, 10, 10)] == "国庆节调休上班"
    assert {d.source for d in OFFICIAL_DAYS if d.day.year == 2026} == {NOTICE_2026}


def test_2027_is_provisional_and_says_how_to_replace_it() -> None:
    days_2027 = [d for d in OFFICIAL_DAYS if d.day.year == 2027]
    assert {d.source for d in days_2027} == {PROVISIONAL_2027}
    assert PROVISIONAL_2027.startswith("provisional: replace with the State Council notice for 2027")
    assert "PUT /api/v1/calendar/days" in PROVISIONAL_2027
    holidays = _days(2027, "holiday")
    assert {D(2027, 1, 1), D(2027, 2, 5), D(2027, 2, 6), D(2027, 4, 5), D(2027, 6, 9), D(2027, 9, 15)} <= holidays
    assert {D(2027, 10, 1) + dt.timedelta(days=i) for i in range(7)} <= holidays
