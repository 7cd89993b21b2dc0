"""HTTP endpoints of the working calendar: read it (anyone logged in), edit its exceptions (admin)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, put
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from grid_mgmt.lib.auth import authenticated, current, requires
from grid_mgmt.lib.deps import DB, AppSettings
from grid_mgmt.lib.errors import DomainError
from grid_mgmt.lib.openapi import responses
from grid_mgmt.settings import parse_schedule
from grid_mgmt.sla import calendar
from grid_mgmt.sla.schemas import CalendarDayPut, CalendarDayRead, CalendarRead, WorkPeriodRead
from grid_mgmt.sla.worktime import Calendar

DAY = Parameter(description="the day, YYYY-MM-DD")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DESCRIPTIONS = {
    400: "The request is malformed: the day is not a date YYYY-MM-DD, or the body or `year` has the wrong shape.",
    404: "The day has no calendar entry (it follows the plain week).",
    422: "Only a Saturday or Sunday can be a make-up workday; the name must not be blank.",
}


def _parse_day(text: str) -> dt.date:
    """The path's day; 400 naming the field unless it is a real date written YYYY-MM-DD."""
    try:
        if _ISO_DAY.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise DomainError(f"day must be a date written YYYY-MM-DD, got {text!r}", extra={"field": "day"})


class CalendarController(Controller):
    """The working calendar deadlines are counted on: public holidays and make-up workdays (调休) on top of the
    plain week, and the daily working periods. The official calendar 2025–2027 ships with the database."""

    path = "/api/v1/calendar"
    tags = ["calendar"]

    @get(
        "/days",
        summary="The working calendar: schedule, time zone and the exceptions of a year",
        guards=[authenticated],
        responses=responses(400, 401, descriptions=_DESCRIPTIONS),
    )
    async def list_days(
        self,
        db: DB,
        settings: AppSettings,
        year: Annotated[
            int | None, Parameter(description="only this year (all years when absent)", ge=1900, le=2200)
        ] = None,
    ) -> CalendarRead:
        schedule = parse_schedule(settings.work_schedule)
        return CalendarRead(
            timezone=settings.work_timezone,
            schedule=[WorkPeriodRead(start=f"{a:%H:%M}", end=f"{b:%H:%M}") for a, b in schedule],
            minutes_per_day=Calendar(schedule=schedule).minutes_per_day,
            days=await calendar.list_days(db, year),
        )

    @put(
        "/days/{day:str}",
        summary="Make a day a public holiday or a make-up workday (replaces its entry)",
        guards=[requires("admin")],
        responses=responses(400, 401, 403, 422, descriptions=_DESCRIPTIONS),
    )
    async def put_day(
        self,
        db: DB,
        request: Request[Any, Any, Any],
        day: Annotated[str, DAY],
        data: JSONBody[CalendarDayPut],
    ) -> CalendarDayRead:
        return await calendar.put_day(db, _parse_day(day), data, actor=current(request).username)

    @delete(
        "/days/{day:str}",
        summary="Remove a day's entry: it follows the plain week again",
        guards=[requires("admin")],
        status_code=HTTP_204_NO_CONTENT,
        responses=responses(400, 401, 403, 404, descriptions=_DESCRIPTIONS),
    )
    async def delete_day(self, db: DB, day: Annotated[str, DAY]) -> None:
        await calendar.delete_day(db, _parse_day(day))


ROUTES = [CalendarController]
"""The route handlers of the calendar, for `grid_mgmt.app`."""
