"""GET /api/v1/grids/locate on the demo city: answers, shared edges, crs, and every bad coordinate."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import create_async_engine

from geo.crs import from_wgs84
from tests.conftest import wait_fresh

URL = "/api/v1/grids/locate"


async def _grid(pg: asyncpg.Connection, with_duty: bool = True) -> Any:
    join = "JOIN duty_grid_grid d ON d.grid_code = g.code" if with_duty else ""
    return await pg.fetchrow(
        f"SELECT g.code, g.name, g.community_code, ST_X(ST_PointOnSurface(g.geom)) AS lon,"
        f" ST_Y(ST_PointOnSurface(g.geom)) AS lat FROM grid g {join} ORDER BY g.code LIMIT 1 OFFSET 7"
    )


async def test_locate_answers_grid_community_street_district_and_duty(client: AsyncTestClient, pg) -> None:
    g = await _grid(pg)
    r = await client.get(URL, params={"lon": g["lon"], "lat": g["lat"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grid"] == {"code": g["code"], "name": g["name"]}
    assert body["community"]["code"] == g["community_code"]
    assert body["street"]["code"] == g["code"][:9]
    assert body["district"]["code"] == g["code"][:6] == "420323"
    assert body["district"]["name"] == "竹山县"
    duty = await pg.fetchval("SELECT duty_grid_code FROM duty_grid_grid WHERE grid_code = $1", g["code"])
    assert body["duty_grid"]["code"] == duty
    workers = await pg.fetch(
        "SELECT u.username FROM duty_grid_worker w JOIN app_user u ON u.id = w.user_id"
        " WHERE w.duty_grid_code = $1 ORDER BY 1",
        duty,
    )
    assert [w["username"] for w in body["duty_grid"]["workers"]] == [w["username"] for w in workers]
    assert body["duty_grid"]["workers"], "demo duty grids have workers"


async def test_index_and_database_agree(client: AsyncTestClient, app, settings, pg) -> None:
    from grid_mgmt.regions import repository

    locator = app.state.locator
    rows = await pg.fetch(
        "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT (ST_DumpPoints(geom)).geom AS p FROM grid"
        " ORDER BY code LIMIT 40) x"
    )
    engine = create_async_engine(settings.database_url)
    async with engine.connect() as conn:
        for row in rows:  # vertices: most are shared by 2-4 grids
            from_db = await repository.locate_in_db(conn, row["lon"], row["lat"])
            from_index = locator.lookup(row["lon"], row["lat"])
            assert from_db is not None and isinstance(from_index, bytes)
            assert f'"code":"{from_db.grid.code}"'.encode() in from_index
    await engine.dispose()


async def test_shared_edge_and_vertex_get_the_smallest_code(client: AsyncTestClient, pg) -> None:
    row = await pg.fetchrow(
        "SELECT a.code AS a, b.code AS b, ST_X(ST_PointOnSurface(ST_Intersection(a.geom, b.geom))) AS lon,"
        " ST_Y(ST_PointOnSurface(ST_Intersection(a.geom, b.geom))) AS lat"
        " FROM grid a JOIN grid b ON a.code < b.code AND ST_Touches(a.geom, b.geom)"
        " AND ST_Dimension(ST_Intersection(a.geom, b.geom)) = 1 ORDER BY a.code LIMIT 1"
    )
    for _ in range(3):
        r = await client.get(URL, params={"lon": row["lon"], "lat": row["lat"]})
        assert r.status_code == 200
        owners = await pg.fetch(
            "SELECT code FROM grid WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY 1",
            row["lon"],
            row["lat"],
        )
        assert len(owners) >= 2
        assert r.json()["grid"]["code"] == owners[0]["code"]


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
async def test_locate_converts_phone_coordinates(client: AsyncTestClient, pg, crs: str) -> None:
    g = await _grid(pg)
    lon, lat = from_wgs84(g["lon"], g["lat"], crs)
    assert abs(lon - g["lon"]) > 1e-3  # the offset is hundreds of metres: a wrong conversion would miss
    r = await client.get(URL, params={"lon": lon, "lat": lat, "crs": crs})
    assert r.status_code == 200, r.text
    assert r.json()["grid"]["code"] == g["code"]


async def test_swapped_coordinates_say_so(client: AsyncTestClient, pg) -> None:
    g = await _grid(pg)
    r = await client.get(URL, params={"lon": g["lat"], "lat": g["lon"]})
    assert r.status_code == 422
    assert "longitude and latitude look swapped" in r.json()["detail"]


async def test_outside_every_grid_is_404(client: AsyncTestClient) -> None:
    r = await client.get(URL, params={"lon": 116.39, "lat": 39.9})
    assert r.status_code == 404
    assert "outside" in r.json()["detail"]


@pytest.mark.parametrize(
    ("lon", "lat", "status", "needle"),
    [
        ("nan", "32.2", 422, "finite"),
        ("110.2", "inf", 422, "finite"),
        ("-inf", "32.2", 422, "finite"),
        ("190", "32.2", 422, "longitude"),
        ("110.2", "-91", 422, "latitude"),
        ("abc", "32.2", 400, "lon"),
    ],
)
async def test_bad_coordinates(client: AsyncTestClient, lon: str, lat: str, status: int, needle: str) -> None:
    r = await client.get(URL, params={"lon": lon, "lat": lat})
    assert r.status_code == status, r.text
    assert needle in r.text


async def test_unknown_crs_is_rejected(client: AsyncTestClient, pg) -> None:
    g = await _grid(pg)
    r = await client.get(URL, params={"lon": g["lon"], "lat": g["lat"], "crs": "epsg:3857"})
    assert r.status_code == 400
    assert "crs" in r.text


async def test_missing_parameter_is_400(client: AsyncTestClient) -> None:
    r = await client.get(URL, params={"lon": 110.2})
    assert r.status_code == 400
    assert "lat" in r.text


async def test_index_follows_grid_changes(client: AsyncTestClient, app, pg) -> None:
    """Retire a grid: the next locate must not answer it (index or database), then restore it."""
    g = await _grid(pg, with_duty=False)
    locator = app.state.locator
    assert await wait_fresh(locator)
    await pg.execute(
        "UPDATE grid SET valid_to = CURRENT_DATE - 1, valid_from = CURRENT_DATE - 2 WHERE code = $1", g["code"]
    )
    try:
        # The NOTIFY reaches the process within milliseconds; poll the HTTP answer, not a sleep.
        for _ in range(250):
            r = await client.get(URL, params={"lon": g["lon"], "lat": g["lat"]})
            if r.status_code == 404:
                break
            assert r.status_code == 200, r.text
            if r.json()["grid"]["code"] != g["code"]:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("locate still answers a retired grid after 5 s")
        assert await wait_fresh(locator)
        assert locator.lookup(g["lon"], g["lat"]) is not None
        assert g["code"].encode() not in (locator.lookup(g["lon"], g["lat"]) or b"")
    finally:
        await pg.execute("UPDATE grid SET valid_to = NULL WHERE code = $1", g["code"])
    assert await wait_fresh(locator)
    r = await client.get(URL, params={"lon": g["lon"], "lat": g["lat"]})
    assert r.json()["grid"]["code"] == g["code"]
    assert not math.isnan(g["lon"])


async def test_the_index_lattice_agrees_with_postgis_on_vertices_edges_and_strays(
    client: AsyncTestClient, app, pg
) -> None:
    """The in-process index (a lattice over the grids' boxes + prepared point-in-polygon) against PostGIS for every
    kind of point: shared vertices, points on shared edges, points inside, and points just outside the city."""
    locator = app.state.locator
    assert await wait_fresh(locator)
    rows = await pg.fetch(
        """
        WITH g AS (SELECT code, geom FROM grid WHERE valid_to IS NULL ORDER BY md5(code) LIMIT 150),
        pts AS (
            SELECT (ST_DumpPoints(geom)).geom AS p FROM g
            UNION ALL SELECT ST_LineInterpolatePoint(ST_ExteriorRing(geom), 0.37) FROM g
            UNION ALL SELECT ST_GeometryN(ST_GeneratePoints(geom, 1, 7), 1) FROM g
            UNION ALL SELECT ST_Translate(ST_Centroid(geom), 0.05, 0.05) FROM g
        )
        SELECT ST_X(p) AS lon, ST_Y(p) AS lat,
               (SELECT min(code) FROM grid x WHERE (x.valid_to IS NULL OR x.valid_to >= CURRENT_DATE)
                  AND ST_Intersects(x.geom, p)) AS code,
               (SELECT community_code FROM grid x WHERE x.code = (SELECT min(code) FROM grid y
                  WHERE (y.valid_to IS NULL OR y.valid_to >= CURRENT_DATE) AND ST_Intersects(y.geom, p))) AS community
        FROM pts
        """
    )
    assert len(rows) > 600 and any(r["code"] is None for r in rows) and sum(r["code"] is not None for r in rows) > 500
    for r in rows:
        found = locator.place(r["lon"], r["lat"])
        if r["code"] is None:
            assert found is False, (r["lon"], r["lat"], found)
        else:
            assert not isinstance(found, bool) and found is not None
            assert (found.grid_code, found.community_code) == (r["code"], r["community"]), (r["lon"], r["lat"])
