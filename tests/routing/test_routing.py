"""Reports of each kind reach the right unit with a stated reason, through the real worker (cases.route)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.routing.conftest import case_row, file_report, spot

Headers = Callable[..., Awaitable[dict[str, str]]]


async def _timeline_actions(pg: asyncpg.Connection, case_id: int) -> list[tuple[str, str | None]]:
    rows = await pg.fetch("SELECT action, actor_role FROM case_activity WHERE case_id = $1 ORDER BY seq", case_id)
    return [(r["action"], r["actor_role"]) for r in rows]


async def test_broken_cover_goes_to_the_components_maintainer_automatically(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    comp = await pg.fetchrow(
        "SELECT code, maintainer_unit_code, ST_X(geom) lon, ST_Y(geom) lat FROM component"
        " WHERE category_code = 'C0101' AND maintainer_unit_code IS NOT NULL ORDER BY code OFFSET 7 LIMIT 1"
    )
    case = await file_report(client, await auth_headers("worker1"), "C0101", comp["lon"], comp["lat"],
                             component_code=comp["code"])  # fmt: skip
    assert await drain() >= 1
    row = await case_row(pg, case["id"])
    assert row["status"] == "dispatched" and row["unit_code"] == comp["maintainer_unit_code"]
    decision = json.loads(row["routing"])["decision"]
    assert decision["source"] == "component" and decision["reason"]["component_code"] == comp["code"]
    assert decision["reason"]["as"] == "maintainer"
    assert await _timeline_actions(pg, case["id"]) == [
        ("report", "worker"),
        ("register", "system"),
        ("dispatch", "system"),
    ]
    note = await pg.fetchval("SELECT note FROM case_activity WHERE case_id = $1 AND action = 'dispatch'", case["id"])
    assert comp["code"] in note


async def test_burst_water_main_goes_to_the_owner_of_the_nearest_water_pipe(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    pipe = await pg.fetchrow(
        "SELECT code, coalesce(maintainer_unit_code, owner_unit_code) AS unit,"
        " ST_X(ST_LineInterpolatePoint(geom, 0.5)) lon, ST_Y(ST_LineInterpolatePoint(geom, 0.5)) lat"
        " FROM pipeline WHERE kind = 'water' ORDER BY code OFFSET 3 LIMIT 1"
    )
    lon, lat = pipe["lon"] + 0.00005, pipe["lat"]  # ~5 m beside the main
    case = await file_report(client, await auth_headers("worker1"), "E0402", lon, lat)
    await drain()
    row = await case_row(pg, case["id"])
    decision = json.loads(row["routing"])["decision"]
    assert decision["source"] == "pipeline" and decision["reason"]["pipeline_kind"] == "water"
    assert decision["distance_m"] is not None and decision["distance_m"] < 30
    assert row["status"] == "dispatched" and row["unit_code"] == decision["unit_code"]
    nearest = await pg.fetchval(
        "SELECT coalesce(maintainer_unit_code, owner_unit_code) FROM pipeline WHERE kind = 'water'"
        " ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography LIMIT 1",
        lon, lat,
    )  # fmt: skip
    assert row["unit_code"] == nearest


async def test_exposed_garbage_follows_the_sanitation_rule_of_its_street(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    lon, lat = await spot(pg, 1601)
    case = await file_report(client, await auth_headers("worker1"), "E0102", lon, lat)
    await drain()
    row = await case_row(pg, case["id"])
    seat = await pg.fetchval("SELECT min(code) FROM region WHERE level = 'street'")
    expected = "U010101" if row["street_code"] == seat else "U010102"
    decision = json.loads(row["routing"])["decision"]
    assert decision["source"] == "rule" and decision["reason"]["area"] == row["street_code"]
    assert row["status"] == "dispatched" and row["unit_code"] == expected


async def test_illegal_vendor_goes_to_the_enforcement_brigade(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    lon, lat = await spot(pg, 1611)
    case = await file_report(client, await auth_headers("worker1"), "E0501", lon, lat)
    await drain()
    row = await case_row(pg, case["id"])
    assert row["status"] == "dispatched" and row["unit_code"] == "U0104"
    assert json.loads(row["routing"])["decision"]["reason"]["class"] == "E0501"


async def test_street_office_classes_fall_back_to_the_territory_and_wait_for_a_dispatcher(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    lon, lat = await spot(pg, 1621)
    case = await file_report(client, await auth_headers("worker1"), "E0502", lon, lat)
    await drain()
    row = await case_row(pg, case["id"])
    assert row["status"] == "reported" and row["unit_code"] is None and row["routed_at"] is not None
    office = await pg.fetchval(
        "SELECT code FROM unit WHERE kind = 'street_office' AND region_code = $1", row["street_code"]
    )
    r = await client.get(f"/api/v1/cases/{case['id']}/routing", headers=await auth_headers("dispatcher1"))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["decision"]["source"] == "territory" and view["decision"]["unit_code"] == office
    assert "属地兜底" in view["decision"]["explained"]
    assert [c["source"] for c in view["candidates"]] == ["territory"]


async def test_a_duplicate_is_merged_into_the_open_case_and_its_reporter_sees_it(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any
) -> None:
    lon, lat = await spot(pg, 1631)
    first = await file_report(client, await auth_headers("worker1"), "E0104", lon, lat)
    await drain()
    second = await file_report(client, await auth_headers("worker2"), "E0104", lon + 0.0001, lat)  # ~10 m
    elsewhere = await file_report(client, await auth_headers("worker2"), "E0104", lon + 0.003, lat)  # ~300 m
    await drain()
    dup, other = await case_row(pg, second["id"]), await case_row(pg, elsewhere["id"])
    assert dup["status"] == "merged" and dup["duplicate_of"] == first["id"]
    assert other["status"] != "merged" and other["duplicate_of"] is None
    decision = json.loads(dup["routing"])["decision"]
    assert decision["source"] == "duplicate" and decision["duplicate_of"] == first["id"]
    assert (await case_row(pg, first["id"]))["status"] == "dispatched"  # the original goes on
    # a dispatcher who knows better splits it off: it becomes a case of its own and is routed again
    r = await client.post(
        f"/api/v1/cases/{second['id']}/actions/split", json={"note": "另一处垃圾"},
        headers=await auth_headers("dispatcher1"),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "reported" and r.json()["duplicate_of"] is None
    await drain()  # routed again as a case of its own: not merged back into the case it was split from
    split = await case_row(pg, second["id"])
    assert split["status"] == (await case_row(pg, first["id"]))["status"] == "dispatched"
    assert split["duplicate_of"] is None and split["routed_at"] is not None
    assert json.loads(split["routing"])["decision"]["source"] != "duplicate"


async def test_routing_twice_has_one_effect(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any, arq_pool: Any
) -> None:
    lon, lat = await spot(pg, 1641)
    case = await file_report(client, await auth_headers("worker1"), "E0501", lon, lat)
    await arq_pool.enqueue_job("cases.route", case_id=case["id"])  # the same job delivered twice
    await drain()
    actions = await _timeline_actions(pg, case["id"])
    assert [a for a, _ in actions] == ["report", "register", "dispatch"]


async def test_routing_queries_read_indexes_not_tables(pg: asyncpg.Connection) -> None:
    """The duplicate search and the pipeline search never scan the cases or the pipelines (on the benchmark city
    they read `ix_cases_category_geog` and the pipelines' geometry index; a tiny test table may pick another)."""
    import re

    from grid_mgmt.routing import repository as repo

    case_id = await pg.fetchval(  # a subsurface report with a duplicate radius (the burst main above made one)
        "SELECT c.id FROM cases c JOIN category k ON k.code = c.category_code"
        " WHERE k.subsurface AND k.duplicate_radius_m > 0 AND k.duplicate_window_min > 0 ORDER BY c.id LIMIT 1"
    )
    assert case_id is not None
    await pg.execute("SET enable_seqscan = off")  # a small test table must not hide a missing index
    try:
        for sql, table in ((repo._DUPLICATE.text, "cases"), (repo._CANDIDATES.text, "pipeline")):
            q = re.sub(r"(?<!:):(ids|radius)\b", lambda m: "30" if m.group(1) == "radius" else "$1", sql)
            plan = "\n".join(r[0] for r in await pg.fetch("EXPLAIN " + q, [case_id]))
            assert f"Seq Scan on {table}" not in plan, plan
    finally:
        await pg.execute("RESET enable_seqscan")


async def test_queued_reports_are_routed_together_by_one_job_as_one_after_the_other_would(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, drain: Any, arq_pool: Any
) -> None:
    """One routing job takes the cases queued behind it (one transaction, set-based) and withdraws their jobs.
    A repeat of a repeat is routed after the merge it depends on: Z, then A ~40 m away (merged into Z), then B
    ~40 m beyond A and ~80 m from Z (beyond E0104's 50 m): B is a case of its own."""
    from arq.constants import default_queue_name, job_key_prefix

    headers = await auth_headers("worker1")
    vendor = await file_report(client, headers, "E0501", *(await spot(pg, 1651)))
    garbage = await file_report(client, headers, "E0102", *(await spot(pg, 1661)))
    office = await file_report(client, headers, "E0502", *(await spot(pg, 1671)))
    lon, lat = await spot(pg, 1681)
    z = await file_report(client, headers, "E0104", lon, lat)
    a = await file_report(client, headers, "E0104", lon + 0.0004, lat)
    b = await file_report(client, headers, "E0104", lon + 0.0008, lat)
    ids = [c["id"] for c in (vendor, garbage, office, z, a, b)]
    assert {f"route:{i}".encode() for i in ids} <= set(await arq_pool.zrange(default_queue_name, 0, -1))
    assert await drain(max_jobs=1) == 1  # the first job routed all six and withdrew the other five
    assert not [k for k in await arq_pool.keys(job_key_prefix + "route:*")]
    rows = {i: await case_row(pg, i) for i in ids}
    assert all(r["routed_at"] is not None for r in rows.values())
    assert [rows[i]["status"] for i in ids] == ["dispatched", "dispatched", "reported", "dispatched", "merged",
                                                "dispatched"]  # fmt: skip
    assert rows[a["id"]]["duplicate_of"] == z["id"] and rows[b["id"]]["duplicate_of"] is None
    assert rows[vendor["id"]]["unit_code"] == "U0104"
    for i in (vendor["id"], garbage["id"], z["id"], b["id"]):
        assert [x for x, _ in await _timeline_actions(pg, i)] == ["report", "register", "dispatch"]
        assert rows[i]["version"] == 3
    assert [x for x, _ in await _timeline_actions(pg, a["id"])] == ["report", "merge"]
    assert [x for x, _ in await _timeline_actions(pg, office["id"])] == ["report"]
    events = await pg.fetch(
        "SELECT case_id, topic FROM outbox WHERE case_id = ANY($1::bigint[]) ORDER BY id", ids
    )  # fmt: skip
    topics = {i: [e["topic"] for e in events if e["case_id"] == i] for i in ids}
    assert topics[vendor["id"]] == ["case.register", "case.dispatch"]
    assert topics[office["id"]] == ["case.routed"] and topics[a["id"]] == ["case.merge"]


def test_a_worker_remembers_the_cases_it_routed_lately_and_forgets_the_oldest() -> None:
    from grid_mgmt.routing.service import RecentlyRouted

    recent = RecentlyRouted(size=3)
    recent.add([1, 2])
    recent.add([3, 4])
    assert 1 not in recent and all(i in recent for i in (2, 3, 4)) and 5 not in recent
