"""POST /api/v1/cases: a report lands with derived codes, flags, number, timeline, job; bad input writes nothing."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from geo.crs import wgs84_to_gcj02
from geo.measure import distance_m
from grid_mgmt.cases.repository import forget_classes
from tests.intake.conftest import (
    CASES,
    count_cases,
    grid_point,
    new_key,
    now_iso,
    place_of,
    place_outside,
    queued_jobs,
    report,
    user_id,
)


async def test_worker_report_lands_with_codes_number_timeline_and_job(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection, redis: Any
) -> None:
    grid, lon, lat = await place_of(pg, "worker1")
    captured = now_iso(-10)
    body = report(lon, lat, captured_at=captured, address="城关镇人民路 12 号", description="  路边暴露垃圾一堆  ")
    r = await client.post(CASES, json=body, headers=await auth_headers("worker1"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert re.fullmatch(r"\d{8}\d{6}", case["case_no"])
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
    assert case["case_no"].startswith(today)
    assert case["status"] == "reported" and case["source"] == "worker"
    assert case["grid_code"] == grid
    assert case["community_code"] == grid[:12] and case["street_code"] == grid[:9] and case["district_code"] == "420323"
    assert case["description"] == "路边暴露垃圾一堆"
    assert case["flags"] == []
    assert case["reporter_id"] == await user_id(pg, "worker1")
    assert abs(case["lon"] - lon) < 1e-9 and abs(case["lat"] - lat) < 1e-9
    assert case["input_crs"] == "wgs84" and case["accuracy_m"] == 8.0
    assert dt.datetime.fromisoformat(case["captured_at"]) == dt.datetime.fromisoformat(captured)
    assert dt.datetime.fromisoformat(case["received_at"]) > dt.datetime.fromisoformat(captured)
    assert case["deadline"] is not None and case["stage"] == "register"
    rows = await pg.fetch("SELECT seq, action, to_status FROM case_activity WHERE case_id = $1", case["id"])
    assert [(r["seq"], r["action"], r["to_status"]) for r in rows] == [(1, "report", "reported")]
    jobs = await queued_jobs(redis, "cases.route")
    assert any(j["k"] == {"case_id": case["id"]} for j in jobs), jobs


async def test_gcj02_input_is_converted(client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection) -> None:
    grid, lon, lat = await place_of(pg, "worker1", 1)
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert distance_m(lon, lat, glon, glat) > 100  # the offset is real
    r = await client.post(CASES, json=report(glon, glat, crs="gcj02"), headers=await auth_headers("worker1"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["input_crs"] == "gcj02" and case["grid_code"] == grid
    assert distance_m(case["lon"], case["lat"], lon, lat) < 0.01
    stored = await pg.fetchrow("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cases WHERE id = $1", case["id"])
    assert distance_m(stored["lon"], stored["lat"], lon, lat) < 0.01


async def test_component_class_snaps_to_the_nearest_component_of_that_class(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    comp = await pg.fetchrow(
        "SELECT c.code, c.category_code, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat FROM component c"
        " WHERE c.category_code = 'C0118' AND GeometryType(c.geom) = 'POINT' AND c.status <> 'removed'"
        " ORDER BY c.code LIMIT 1"
    )
    lon, lat = comp["lon"] + 0.00002, comp["lat"]  # about 2 m east
    nearest = await pg.fetchval(
        "SELECT code FROM component WHERE category_code = 'C0118' AND status <> 'removed'"
        " AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, 5)"
        " ORDER BY ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography) LIMIT 1",
        lon,
        lat,
    )
    assert nearest == comp["code"]
    body = report(lon, lat, category_code="C0118", description="路灯不亮")
    r = await client.post(CASES, json=body, headers=await auth_headers("leader1"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["component_code"] == comp["code"]
    assert "snapped" in case["flags"] and case["source"] == "leader"
    # an event class never snaps; a point 50 m away does not snap either
    far = report(comp["lon"] + 0.0006, comp["lat"], category_code="C0118", description="路灯不亮")
    r = await client.post(CASES, json=far, headers=await auth_headers("leader1"))
    assert r.status_code == 201, r.text
    if r.json()["component_code"] is not None:  # another lamp may stand there; then it is the nearest one
        assert "snapped" in r.json()["flags"]
    r = await client.post(CASES, json=report(lon, lat), headers=await auth_headers("leader1"))
    assert r.json()["component_code"] is None and r.json()["flags"] == []


async def test_snapping_uses_the_geography_index(pg: asyncpg.Connection) -> None:
    from grid_mgmt.intake.repository import SNAP_SQL

    sql = SNAP_SQL.replace(":lon", "$1").replace(":lat", "$2").replace(":category", "$3").replace(":radius", "$4")
    await pg.execute("SET enable_seqscan = off")  # tiny test tables: make the planner show its index choice
    try:
        plan = "\n".join(r[0] for r in await pg.fetch("EXPLAIN " + sql, 110.23, 32.23, "C0118", 5.0))
    finally:
        await pg.execute("RESET enable_seqscan")
    assert "ix_component_geog" in plan, plan


async def test_component_only_report_takes_the_component_position_and_class(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    comp = await pg.fetchrow(
        "SELECT code, category_code, grid_code, ST_X(ST_PointOnSurface(geom)) AS lon,"
        " ST_Y(ST_PointOnSurface(geom)) AS lat FROM component WHERE GeometryType(geom) = 'POINT'"
        " AND status <> 'removed' ORDER BY code DESC LIMIT 1"
    )
    body = {"component_code": comp["code"], "description": "井盖破损", "client_id": new_key()}
    r = await client.post(CASES, json=body, headers=await auth_headers("acceptor1"))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["component_code"] == comp["code"] and case["category_code"] == comp["category_code"]
    assert abs(case["lon"] - comp["lon"]) < 1e-9 and abs(case["lat"] - comp["lat"]) < 1e-9
    assert case["source"] == "hotline" and case["grid_code"] is not None
    assert "snapped" not in case["flags"]
    # a polygon or line component is placed at its point on surface
    poly = await pg.fetchrow(
        "SELECT code, category_code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat"
        " FROM component WHERE GeometryType(geom) <> 'POINT' AND status <> 'removed' ORDER BY code LIMIT 1"
    )
    if poly is not None:
        body = {"component_code": poly["code"], "description": "设施损坏", "client_id": new_key()}
        r = await client.post(CASES, json=body, headers=await auth_headers("acceptor1"))
        assert r.status_code == 201, r.text
        assert abs(r.json()["lon"] - poly["lon"]) < 1e-9


async def test_worker_outside_duty_grids_is_flagged(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    grid, lon, lat = await place_outside(pg, "worker1")
    r = await client.post(CASES, json=report(lon, lat), headers=await auth_headers("worker1"))
    assert r.status_code == 201, r.text
    assert r.json()["grid_code"] == grid
    assert r.json()["flags"] == ["outside_duty_grid"]


async def test_replay_returns_the_first_response_and_writes_nothing(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1", 2)
    body = report(lon, lat)
    first = await client.post(CASES, json=body, headers=headers)
    assert first.status_code == 201, first.text
    before = await count_cases(pg)
    again = await client.post(CASES, json=body, headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("idempotency-replayed") == "true"
    assert await count_cases(pg) == before
    n = await pg.fetchval("SELECT count(*) FROM cases WHERE id = $1", first.json()["id"])
    assert n == 1
    # the same key with another body is a conflict
    other = dict(body, description="另一件事")
    r = await client.post(CASES, json=other, headers=headers)
    assert r.status_code == 409, r.text
    assert "different report" in r.json()["detail"]
    assert await count_cases(pg) == before
    # the key belongs to the user: another worker may use the same phone id
    r = await client.post(CASES, json=body, headers=await auth_headers("worker2"))
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]


async def test_idempotency_key_header(client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection) -> None:
    headers = {**await auth_headers("worker1"), "Idempotency-Key": new_key()}
    _, lon, lat = await place_of(pg, "worker1", 3)
    body = report(lon, lat, client_id=None)
    first = await client.post(CASES, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(CASES, json=body, headers=headers)
    assert again.content == first.content and again.status_code == 201
    r = await client.post(CASES, json=dict(body, client_id="x" + new_key()), headers=headers)
    assert r.status_code == 422 and "differ" in r.json()["detail"]
    r = await client.post(CASES, json=body, headers={**headers, "Idempotency-Key": "k" * 101})
    assert r.status_code == 422 and "100" in r.json()["detail"]


async def test_concurrent_duplicates_make_one_case(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    import asyncio

    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1", 4)
    body = report(lon, lat)
    answers = await asyncio.gather(*(client.post(CASES, json=body, headers=headers) for _ in range(6)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    uid = await user_id(pg, "worker1")
    assert await pg.fetchval("SELECT count(*) FROM idempotency_key WHERE user_id = $1 AND key = $2", uid,
                             body["client_id"]) == 1  # fmt: skip
    case_id = answers[0].json()["id"]
    assert await pg.fetchval("SELECT count(*) FROM cases WHERE id = $1", case_id) == 1
    same_place = await pg.fetchval(
        "SELECT count(*) FROM cases WHERE reporter_id = $1 AND description = $2 AND ST_X(geom) = $3",
        uid, body["description"], answers[0].json()["lon"],
    )  # fmt: skip
    assert same_place == 1


BAD: list[tuple[str, dict[str, Any], int, str]] = [
    ("future", {"captured_at": now_iso(60 * 24)}, 422, "in the future"),
    ("old", {"captured_at": now_iso(-60 * 24 * 40)}, 422, "days ago"),
    ("accuracy 5 km", {"accuracy_m": 5000}, 422, "too coarse"),
    ("negative accuracy", {"accuracy_m": -1}, 422, "accuracy_m"),
    ("empty description", {"description": "   "}, 422, "description is empty"),
    ("100 kB description", {"description": "垃圾" * 50_000}, 422, "at most 4,000"),
    ("unknown class", {"category_code": "E9999"}, 422, "unknown class"),
    ("unknown component", {"component_code": "4203230199999999"}, 422, "no component"),
    ("bad crs", {"crs": "epsg:3857"}, 422, "unknown crs"),
    ("long client_id", {"client_id": "c" * 101}, 422, "at most 100"),
    ("only lon", {"lat": None}, 422, "lat is missing"),
    ("unknown urgency", {"urgency": "whenever"}, 400, "urgency"),
    ("lon as text", {"lon": "east"}, 400, "lon"),
    ("NaN", {"lon": "NaN"}, 422, "finite"),
    ("infinite", {"lat": "Infinity"}, 422, "finite"),
]


@pytest.mark.parametrize(("change", "status", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
async def test_bad_reports_are_refused_and_write_nothing(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection, change: dict[str, Any], status: int,
    message: str,
) -> None:  # fmt: skip
    _, lon, lat = await place_of(pg, "worker1")
    body = report(lon, lat)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    before = await count_cases(pg)
    r = await client.post(CASES, json=body, headers=await auth_headers("worker1"))
    assert r.status_code == status, r.text
    assert message in r.text, r.text
    assert await count_cases(pg) == before


async def test_bad_places_are_refused_with_clear_messages(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1")
    before = await count_cases(pg)
    r = await client.post(CASES, json=report(lat, lon), headers=headers)  # swapped
    assert r.status_code == 422 and "swapped" in r.json()["detail"], r.text
    r = await client.post(CASES, json=report(lon + 1.5, lat), headers=headers)  # outside every grid
    assert r.status_code == 422 and "outside the managed area" in r.json()["detail"], r.text
    body = report(lon, lat)
    del body["lon"], body["lat"]
    r = await client.post(CASES, json=body, headers=headers)  # neither a location nor a component
    assert r.status_code == 422 and "location" in r.json()["detail"], r.text
    r = await client.post(CASES, json=report(200.0, lat), headers=headers)
    assert r.status_code == 422, r.text
    r = await client.post(CASES, content=b'{"lon": NaN, "lat": 32.2, "description": "x"}', headers=headers)
    assert r.status_code == 400, r.text
    assert await count_cases(pg) == before


async def test_inconsistent_component_and_retired_class(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    comp = await pg.fetchrow("SELECT code, category_code FROM component WHERE category_code <> 'C0101' LIMIT 1")
    _, lon, lat = await place_of(pg, "worker1")
    before = await count_cases(pg)
    r = await client.post(CASES, json=report(lon, lat, category_code="C0101", component_code=comp["code"]),
                          headers=headers)  # fmt: skip
    assert r.status_code == 422 and f"is of class {comp['category_code']}" in r.json()["detail"]
    retired = "E0106"
    await pg.execute("UPDATE category SET active = false WHERE code = $1", retired)
    forget_classes()  # processes see a dictionary change within CLASSES_CACHE_S; this test does not wait
    try:
        r = await client.post(CASES, json=report(lon, lat, category_code=retired), headers=headers)
        assert r.status_code == 422 and "no longer in use" in r.json()["detail"], r.text
    finally:
        await pg.execute("UPDATE category SET active = true WHERE code = $1", retired)
        forget_classes()
    assert await count_cases(pg) == before


async def test_who_may_report(client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection) -> None:
    _, lon, lat = await place_of(pg, "worker1")
    r = await client.post(CASES, json=report(lon, lat))
    assert r.status_code == 401
    r = await client.post(CASES, json=report(lon, lat), headers=await auth_headers("unit-U01"))
    assert r.status_code == 403
    r = await client.post(CASES, json=report(lon, lat, source="hotline"), headers=await auth_headers("worker1"))
    assert r.status_code == 403 and "worker" in r.json()["detail"]
    r = await client.post(CASES, json=report(lon, lat, source="video"), headers=await auth_headers("dispatcher1"))
    assert r.status_code == 201 and r.json()["source"] == "video"
    assert r.json()["flags"] == []  # centre staff have no duty grids to be outside of


async def test_report_is_readable_through_the_case_api(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    _, lon, lat = await place_of(pg, "worker1")
    headers = await auth_headers("worker1")
    r = await client.post(CASES, json=report(lon, lat), headers=headers)
    read = await client.get(f"{CASES}/{r.json()['id']}", headers=headers)
    assert read.status_code == 200
    assert {k: v for k, v in read.json().items() if k != "next_actions"} == {
        k: v for k, v in r.json().items() if k != "next_actions"
    }


async def test_grid_point_helper_is_inside(pg: asyncpg.Connection) -> None:
    grid, lon, lat = await place_of(pg, "worker1")
    assert (await grid_point(pg, grid)) == (lon, lat)


async def test_the_answer_to_a_report_is_the_case_as_stored(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    """The report's answer is planned before the insert (one statement): it must read exactly like the stored case,
    timeline and idempotency record included."""
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1", 3)
    captured = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)
    local = captured.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    body = report(lon, lat, captured_at=local, accuracy_m=7.25, address="人民路 1 号")
    r = await client.post(CASES, json=body, headers=headers)
    assert r.status_code == 201, r.text
    posted = r.json()
    got = await client.get(f"{CASES}/{posted['id']}", headers=headers)
    assert got.json() == posted
    row = await pg.fetchrow(
        "SELECT c.case_no, c.version, c.deadline_round, a.seq, a.action, a.to_status, a.at = c.received_at AS same_at,"
        " k.status_code, k.body FROM cases c JOIN case_activity a ON a.case_id = c.id"
        " JOIN idempotency_key k ON k.user_id = c.reporter_id AND k.key = $2 WHERE c.id = $1",
        posted["id"], body["client_id"],
    )  # fmt: skip
    assert (row["case_no"], row["version"], row["deadline_round"]) == (posted["case_no"], 1, 1)
    assert (row["seq"], row["action"], row["to_status"], row["same_at"]) == (1, "report", "reported", True)
    assert row["status_code"] == 201 and bytes(row["body"]) == r.content
    assert posted["captured_at"] == captured.strftime("%Y-%m-%dT%H:%M:%SZ") and posted["case_no"][:8].isdigit()
