"""The calendar in the database: the shipped official days, the cached calendar, and the admin API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.settings import Settings
from grid_mgmt.sla.calendar import current_calendar, invalidate, load_calendar
from grid_mgmt.sla.holidays import OFFICIAL_DAYS
from grid_mgmt.sla.worktime import add_working_days
from tests.sla.conftest import DAYS

Headers = Callable[..., Awaitable[dict[str, str]]]

# far from the shipped years and from other tests' cases: 2031-03-05 is a Wednesday, 2031-03-08 a Saturday
WEDNESDAY, SATURDAY = dt.date(2031, 3, 5), dt.date(2031, 3, 8)


@pytest.fixture
async def clean_2031(pg: asyncpg.Connection) -> None:
    await pg.execute("DELETE FROM calendar_day WHERE day >= '2031-01-01' AND day < '2032-01-01'")
    invalidate()


async def test_the_migration_ships_the_official_days_and_load_calendar_sees_them(
    engine: AsyncEngine, settings: Settings, pg: asyncpg.Connection
) -> None:
    rows = await pg.fetch("SELECT day, kind, name, source FROM calendar_day WHERE day < '2028-01-01' ORDER BY day")
    assert [(r["day"], r["kind"], r["name"], r["source"]) for r in rows] == [
        (d.day, d.kind, d.name, d.source) for d in OFFICIAL_DAYS
    ]
    async with engine.connect() as conn:
        cal = await load_calendar(conn, settings)
    assert dt.date(2026, 10, 1) in cal.holidays and dt.date(2026, 10, 10) in cal.workdays
    assert str(cal.tz) == "Asia/Shanghai" and cal.minutes_per_day == 480
    start = dt.datetime(2026, 9, 18, 16, tzinfo=cal.tz)
    assert add_working_days(start, 11, cal) == dt.datetime(2026, 10, 10, 16, tzinfo=cal.tz)


async def test_current_calendar_is_cached_until_invalidated(
    engine: AsyncEngine, settings: Settings, pg: asyncpg.Connection, clean_2031: None
) -> None:
    first = await current_calendar(engine, settings)
    assert WEDNESDAY not in first.holidays
    await pg.execute("INSERT INTO calendar_day (day, kind, name) VALUES ($1, 'holiday', 'test')", WEDNESDAY)
    try:
        assert await current_calendar(engine, settings) is first  # within calendar_cache_s: no reload
        invalidate()
        assert WEDNESDAY in (await current_calendar(engine, settings)).holidays
    finally:
        await pg.execute("DELETE FROM calendar_day WHERE day = $1", WEDNESDAY)
        invalidate()


async def test_anyone_logged_in_reads_the_calendar_of_a_year(
    calendar_client: AsyncTestClient[Litestar], auth_headers: Headers
) -> None:
    assert (await calendar_client.get(DAYS, params={"year": 2026})).status_code == 401
    r = await calendar_client.get(DAYS, params={"year": 2026}, headers=await auth_headers("worker1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "Asia/Shanghai" and body["minutes_per_day"] == 480
    assert body["schedule"] == [{"start": "08:00", "end": "12:00"}, {"start": "14:00", "end": "18:00"}]
    days = {d["day"]: d for d in body["days"]}
    assert len(days) == 33 + 6 and all(d.startswith("2026-") for d in days)
    assert days["2026-10-10"]["kind"] == "workday" and days["2026-02-17"]["name"] == "春节"
    assert "国办发明电〔2025〕7号" in days["2026-02-17"]["source"]
    r = await calendar_client.get(DAYS, params={"year": "next"}, headers=await auth_headers("worker1"))
    assert r.status_code == 400


async def test_admin_puts_and_deletes_days(
    calendar_client: AsyncTestClient[Litestar],
    auth_headers: Headers,
    engine: AsyncEngine,
    settings: Settings,
    pg: asyncpg.Connection,
    clean_2031: None,
) -> None:
    admin = await auth_headers("admin")
    before = await current_calendar(engine, settings)  # cached: the edit must refresh it
    assert SATURDAY not in before.workdays
    r = await calendar_client.put(f"{DAYS}/{SATURDAY}", json={"kind": "workday", "name": "测试调休上班"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "workday" and r.json()["source"] == "edited by admin"
    assert SATURDAY in (await current_calendar(engine, settings)).workdays

    # a holiday on any day, replacing the entry; the source as sent
    r = await calendar_client.put(
        f"{DAYS}/{SATURDAY}", json={"kind": "holiday", "name": "测试节", "source": "a notice"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["kind"] == "holiday"
    row = await pg.fetchrow("SELECT kind, name, source FROM calendar_day WHERE day = $1", SATURDAY)
    assert dict(row) == {"kind": "holiday", "name": "测试节", "source": "a notice"}
    r = await calendar_client.put(f"{DAYS}/{WEDNESDAY}", json={"kind": "holiday", "name": "测试节"}, headers=admin)
    assert r.status_code == 200 and WEDNESDAY in (await current_calendar(engine, settings)).holidays
    listed = await calendar_client.get(DAYS, params={"year": 2031}, headers=admin)
    assert [d["day"] for d in listed.json()["days"]] == [str(WEDNESDAY), str(SATURDAY)]

    assert (await calendar_client.delete(f"{DAYS}/{WEDNESDAY}", headers=admin)).status_code == 204
    assert WEDNESDAY not in (await current_calendar(engine, settings)).holidays
    r = await calendar_client.delete(f"{DAYS}/{WEDNESDAY}", headers=admin)
    assert r.status_code == 404 and "plain week" in r.json()["detail"]
    assert (await calendar_client.delete(f"{DAYS}/{SATURDAY}", headers=admin)).status_code == 204
    assert await pg.fetchval("SELECT count(*) FROM calendar_day WHERE day >= '2031-01-01'") == 0


async def test_a_make_up_workday_on_a_wednesday_is_refused_and_nothing_is_written(
    calendar_client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, clean_2031: None
) -> None:
    r = await calendar_client.put(
        f"{DAYS}/{WEDNESDAY}", json={"kind": "workday", "name": "调休"}, headers=await auth_headers("admin")
    )
    assert r.status_code == 422, r.text
    assert "Wednesday" in r.json()["detail"] and r.json()["extra"] == {"field": "kind"}
    assert await pg.fetchval("SELECT count(*) FROM calendar_day WHERE day = $1", WEDNESDAY) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "weekend", "name": "x"},
        {"kind": "holiday", "name": ""},
        {"kind": "holiday"},
        {"kind": "holiday", "name": "x" * 61},
    ],
)
async def test_a_bad_body_is_refused(
    calendar_client: AsyncTestClient[Litestar],
    auth_headers: Headers,
    pg: asyncpg.Connection,
    clean_2031: None,
    body: dict[str, str],
) -> None:
    r = await calendar_client.put(f"{DAYS}/{SATURDAY}", json=body, headers=await auth_headers("admin"))
    assert r.status_code == 400, r.text
    assert await pg.fetchval("SELECT count(*) FROM calendar_day WHERE day = $1", SATURDAY) == 0


@pytest.mark.parametrize("day", ["2026-13-01", "2026-02-30", "tomorrow"])
async def test_a_bad_date_in_the_path_is_a_clear_error(
    calendar_client: AsyncTestClient[Litestar], auth_headers: Headers, day: str
) -> None:
    admin = await auth_headers("admin")
    for method in ("PUT", "DELETE"):
        r = await calendar_client.request(method, f"{DAYS}/{day}", json={"kind": "holiday", "name": "x"}, headers=admin)
        assert r.status_code in (400, 422), (method, day, r.status_code, r.text)
        assert "day" in r.json()["detail"] or "date" in r.json()["detail"].lower(), r.text


async def test_only_admins_edit(
    calendar_client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, clean_2031: None
) -> None:
    for username in ("worker1", "dispatcher1", "supervisor1"):
        headers = await auth_headers(username)
        r = await calendar_client.put(f"{DAYS}/{SATURDAY}", json={"kind": "workday", "name": "x"}, headers=headers)
        assert r.status_code == 403, (username, r.text)
        assert (await calendar_client.delete(f"{DAYS}/2026-10-10", headers=headers)).status_code == 403
    assert (await calendar_client.put(f"{DAYS}/{SATURDAY}", json={"kind": "workday", "name": "x"})).status_code == 401
    assert await pg.fetchval("SELECT count(*) FROM calendar_day WHERE day IN ($1, '2026-10-10')", SATURDAY) == 1
