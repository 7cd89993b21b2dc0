"""Patrol fixtures: an engine on the test database, principals of demo users, worker1's grids, a clean slate."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pyproj
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.lib.auth import Principal

GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture(autouse=True)
async def no_patrols(pg: asyncpg.Connection) -> None:
    """Every test starts without patrols (points and check-ins go with them)."""
    await pg.execute("DELETE FROM patrol")


async def principal_of(pg: asyncpg.Connection, username: str) -> Principal:
    """The principal the login would produce for a demo user."""
    row = await pg.fetchrow(
        "SELECT u.id, u.username, u.roles, u.unit_code, u.district_code,"
        " coalesce((SELECT array_agg(dgg.grid_code) FROM duty_grid_worker w"
        "  JOIN duty_grid_grid dgg ON dgg.duty_grid_code = w.duty_grid_code WHERE w.user_id = u.id), '{}') AS grids"
        " FROM app_user u WHERE u.username = $1",
        username,
    )
    assert row is not None, username
    return Principal(
        user_id=row["id"],
        username=row["username"],
        roles=frozenset(row["roles"]),
        unit_code=row["unit_code"],
        district_code=row["district_code"],
        duty_grid_codes=frozenset(row["grids"]),
    )


@pytest.fixture
async def worker1(pg: asyncpg.Connection) -> Principal:
    return await principal_of(pg, "worker1")


@pytest.fixture
async def worker2(pg: asyncpg.Connection) -> Principal:
    return await principal_of(pg, "worker2")


async def two_grids(pg: asyncpg.Connection, username: str = "worker1") -> Any:
    """Two of the worker's unit grids side by side (a shared edge), west then east, with their centres."""
    row = await pg.fetchrow(
        """
        WITH mine AS (
            SELECT g.code, g.geom FROM grid g JOIN duty_grid_grid d ON d.grid_code = g.code
            JOIN duty_grid_worker w ON w.duty_grid_code = d.duty_grid_code JOIN app_user u ON u.id = w.user_id
            WHERE u.username = $1
        )
        SELECT a.code AS a, b.code AS b,
               ST_X(ST_Centroid(a.geom)) AS alon, ST_Y(ST_Centroid(a.geom)) AS alat,
               ST_X(ST_Centroid(b.geom)) AS blon, ST_Y(ST_Centroid(b.geom)) AS blat,
               (SELECT count(*) FROM mine) AS total
        FROM mine a JOIN mine b ON ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 50
        WHERE ST_X(ST_Centroid(b.geom)) > ST_X(ST_Centroid(a.geom)) + 0.0005
          AND abs(ST_Y(ST_Centroid(b.geom)) - ST_Y(ST_Centroid(a.geom))) < 0.0001
        ORDER BY a.code, b.code LIMIT 1
        """,
        username,
    )
    assert row is not None
    return row


def east(lon: float, lat: float, metres: float) -> tuple[float, float]:
    """The point `metres` due east along the geodesic."""
    x, y, _ = GEOD.fwd(lon, lat, 90.0, metres)
    return float(x), float(y)


def ago(minutes: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
