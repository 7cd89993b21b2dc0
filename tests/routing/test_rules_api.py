"""The routing rules API: admins manage, the centre reads, bad rules get a 422 that names the problem."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.routing.conftest import case_row, file_report, spot

Headers = Callable[..., Awaitable[dict[str, str]]]
RULES = "/api/v1/routing/rules"


async def _square(pg: asyncpg.Connection, n: int, half: float = 0.0003) -> tuple[dict[str, Any], float, float]:
    lon, lat = await spot(pg, n)
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
            [lon - half, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}, lon, lat


async def test_a_drawn_area_rule_beats_the_street_rule_and_can_be_switched_off(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    admin = await auth_headers("admin")
    area, lon, lat = await _square(pg, 1901)
    r = await client.post(RULES, json={"name": "夜市 E0102 → 环卫一队", "category_code": "E0102", "area": area,
                                       "unit_code": "U010101", "auto_dispatch": True}, headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["area"]["type"] == "MultiPolygon" and rule["unit_code"] == "U010101"
    case = await file_report(client, await auth_headers("worker1"), "E0102", lon, lat)
    await drain()
    row = await case_row(pg, case["id"])
    assert row["unit_code"] == "U010101" and row["status"] == "dispatched"
    assert f'"rule_id": {rule["id"]}' in row["routing"]
    r = await client.patch(f"{RULES}/{rule['id']}", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    r = await client.get(f"/api/v1/cases/{case['id']}/routing", headers=await auth_headers("dispatcher1"))
    assert all(c["reason"].get("rule_id") != rule["id"] for c in r.json()["candidates"])
    assert (await client.delete(f"{RULES}/{rule['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"{RULES}/{rule['id']}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "x", "unit_code": "NOPE"}, 422, "no active handling unit 'NOPE'"),
        ({"name": "x", "unit_code": "U01", "category_code": "E9999"}, 422, "unknown class 'E9999'"),
        ({"name": "x", "unit_code": "U01", "category_code": "E0102", "major_code": "E01"}, 422, "not both"),
        ({"name": "x", "unit_code": "U01", "major_code": "01"}, 400, "major_code"),
        ({"name": "x", "unit_code": "U01", "major_code": "C99"}, 422, "no class has the major code"),
        ({"name": "x", "unit_code": "U01", "region_code": "420323999"}, 422, "unknown region"),
        ({"name": "x", "unit_code": "U01", "priority": 10**6}, 400, "priority"),
        ({"name": "", "unit_code": "U01"}, 400, "name"),
        ({"name": "x", "unit_code": "U01", "colour": "red"}, 400, "colour"),
        (
            {
                "name": "x",
                "unit_code": "U01",
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[110, 32], [110.01, 32.01], [110.01, 32], [110, 32.01], [110, 32]]],
                },
            },
            422,
            "Self-intersection",
        ),
        (
            {
                "name": "x",
                "unit_code": "U01",
                "area": {"type": "Polygon", "coordinates": [[[110, 32], [110, 32], [110, 32], [110, 32]]]},
            },
            422,
            "invalid",
        ),
        (
            {
                "name": "x",
                "unit_code": "U01",
                "area": {"type": "Polygon", "coordinates": [[[200, 32], [201, 32], [201, 33], [200, 32]]]},
            },
            422,
            "longitude 200.0 outside",
        ),
        ({"name": "x", "unit_code": "U01", "area": {"type": "Point", "coordinates": [110, 32]}}, 400, "area"),
    ],
)
async def test_bad_rules_are_refused_and_nothing_is_written(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, body: dict[str, Any],
    status: int, words: str,
) -> None:  # fmt: skip
    before = await pg.fetchval("SELECT count(*) FROM routing_rule")
    r = await client.post(RULES, json=body, headers=await auth_headers("admin"))
    assert r.status_code == status, r.text
    assert words.lower() in r.text.lower()
    assert await pg.fetchval("SELECT count(*) FROM routing_rule") == before


async def test_who_may_read_and_write_rules(client: AsyncTestClient[Litestar], auth_headers: Headers) -> None:
    body = {"name": "x", "unit_code": "U01"}
    for who in ("dispatcher1", "leader1", "supervisor1", "worker1", "unit-U0101"):
        assert (await client.post(RULES, json=body, headers=await auth_headers(who))).status_code == 403
    for who in ("dispatcher1", "supervisor1"):
        r = await client.get(RULES, params={"category_code": "E0102", "limit": 2}, headers=await auth_headers(who))
        assert r.status_code == 200 and len(r.json()["items"]) == 2 and r.json()["next_cursor"]
    for who in ("worker1", "unit-U0101"):
        assert (await client.get(RULES, headers=await auth_headers(who))).status_code == 403
    assert (await client.get(RULES)).status_code == 401
    r = await client.get(RULES, params={"cursor": "not-ours!"}, headers=await auth_headers("admin"))
    assert r.status_code == 422


async def test_workers_and_units_do_not_see_routing(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection
) -> None:
    lon, lat = await spot(pg, 1911)
    case = await file_report(client, await auth_headers("worker1"), "E0502", lon, lat)
    for who in ("worker1", "unit-U0101"):
        r = await client.get(f"/api/v1/cases/{case['id']}/routing", headers=await auth_headers(who))
        assert r.status_code == 403, who
    r = await client.get("/api/v1/cases/999999999/routing", headers=await auth_headers("dispatcher1"))
    assert r.status_code == 404


async def test_merge_needs_an_open_target(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection
) -> None:
    lon, lat = await spot(pg, 1921)
    case = await file_report(client, await auth_headers("worker1"), "E0502", lon, lat)
    acceptor = await auth_headers("acceptor1")
    url = f"/api/v1/cases/{case['id']}/actions/merge"
    r = await client.post(url, json={"into": case["id"]}, headers=acceptor)
    assert r.status_code == 422 and "no case" in r.text
    r = await client.post(url, json={"into": 999999999}, headers=acceptor)
    assert r.status_code == 422
    r = await client.post(url, json={}, headers=acceptor)
    assert r.status_code == 400 and "into" in r.text
    assert (await case_row(pg, case["id"]))["status"] == "reported"
