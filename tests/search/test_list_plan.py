"""The list statements use indexes: EXPLAIN on a table with a few thousand synthetic cases (rolled back).

The synthetic rows and the statistics ANALYZE gathers for them live in one transaction that is rolled back, so
the rest of the session sees neither.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases import search_repository as repo
from grid_mgmt.lib.auth import Principal
from grid_mgmt.lib.sql import statement_of
from grid_mgmt.settings import Settings
from tests.conftest import principal_of

SYNTHETIC = """
INSERT INTO cases (case_no, source, category_code, description, geom, grid_code, community_code, street_code,
                   district_code, unit_code, received_at, status, deadline, closed_at, updated_at)
SELECT 'P' || lpad(i::text, 10, '0'), 'worker', cat.code, 'synthetic ' || i, g.pt, g.code, g.community_code,
       left(g.community_code, 9), '420323', NULL, ts, st,
       CASE WHEN st <> 'closed' THEN ts + interval '2 days' END,
       CASE WHEN st = 'closed' THEN ts + interval '1 day' END, ts
FROM (SELECT i, now() - i * interval '10 minutes' AS ts,
             CASE WHEN i % 50 = 0 THEN 'registered' WHEN i % 50 = 1 THEN 'dispatched' WHEN i % 50 = 2 THEN 'reported'
                  ELSE 'closed' END AS st
      FROM generate_series(1, :n) i) s
JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS k FROM category) cat
  ON cat.k = s.i % (SELECT count(*) FROM category)
JOIN (SELECT code, community_code, ST_PointOnSurface(geom) AS pt, row_number() OVER (ORDER BY code) - 1 AS k
      FROM grid) g ON g.k = (s.i::bigint * 7919) % (SELECT count(*) FROM grid)
