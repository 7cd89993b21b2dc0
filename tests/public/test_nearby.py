"""Before reporting: the classes citizens can report and the open reports nearby."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.public.conftest import CLASS, case_of, close_case

NEARBY = "/api/v1/public/nearby"


async def test_classes_are_the_public_active_ones(client: AsyncTestClient[Any], pg: asyncpg.Connection) -> None:
    r = await client.get("/api/v1/public/classes")
    assert r.status_code == 200, r.text
    got = {c["code"]: c for c in r.json()}
    expected = {row["code"] for row in await pg.fetch("SELECT code FROM category WHERE public AND active")}
    assert set(got) == expected and "C0116" not in got
    assert got["E0102"] | {"duplicate_radius_m": 0} == {
        "code": "E0102", "name": "暴露垃圾", "name_en": "Exposed garbage", "kind": "event", "major": "E01",
        "major_name": got["E0102"]["major_name"], "duplicate_radius_m": 0,
    }  # fmt: skip


async def test_open_reports_nearby_nearest_first_public_fields_only(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, file_report: Any, place: tuple[float, float]
) -> None:
    near = await file_report(contact_phone="13800000001", consent=True)
    lon, lat = place
    further = await client.post("/api/v1/public/reports", json={"category_code": CLASS, "lon": lon + 0.00004, "lat": lat,
                                                              "description": "另一处"})  # fmt: skip
    assert further.status_code == 201
    closed = await file_report()
    await close_case(pg, (await case_of(pg, closed["tracking_code"]))["id"])

    r = await client.get(NEARBY, params={"lon": lon, "lat": lat, "class": CLASS, "radius": 50})
    assert r.status_code == 200, r.text
    page = r.json()
    codes = [i["tracking_code"] for i in page["items"]]
    assert codes.index(near["tracking_code"]) < codes.index(further.json()["tracking_code"])
    assert closed["tracking_code"] not in codes
    distances = [i["distance_m"] for i in page["items"]]
    assert distances == sorted(distances) and all(d <= 50 for d in distances) and page["radius_m"] == 50
    assert "13800000001" not in r.text and "description" not in r.text and "reporter" not in r.text
    assert len(page["items"]) <= 20

    r = await client.get(NEARBY, params={"lon": lon, "lat": lat, "class": CLASS})
    assert r.json()["radius_m"] == 20  # the class's duplicate radius
    assert near["tracking_code"] in [i["tracking_code"] for i in r.json()["items"]]


async def test_nearby_bad_parameters(client: AsyncTestClient[Any], place: tuple[float, float]) -> None:
    lon, lat = place
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"lon": lon, "lat": lat, "class": "E0506", "radius": 501}, 422, "radius"),
        ({"lon": lon, "lat": lat, "class": "E0506", "radius": 0}, 422, "radius"),
        ({"lon": lon, "lat": lat, "class": "C0116"}, 422, "class"),
        ({"lon": lon, "lat": lat, "class": "nope"}, 422, "class"),
        ({"lon": lon, "lat": 95, "class": "E0506"}, 422, "lat"),
        ({"lon": "x", "lat": lat, "class": "E0506"}, 400, None),
        ({"lon": lon, "lat": lat}, 400, None),
    ]
    for params, status, field in cases:
        r = await client.get(NEARBY, params=params)
        assert r.status_code == status, (params, r.text)
        if field:
            assert r.json()["extra"]["field"] == field, (params, r.text)
