"""Request and response structs of the working calendar."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from grid_mgmt.lib.schemas import Schema

DayKind = Literal["holiday", "workday"]


class CalendarDayRead(Schema):
    """An exception to the plain week: a public holiday, or a make-up workday (调休) on a weekend."""

    day: dt.date
    kind: DayKind
    name: str
    source: str | None
    updated_at: dt.datetime


class WorkPeriodRead(Schema):
    """A working period of every workday, local time of the calendar's time zone."""

    start: str
    end: str


class CalendarRead(Schema):
    """The working calendar: the daily schedule, its time zone and the exceptions to the plain week."""

    timezone: str
    schedule: list[WorkPeriodRead]
    minutes_per_day: int
    days: list[CalendarDayRead]


class CalendarDayPut(Schema):
    """Make a day a public holiday (any day) or a make-up workday (a Saturday or Sunday only)."""

    kind: DayKind
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60, description="e.g. 春节 or 春节调休上班")]
    source: Annotated[str, msgspec.Meta(max_length=200, description="e.g. the State Council notice")] | None = None
