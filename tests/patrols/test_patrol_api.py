"""The patrol endpoints over HTTP: roles, status codes, per-item results, the GeoJSON track, check-ins, lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from geo.crs import wgs84_to_gcj02
from geo.measure import distance_m
from tests.patrols.conftest import ago, east, two_grids

URL = "/api/v1/patrols"
Headers = Callable[..., Awaitable[dict[str, str]]]


def iso(value: dt.datetime) -> str:
    return value.isoformat()


async def _start(client: AsyncTestClient[Any], who: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post(URL, json=body or None, headers=who)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_start_needs_a_worker_and_only_one_open(client: AsyncTestClient[Any], auth_headers: Headers) -> None:
    W1, W2 = await auth_headers("worker1"), await auth_headers("worker2")
    assert (await client.post(URL)).status_code == 401
    r = await client.post(URL, headers=await auth_headers("dispatcher1"))
    assert r.status_code == 403 and "worker" in r.json()["detail"]
    p = await _start(client, W1)
    assert p["open"] and p["ended_at"] is None and p["username"] == "worker1"
    r = await client.post(URL, headers=W1)
    assert r.status_code == 409
    assert r.json()["extra"]["patrol_id"] == p["id"] and str(p["id"]) in r.json()["detail"]
    r = await client.post(f"{URL}/{p['id']}/end", headers=W2)
    assert r.status_code == 403
    r = await client.post(f"{URL}/{p['id']}/end", headers=W1)
    assert r.status_code == 200 and r.json()["ended_at"] is not None and not r.json()["open"]
    r = await client.post(f"{URL}/{p['id']}/points", json={"points": []}, headers=W1)
    assert r.status_code == 409 and "ended" in r.json()["detail"]
    assert (await client.post(URL, json={"started_at": iso(ago(30))}, headers=W1)).status_code == 201


async def test_points_walk_with_skips_and_the_track(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, auth_headers: Headers
) -> None:
    W1, W2 = await auth_headers("worker1"), await auth_headers("worker2")
    g = await two_grids(pg)
    p = await _start(client, W1, started_at=iso(ago(60)))
    a = (g["alon"], g["alat"])
    b, c = east(*a, 100), east(*a, 200)
    gcj = wgs84_to_gcj02(*b)
    t = [ago(50), ago(49), ago(48)]
    body = {
        "points": [
            {"at": iso(t[2]), "lon": c[0], "lat": c[1], "accuracy_m": 5.0, "speed_mps": 1.3},
            {"at": iso(t[0]), "lon": a[0], "lat": a[1]},
            {"at": iso(t[1]), "lon": gcj[0], "lat": gcj[1], "crs": "gcj02"},
            {"at": iso(ago(47)), "lon": a[0], "lat": 91.0},
            {"at": iso(ago(-30)), "lon": a[0], "lat": a[1]},
            {"at": iso(ago(46)), "lon": a[0], "lat": a[1], "accuracy_m": 250},
            {"at": iso(ago(48) + dt.timedelta(seconds=20)), "lon": east(*c, 4000)[0], "lat": c[1]},
        ]
    }
    r = await client.post(f"{URL}/{p['id']}/points", json=body, headers=W1)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["duplicates"], out["skipped"]) == (3, 0, 4)
    assert [(s["index"], s["reason"]) for s in out["skipped_points"]] == [
        (3, "invalid_coordinates"),
        (4, "future"),
        (5, "inaccurate"),
        (6, "implausible_speed"),
    ]
    assert all(s["detail"] for s in out["skipped_points"])
    assert abs(out["distance_m"] - 200) <= 2 and out["point_count"] == 3
    assert out["grids_visited"] and out["share_visited"] > 0
    again = (await client.post(f"{URL}/{p['id']}/points", json=body, headers=W1)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3) and again["distance_m"] == out["distance_m"]

    track = (await client.get(f"{URL}/{p['id']}/track", headers=W1)).json()
    assert track["type"] == "Feature" and track["id"] == str(p["id"])
    assert track["geometry"]["type"] == "LineString"
    coords = track["geometry"]["coordinates"]
    assert [dt.datetime.fromisoformat(s) for s in track["properties"]["times"]] == t
    for got, want in zip(coords, [a, b, c], strict=True):
        assert distance_m(*got, *want) < 0.01
    assert abs(track["properties"]["distance_m"] - 200) <= 2
    in_gcj = (await client.get(f"{URL}/{p['id']}/track", params={"crs": "gcj02"}, headers=W1)).json()
    assert distance_m(*in_gcj["geometry"]["coordinates"][1], *gcj) < 0.01

    one = (await client.get(f"{URL}/{p['id']}", headers=W1)).json()
    assert one["point_count"] == 3 and one["distance_m"] == out["distance_m"]
    assert (await client.get(f"{URL}/{p['id']}", headers=W2)).status_code == 403
    assert (await client.get(f"{URL}/{p['id']}/track", headers=await auth_headers("supervisor1"))).status_code == 200
    assert (await client.get(f"{URL}/{p['id']}", headers=await auth_headers("dispatcher1"))).status_code == 403
    assert (await client.get(f"{URL}/999999999", headers=W1)).status_code == 404


async def test_upload_rules(client: AsyncTestClient[Any], pg: asyncpg.Connection, auth_headers: Headers) -> None:
    W1, W2 = await auth_headers("worker1"), await auth_headers("worker2")
    g = await two_grids(pg)
    p = await _start(client, W1, started_at=iso(ago(60)))
    point = {"at": iso(ago(50)), "lon": g["alon"], "lat": g["alat"]}
    r = await client.post(f"{URL}/{p['id']}/points", json={"points": [point]}, headers=W2)
    assert r.status_code == 403 and "another worker" in r.json()["detail"]
    big = {"points": [dict(point, at=iso(ago(50) + dt.timedelta(seconds=i))) for i in range(1001)]}
    r = await client.post(f"{URL}/{p['id']}/points", json=big, headers=W1)
    assert r.status_code == 422
    assert "at most 1000 points; got 1001" in r.json()["detail"]
    r = await client.post(
        f"{URL}/{p['id']}/points", json={"points": [dict(point, at="2025-01-01T08:00:00")]}, headers=W1
    )
    assert r.status_code == 400 and "timezone" in r.text
    r = await client.post(f"{URL}/{p['id']}/points", json={"points": [dict(point, crs="utm")]}, headers=W1)
    assert r.status_code == 400
    assert await pg.fetchval("SELECT count(*) FROM patrol_point") == 0


async def test_checkins(client: AsyncTestClient[Any], pg: asyncpg.Connection, auth_headers: Headers) -> None:
    W1, W2 = await auth_headers("worker1"), await auth_headers("worker2")
    g = await two_grids(pg)
    p = await _start(client, W1, started_at=iso(ago(60)))
    url = f"{URL}/{p['id']}/checkins"
    gcj = wgs84_to_gcj02(g["alon"], g["alat"])
    body = {"at": iso(ago(40)), "lon": gcj[0], "lat": gcj[1], "crs": "gcj02", "note": "路灯正常"}
    r = await client.post(url, json=body, headers=W1)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["grid_code"] == g["a"] and first["note"] == "路灯正常"
    assert distance_m(first["lon"], first["lat"], g["alon"], g["alat"]) < 0.01
    replay = await client.post(url, json=body, headers=W1)
    assert replay.status_code == 200 and replay.json()["id"] == first["id"]
    # on the edge shared by A and B: the smallest code
    edge = await pg.fetchrow(
        "SELECT ST_X(c) AS lon, ST_Y(c) AS lat FROM (SELECT ST_Centroid(ST_Intersection(a.geom, b.geom)) AS c"
        " FROM grid a, grid b WHERE a.code = $1 AND b.code = $2) x",
        g["a"],
        g["b"],
    )
    r = await client.post(url, json={"at": iso(ago(39)), "lon": edge["lon"], "lat": edge["lat"]}, headers=W1)
    assert r.status_code == 201 and r.json()["grid_code"] == min(g["a"], g["b"])
    # inside the area's buffer but outside every unit grid
    west = await pg.fetchrow(
        "SELECT ST_XMin(geom) - 0.005 AS lon, ST_Y(ST_Centroid(geom)) AS lat FROM region WHERE level = 'district'"
    )
    r = await client.post(url, json={"at": iso(ago(38)), "lon": west["lon"], "lat": west["lat"]}, headers=W1)
    assert r.status_code == 201 and r.json()["grid_code"] is None
    r = await client.post(url, json={"at": iso(ago(37)), "lon": 0.0, "lat": 0.0}, headers=W1)
    assert r.status_code == 422 and "outside" in r.json()["detail"]
    r = await client.post(url, json={"at": iso(ago(37)), "lon": g["alon"], "lat": 93.0}, headers=W1)
    assert r.status_code == 422
    assert (await client.post(url, json=dict(body, at=iso(ago(36))), headers=W2)).status_code == 403
    listed = (await client.get(url, headers=await auth_headers("supervisor1"))).json()
    assert listed[0]["id"] == first["id"] and len(listed) == 3
    assert (await client.get(f"{URL}/{p['id']}", headers=W1)).json()["checkin_count"] == 3
    await client.post(f"{URL}/{p['id']}/end", headers=W1)
    r = await client.post(url, json=dict(body, at=iso(ago(1))), headers=W1)
    assert r.status_code == 409
    assert (await client.post(url, json=body, headers=W1)).json()["id"] == first["id"]  # a late retry


async def test_lists_by_role_with_filters_and_pages(client: AsyncTestClient[Any], auth_headers: Headers) -> None:
    W1 = await auth_headers("worker1")
    ids = {}
    for who in ("worker1", "worker2"):
        old = await _start(client, await auth_headers(who), started_at=iso(ago(300)))
        await client.post(f"{URL}/{old['id']}/end", json={"ended_at": iso(ago(200))}, headers=await auth_headers(who))
        ids[who] = [old["id"], (await _start(client, await auth_headers(who), started_at=iso(ago(30))))["id"]]

    mine = (await client.get(URL, headers=W1)).json()
    assert [p["id"] for p in mine["items"]] == ids["worker1"][::-1] and mine["next_cursor"] is None
    assert (await client.get(URL, params={"user": "worker2"}, headers=W1)).status_code == 403
    assert (await client.get(URL, headers=await auth_headers("dispatcher1"))).status_code == 403

    sup = await auth_headers("supervisor1")
    everyone = (await client.get(URL, headers=sup)).json()["items"]
    assert sorted(p["id"] for p in everyone) == sorted(ids["worker1"] + ids["worker2"])
    w2 = (await client.get(URL, params={"user": "worker2"}, headers=sup)).json()["items"]
    assert [p["id"] for p in w2] == ids["worker2"][::-1]
    recent = (await client.get(URL, params={"since": iso(ago(60))}, headers=sup)).json()["items"]
    assert sorted(p["id"] for p in recent) == sorted([ids["worker1"][1], ids["worker2"][1]])
    older = (await client.get(URL, params={"until": iso(ago(60))}, headers=await auth_headers("admin"))).json()["items"]
    assert sorted(p["id"] for p in older) == sorted([ids["worker1"][0], ids["worker2"][0]])
    still_open = (await client.get(URL, params={"open": "true"}, headers=sup)).json()["items"]
    assert all(p["open"] for p in still_open) and len(still_open) == 2

    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(URL, params=params, headers=await auth_headers("leader1"))).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 4
    assert (await client.get(URL, params={"cursor": "!!"}, headers=sup)).status_code == 422
    assert (await client.get(URL, params={"limit": 0}, headers=sup)).status_code == 422
