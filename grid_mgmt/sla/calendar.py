"""The working calendar service: the calendar built from `calendar_day` and the settings, cached per process."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.lib.errors import InvalidInput, NotFound
from grid_mgmt.lib.sql import Source, connected
from grid_mgmt.settings import Settings, parse_schedule
from grid_mgmt.sla import repository
from grid_mgmt.sla.schemas import CalendarDayPut, CalendarDayRead
from grid_mgmt.sla.worktime import Calendar


async def load_calendar(conn: AsyncConnection, settings: Settings) -> Calendar:
    """The calendar as stored now: the settings' time zone and schedule, the table's holidays and make-up days."""
    rows = await repository.exceptions(conn)
    return Calendar(
        tz=ZoneInfo(settings.work_timezone),
        schedule=parse_schedule(settings.work_schedule),
        holidays=frozenset(day for day, kind in rows if kind == "holiday"),
        workdays=frozenset(day for day, kind in rows if kind == "workday"),
    )


@dataclass(slots=True)
class _Cached:
    expires: float
    calendar: Calendar


_cache: dict[tuple[URL, str, str], _Cached] = {}
_generation = 0


def invalidate() -> None:
    """Forget the cached calendars of this process (after an edit); other processes reload within
    `calendar_cache_s` seconds."""
    global _generation
    _generation += 1
    _cache.clear()


async def current_calendar(source: Source, settings: Settings) -> Calendar:
    """The calendar, loaded at most every `settings.calendar_cache_s` seconds per process and database; a miss
    loads through `source` (a caller inside a transaction passes its connection).

    A load that overlaps an `invalidate()` is returned but not cached, so an edit is never hidden by a stale read.
    """
    engine = source if isinstance(source, AsyncEngine) else source.engine
    hit = _hit(engine, settings)
    if hit is not None:
        return hit
    generation = _generation
    async with connected(source) as conn:
        calendar = await load_calendar(conn, settings)
    _store(engine, settings, generation, calendar)
    return calendar


def _key(engine: AsyncEngine, settings: Settings) -> tuple[URL, str, str]:
    return (engine.url, settings.work_timezone, settings.work_schedule)


def _hit(engine: AsyncEngine, settings: Settings) -> Calendar | None:
    hit = _cache.get(_key(engine, settings))
    return hit.calendar if hit is not None and time.monotonic() < hit.expires else None


def _store(engine: AsyncEngine, settings: Settings, generation: int, calendar: Calendar) -> None:
    if generation == _generation and settings.calendar_cache_s > 0:
        _cache[_key(engine, settings)] = _Cached(time.monotonic() + settings.calendar_cache_s, calendar)


async def list_days(engine: AsyncEngine, year: int | None) -> list[CalendarDayRead]:
    """The exceptions of a year (every year when None), in date order."""
    async with engine.connect() as conn:
        return await repository.list_days(conn, year)


async def put_day(engine: AsyncEngine, day: dt.date, data: CalendarDayPut, *, actor: str) -> CalendarDayRead:
    """Make `day` a holiday (any day) or a make-up workday (Saturday or Sunday only: a weekday already is one).

    The source defaults to who made the edit, so a hand-made day is told apart from the shipped notices.
    """
    if data.kind == "workday" and day.weekday() < 5:
        raise InvalidInput(
            f"{day} is a {day:%A}: only a Saturday or Sunday can be made a make-up workday",
            extra={"field": "kind"},
        )
    name = data.name.strip()
    if not name:
        raise InvalidInput("name must not be blank", extra={"field": "name"})
    source = data.source.strip() if data.source and data.source.strip() else f"edited by {actor}"
    async with engine.begin() as conn:
        row = await repository.put_day(conn, day, data.kind, name, source[:200])
    invalidate()
    return row


async def delete_day(engine: AsyncEngine, day: dt.date) -> None:
    """Remove the exception of `day`: it follows the plain week again. 404 when there is none."""
    async with engine.begin() as conn:
        deleted = await repository.delete_day(conn, day)
    if not deleted:
        raise NotFound(f"{day} has no calendar entry: it already follows the plain week")
    invalidate()
