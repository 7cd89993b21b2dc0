"""The read API for the city's layers: GeoJSON shape, pages, bbox, filters and bad parameters."""

from __future__ import annotations

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

LAYERS = {
    "regions": ("region", {"MultiPolygon"}),
    "grids": ("grid", {"Polygon"}),
    "components": ("component", {"Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString"}),
    "pipelines": ("pipeline", {"LineString"}),
}


@pytest.mark.parametrize("layer", list(LAYERS))
async def test_layer_is_a_feature_collection_with_code_in_properties(
    client: AsyncTestClient, pg: asyncpg.Connection, layer: str
) -> None:
    table, types = LAYERS[layer]
    r = await client.get(f"/api/v1/{layer}", params={"limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) == 5
    first_codes = await pg.fetch(f"SELECT code FROM {table} ORDER BY code LIMIT 5")
    assert [f["id"] for f in body["features"]] == [row["code"] for row in first_codes]
    for f in body["features"]:
        assert f["type"] == "Feature"
        assert f["properties"]["code"] == f["id"]
        assert f["geometry"]["type"] in types
    one = await client.get(f"/api/v1/{layer}/{body['features'][0]['id']}")
    assert one.status_code == 200
    assert one.json()["properties"] == body["features"][0]["properties"]


async def test_pages_walk_every_grid_once(client: AsyncTestClient, pg: asyncpg.Connection) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 700, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/v1/grids", params=params)).json()
        seen.extend(f["id"] for f in body["features"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == await pg.fetchval("SELECT count(*) FROM grid")


async def test_bbox_returns_exactly_what_intersects(client: AsyncTestClient, pg: asyncpg.Connection) -> None:
    box = await pg.fetchrow(
        "SELECT ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1 FROM"
        " (SELECT ST_Extent(geom)::geometry AS e FROM grid) x"
    )
    x0, y0 = box["x0"], box["y0"]
    x1, y1 = x0 + (box["x1"] - x0) / 5, y0 + (box["y1"] - y0) / 5
    r = await client.get("/api/v1/components", params={"bbox": f"{x0},{y0},{x1},{y1}", "limit": 1000})
    got = sorted(f["id"] for f in r.json()["features"])
    want = await pg.fetch(
        "SELECT code FROM component WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326)) ORDER BY code",
        x0,
        y0,
        x1,
        y1,
    )
    assert 0 < len(got) < 1000
    assert got == [w["code"] for w in want]


async def test_attribute_filters(client: AsyncTestClient, pg: asyncpg.Connection) -> None:
    community = await pg.fetchval("SELECT code FROM region WHERE level = 'community' ORDER BY code LIMIT 1")
    r = await client.get("/api/v1/grids", params={"community_code": community, "limit": 1000})
    codes = [f["id"] for f in r.json()["features"]]
    assert codes and all(c.startswith(community) for c in codes)
    assert len(codes) == await pg.fetchval("SELECT count(*) FROM grid WHERE community_code = $1", community)

    r = await client.get("/api/v1/components", params={"category_code": "C0101", "limit": 50})
    feats = r.json()["features"]
    assert feats and all(f["properties"]["category_code"] == "C0101" and f["id"][6:10] == "0101" for f in feats)

    r = await client.get("/api/v1/regions", params={"level": "street"})
    streets = r.json()["features"]
    assert streets and all(len(f["id"]) == 9 and f["properties"]["parent_code"] == "420323" for f in streets)

    r = await client.get("/api/v1/pipelines", params={"kind": "gas", "limit": 20})
    assert all(f["properties"]["kind"] == "gas" for f in r.json()["features"])

    r = await client.get("/api/v1/units", params={"level": 3})
    units = r.json()["features"]
    assert units and all(u["properties"]["level"] == 3 and u["properties"]["parent_code"] for u in units)


async def test_categories_carry_time_limits(client: AsyncTestClient) -> None:
    r = await client.get("/api/v1/categories", params={"kind": "event", "limit": 1000})
    items = r.json()["items"]
    assert items and all(i["kind"] == "event" and i["code"].startswith("E") for i in items)
    for item in items:
        assert set(item["time_limits"]) == {"verify", "register", "dispatch", "handle", "check"}
        for per_urgency in item["time_limits"].values():
            assert set(per_urgency) == {"urgent", "fairly_urgent", "normal"}
    one = await client.get("/api/v1/categories/C0101")
    assert one.status_code == 200 and one.json()["minor_code"] == "0101"


@pytest.mark.parametrize("layer", ["regions", "grids", "components", "pipelines", "units", "categories"])
async def test_unknown_code_is_404(client: AsyncTestClient, layer: str) -> None:
    r = await client.get(f"/api/v1/{layer}/NOPE999")
    assert r.status_code == 404
    assert "NOPE999" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"limit": 1001}, 422, "limit must be between 1 and 1000"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": "many"}, 400, "limit"),
        ({"bbox": "110.3,32.2,110.2,32.3"}, 422, "greater than max longitude"),
        ({"bbox": "110.2,32.3,110.3,32.2"}, 422, "latitude"),
        ({"bbox": "60,10,130,50"}, 422, "spans"),
        ({"bbox": "110.2,32.2,110.3"}, 422, "bbox"),
        ({"bbox": "110.2,nan,110.3,32.3"}, 422, "bbox"),
        ({"bbox": "110.2,32.2,200,32.3"}, 422, "bbox"),
        ({"cursor": "!!not-a-cursor!!"}, 422, "cursor"),
        ({"status": "exploded"}, 400, "status"),
    ],
)
async def test_bad_list_parameters(client: AsyncTestClient, params: dict, status: int, needle: str) -> None:
    r = await client.get("/api/v1/components", params=params)
    assert r.status_code == status, r.text
    assert needle in r.text
