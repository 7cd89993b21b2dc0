"""SQL of the working calendar: the `calendar_day` exceptions to the plain week."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from grid_mgmt.lib.sql import text
from grid_mgmt.sla.schemas import CalendarDayRead

_COLUMNS = "day, kind, name, source, updated_at"


def _day(row: Any) -> CalendarDayRead:
    return CalendarDayRead(day=row.day, kind=row.kind, name=row.name, source=row.source, updated_at=row.updated_at)


async def exceptions(conn: AsyncConnection) -> list[tuple[dt.date, str]]:
    """(day, kind) of every exception: what a `Calendar` is built from."""
    rows = (await conn.execute(text("SELECT day, kind FROM calendar_day"))).all()
    return [(r.day, r.kind) for r in rows]


async def list_days(conn: AsyncConnection, year: int | None = None) -> list[CalendarDayRead]:
    """The exceptions of a year (every year when None), in date order."""
    if year is None:
        sql, params = f"SELECT {_COLUMNS} FROM calendar_day ORDER BY day", {}
    else:
        sql = f"SELECT {_COLUMNS} FROM calendar_day WHERE day >= :first AND day < :next ORDER BY day"
        params = {"first": dt.date(year, 1, 1), "next": dt.date(year + 1, 1, 1)}
    return [_day(r) for r in (await conn.execute(text(sql), params)).all()]


async def put_day(conn: AsyncConnection, day: dt.date, kind: str, name: str, source: str | None) -> CalendarDayRead:
    """Insert or replace the exception of a day."""
    sql = text(f"""
        INSERT INTO calendar_day (day, kind, name, source) VALUES (:day, :kind, :name, :source)
        ON CONFLICT (day) DO UPDATE
        SET kind = EXCLUDED.kind, name = EXCLUDED.name, source = EXCLUDED.source, updated_at = now()
        RETURNING {_COLUMNS}
    """)
    row = (await conn.execute(sql, {"day": day, "kind": kind, "name": name, "source": source})).one()
    return _day(row)


async def delete_day(conn: AsyncConnection, day: dt.date) -> bool:
    """Remove the exception of a day (it follows the plain week again); False when there was none."""
    result = await conn.execute(text("DELETE FROM calendar_day WHERE day = :day RETURNING day"), {"day": day})
    return result.first() is not None
