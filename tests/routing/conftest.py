"""Reporting over HTTP at chosen places of the demo city, for routing tests."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient


async def spot(pg: asyncpg.Connection, n: int) -> tuple[float, float]:
    """A point inside the n-th unit grid (by code); tests use far-apart n so their reports never meet."""
    row = await pg.fetchrow(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid"
        " ORDER BY code OFFSET $1 LIMIT 1) s",
        n,
    )
    return float(row["lon"]), float(row["lat"])


async def file_report(
    client: AsyncTestClient[Litestar], headers: dict[str, str], category: str, lon: float, lat: float, **kw: Any
) -> dict[str, Any]:
    body = {"category_code": category, "urgency": "normal", "description": "测试上报", "lon": lon, "lat": lat, **kw}
    r = await client.post("/api/v1/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def case_row(pg: asyncpg.Connection, case_id: int) -> asyncpg.Record:
    row = await pg.fetchrow("SELECT * FROM cases WHERE id = $1", case_id)
    assert row is not None
    return row
