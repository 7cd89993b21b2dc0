"""The official working calendar of the People's Republic of China, 2025–2027, shipped as data (editable later)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OfficialDay:
    day: dt.date
    kind: str  # "holiday" | "workday"
    name: str
    source: str


NOTICE_2025 = "国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）"
NOTICE_2026 = "国务院办公厅关于2026年部分节假日安排的通知（国办发明电〔2025〕7号）"
PROVISIONAL_2027 = (
    "provisional: replace with the State Council notice for 2027 when published "
    "(edit via PUT /api/v1/calendar/days); derived from the statutory rules of 全国年节及纪念日放假办法 (2024)"
)

# (source, festival, first and last day of the holiday period, make-up workdays 调休上班)
_PERIODS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (NOTICE_2025, "元旦", "2025-01-01", "2025-01-01", ()),
    (NOTICE_2025, "春节", "2025-01-28", "2025-02-04", ("2025-01-26", "2025-02-08")),
    (NOTICE_2025, "清明节", "2025-04-04", "2025-04-06", ()),
    (NOTICE_2025, "劳动节", "2025-05-01", "2025-05-05", ("2025-04-27",)),
    (NOTICE_2025, "端午节", "2025-05-31", "2025-06-02", ()),
    (NOTICE_2025, "国庆节、中秋节", "2025-10-01", "2025-10-08", ("2025-09-28", "2025-10-11")),
    (NOTICE_2026, "元旦", "2026-01-01", "2026-01-03", ("2026-01-04",)),
    (NOTICE_2026, "春节", "2026-02-15", "2026-02-23", ("2026-02-14", "2026-02-28")),
    (NOTICE_2026, "清明节", "2026-04-04", "2026-04-06", ()),
    (NOTICE_2026, "劳动节", "2026-05-01", "2026-05-05", ("2026-05-09",)),
    (NOTICE_2026, "端午节", "2026-06-19", "2026-06-21", ()),
    (NOTICE_2026, "中秋节", "2026-09-25", "2026-09-27", ()),
    (NOTICE_2026, "国庆节", "2026-10-01", "2026-10-07", ("2026-09-20", "2026-10-10")),
    # 2027, provisional: 除夕 is Fri Feb 5 (春节 from 除夕, 8 days), 清明 Mon Apr 5, 端午 Wed Jun 9 and
    # 中秋 Wed Sep 15 (one day each, no swap), 劳动节 5 days, 国庆节 7 days; make-up days keep work runs ≤ 6 days.
    (PROVISIONAL_2027, "元旦", "2027-01-01", "2027-01-03", ()),
    (PROVISIONAL_2027, "春节", "2027-02-05", "2027-02-12", ("2027-01-31", "2027-02-20")),
    (PROVISIONAL_2027, "清明节", "2027-04-03", "2027-04-05", ()),
    (PROVISIONAL_2027, "劳动节", "2027-05-01", "2027-05-05", ("2027-05-08",)),
    (PROVISIONAL_2027, "端午节", "2027-06-09", "2027-06-09", ()),
    (PROVISIONAL_2027, "中秋节", "2027-09-15", "2027-09-15", ()),
    (PROVISIONAL_2027, "国庆节", "2027-10-01", "2027-10-07", ("2027-09-26", "2027-10-09")),
)


def _days() -> tuple[OfficialDay, ...]:
    out: list[OfficialDay] = []
    for source, name, first, last, makeup in _PERIODS:
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while day <= end:
            out.append(OfficialDay(day, "holiday", name, source))
            day += dt.timedelta(days=1)
        out.extend(OfficialDay(dt.date.fromisoformat(d), "workday", f"{name}调休上班", source) for d in makeup)
    return tuple(sorted(out, key=lambda d: d.day))


OFFICIAL_DAYS: tuple[OfficialDay, ...] = _days()
"""Every day of each holiday period (weekends included) as 'holiday', every make-up day as 'workday'."""