"""


@pytest.fixture(scope="module")
async def analysed(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, tuple[float, ...]]]:
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            await conn.execute(text(SYNTHETIC), {"n": 5000})
            await conn.execute(text("ANALYZE cases"))
            extent = (
                await conn.execute(
                    text(
                        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
                        " FROM (SELECT ST_Extent(geom)::geometry AS e FROM grid) x"
                    )
                )
            ).one()
            await repo.tune(conn, Settings().list_timeout_ms)  # the default list timeout
            yield conn, tuple(extent)
        finally:
            await trans.rollback()


async def plan_of(conn: AsyncConnection, pg: asyncpg.Connection, username: str, flt: repo.CaseFilter, sort: str) -> str:
    principal = await principal_of(pg, username)
    sql, params = repo.list_sql(repo.PageRequest(flt, principal, repo.SORTS[sort], None, 50))
    return await repo.explain(conn, sql, params)


def quarter(extent: tuple[float, ...]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = extent
    return (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)


async def test_status_and_bbox_list_uses_an_index(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, extent = analysed
    flt = repo.CaseFilter(statuses=("registered",), bbox=quarter(extent))
    plan = await plan_of(conn, pg, "dispatcher1", flt, "-received_at")
    assert "Seq Scan on cases" not in plan, plan
    assert "ix_cases_geom_registered" in plan or "ix_cases_status_received" in plan, plan


async def test_several_statuses_read_the_status_index_per_status(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, extent = analysed
    flt = repo.CaseFilter(statuses=("registered", "dispatched", "reported"), bbox=quarter(extent))
    plan = await plan_of(conn, pg, "dispatcher1", flt, "-received_at")
    assert "Seq Scan on cases" not in plan, plan
    used = ("ix_cases_geom_", "ix_cases_status_received")
    assert sum(plan.count(index) for index in used) >= 3, plan


def small_box(extent: tuple[float, ...]) -> tuple[float, float, float, float]:
    """About 1 km × 1 km in the middle of the city."""
    x, y = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    return (x - 0.005, y - 0.0045, x + 0.005, y + 0.0045)


async def test_a_small_box_reads_the_gist_index_of_its_status(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, extent = analysed
    flt = repo.CaseFilter(statuses=("registered",), bbox=small_box(extent))
    plan = await plan_of(conn, pg, "dispatcher1", flt, "-received_at")
    assert "ix_cases_geom_registered" in plan and "Seq Scan on cases" not in plan, plan


@pytest.mark.parametrize("sort", ["deadline", "-updated_at", "-received_at"])
async def test_a_box_without_a_status_reads_each_status_s_gist_index(
    analysed: tuple, pg: asyncpg.Connection, sort: str
) -> None:
    """In any order: a branch per status, each over its own index (ended statuses share one)."""
    conn, extent = analysed
    plan = await plan_of(conn, pg, "supervisor1", repo.CaseFilter(bbox=small_box(extent)), sort)
    assert "Seq Scan on cases" not in plan, plan
    for status in ("closed", "registered", "verifying", "ended"):
        assert f"ix_cases_geom_{status}" in plan, plan


async def test_no_filter_newest_first_reads_indexes_not_the_table(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, _ = analysed
    plan = await plan_of(conn, pg, "supervisor1", repo.CaseFilter(), "-received_at")
    assert "Seq Scan on cases" not in plan, plan


async def test_overdue_by_deadline_uses_the_partial_deadline_index(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, _ = analysed
    plan = await plan_of(conn, pg, "dispatcher1", repo.CaseFilter(overdue=True), "deadline")
    assert "ix_cases_deadline_open" in plan, plan


async def test_updated_at_order_uses_its_index(analysed: tuple, pg: asyncpg.Connection) -> None:
    conn, _ = analysed
    plan = await plan_of(conn, pg, "supervisor1", repo.CaseFilter(), "updated_at")
    assert "ix_cases_updated" in plan, plan


@pytest.mark.parametrize("statuses", [(), ("registered", "dispatched")])
@pytest.mark.parametrize("shape", ["bbox", "radius"])
async def test_open311_places_read_the_gist_indexes_of_statuses(
    analysed: tuple, pg: asyncpg.Connection, statuses: tuple[str, ...], shape: str
) -> None:
    """Open311's box or circle, with or without a status: a bitmap scan of each status's geom index, not a walk of
    the received_at index (`status = ANY(…)` named none of them: 291 ms against 3 ms at 1,000,000 cases)."""
    from grid_mgmt.open311 import repository as o311
    from grid_mgmt.open311.rules import RequestQuery

    conn, extent = analysed
    box = small_box(extent)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    where = {"bbox": box} if shape == "bbox" else {"where": centre, "radius_m": 500.0}
    codes = [r[0] for r in await pg.fetch("SELECT code FROM category WHERE public ORDER BY code")]
    sql, args = o311.requests_sql(RequestQuery(statuses=statuses, page_size=50, **where), codes)  # type: ignore[arg-type]
    raw = await (await conn.get_raw_connection()).driver_connection.fetch("EXPLAIN " + sql, *args)
    plan = "\n".join(r[0] for r in raw)
    assert "Seq Scan on cases" not in plan and "ix_cases_received" not in plan, plan
    for status in statuses or ("registered", "closed", "verifying", "ended"):
        assert f"ix_cases_geom_{status}" in plan, plan


# ---- generic plans (the list pool of `ListPools.generic`) ----------------------------------------------------


def _literal(value: object) -> str:
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'::timestamptz"
    return repr(value)


async def generic_plan_of(
    conn: AsyncConnection, pg: asyncpg.Connection, username: str, flt: repo.CaseFilter, sort: str,
    after: repo.Position | None = None,
) -> str:  # fmt: skip
    """The plan PostgreSQL keeps for the refs statement of a page under force_generic_plan (PREPARE, EXPLAIN
    EXECUTE: the plan built without the values)."""
    principal = await principal_of(pg, username)
    order = repo.SORTS[sort]
    sql, params = repo.list_sql(repo.PageRequest(flt, principal, order, after, 50), repo.refs_select(order))
    stmt = statement_of(sql)
    args = ", ".join(_literal(a) for a in stmt.args(params))
    async with conn.begin_nested():  # a failure here leaves the module's transaction usable
        await conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await conn.exec_driver_sql(f"PREPARE generic_page AS {stmt.positional}")
        rows = (await conn.exec_driver_sql(f"EXPLAIN EXECUTE generic_page({args})")).all()
        await conn.exec_driver_sql("DEALLOCATE generic_page")
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return "\n".join(str(r[0]) for r in rows)


GENERIC_SHAPES = {
    "status": repo.CaseFilter(statuses=("registered",)),
    "statuses": repo.CaseFilter(statuses=("registered", "dispatched", "reported")),
    "classes, kind, urgency": repo.CaseFilter(
        statuses=("dispatched",), category_codes=("C0101", "E0101"), kind="event", urgencies=("urgent",)
    ),
}


@pytest.mark.parametrize("shape", list(GENERIC_SHAPES))
@pytest.mark.parametrize("sort", ["-received_at", "deadline", "updated_at"])
@pytest.mark.parametrize("username", ["dispatcher1", "supervisor1"])
async def test_every_shape_fit_for_generic_plans_reads_the_gist_index_of_each_status(
    analysed: tuple, pg: asyncpg.Connection, shape: str, sort: str, username: str
) -> None:
    conn, extent = analysed
    flt = dataclasses.replace(GENERIC_SHAPES[shape], bbox=small_box(extent))
    assert repo.generic_plan_fits(flt, await principal_of(pg, username))
    for after in (None, repo.Position(key=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), id=10**9)):
        plan = await generic_plan_of(conn, pg, username, flt, sort, after)
        assert "Seq Scan" not in plan, plan
        for status in flt.statuses:
            assert f"ix_cases_geom_{status}" in plan, plan
        assert plan.count("Index Scan") + plan.count("Bitmap Index Scan") == len(flt.statuses), plan


def test_what_is_planned_with_its_values() -> None:
    """Other filters, large boxes, ended statuses and the scopes other indexes serve stay with custom plans."""
    box = (110.0, 32.0, 110.01, 32.01)
    centre = Principal(user_id=1, username="d", roles=frozenset({"dispatcher"}), district_code="420323")
    fits = repo.CaseFilter(statuses=("registered",), bbox=box)
    assert repo.generic_plan_fits(fits, centre)
    unfit = {
        "no box": dataclasses.replace(fits, bbox=None),
        "no status": dataclasses.replace(fits, statuses=()),
        "a closed status": dataclasses.replace(fits, statuses=("registered", "closed")),
        "a cancelled status": dataclasses.replace(fits, statuses=("cancelled",)),
        "a wide box": dataclasses.replace(fits, bbox=(110.0, 32.0, 110.06, 32.01)),
        "a high box": dataclasses.replace(fits, bbox=(110.0, 32.0, 110.01, 32.06)),
        "a unit": dataclasses.replace(fits, unit_codes=("U01",)),
        "a region": dataclasses.replace(fits, region="420323"),
        "a grid": dataclasses.replace(fits, grid_code="420323100001"),
        "a reporter": dataclasses.replace(fits, reporter_id=3),
        "overdue": dataclasses.replace(fits, overdue=True),
        "a time range": dataclasses.replace(fits, received_from=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        "a text": dataclasses.replace(fits, q="井盖"),
    }
    for name, flt in unfit.items():
        assert not repo.generic_plan_fits(flt, centre), name
    for roles in ({"worker"}, {"unit_staff"}, {"dispatcher", "worker"}):
        assert not repo.generic_plan_fits(fits, dataclasses.replace(centre, roles=frozenset(roles))), roles
    assert repo.generic_plan_fits(fits, dataclasses.replace(centre, roles=frozenset({"supervisor"})))
