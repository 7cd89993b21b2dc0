"""POST /api/v1/cases/batch: an offline queue with passing and failing items, resends, the size limit."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.intake.conftest import CASES, count_cases, now_iso, place_of, queued_jobs, report

BATCH = f"{CASES}/batch"


async def test_batch_files_passing_items_and_reports_failing_ones(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection, redis: Any
) -> None:
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1")
    good = [report(lon, lat, description=f"暴露垃圾 {i}", captured_at=now_iso(-60 * 24 * i)) for i in range(3)]
    items = [
        good[0],
        report(lon, lat, captured_at=now_iso(60 * 24)),  # the phone's clock runs a day ahead
        good[1],
        report(lon, lat, category_code="E9999"),
        {**report(lon, lat), "client_id": None},  # a queued report without its id
        {"lon": "east", "client_id": "x"},  # malformed
        "not an object",
        good[2],
    ]
    before = await count_cases(pg)
    r = await client.post(BATCH, json={"items": items}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["items"]
    assert [x["index"] for x in results] == list(range(len(items)))
    assert [x["status_code"] for x in results] == [201, 422, 201, 422, 422, 400, 422, 201]
    assert body["created"] == 3 and body["failed"] == 5 and body["replayed"] == 0
    assert "future" in results[1]["error"]["detail"]
    assert "unknown class" in results[3]["error"]["detail"]
    assert "client_id" in results[4]["error"]["detail"]
    assert results[5]["error"]["detail"]
    ids = [x["case"]["id"] for x in results if x.get("case")]
    assert len(set(ids)) == 3
    assert [x["case"]["description"] for x in results if x.get("case")] == [g["description"] for g in good]
    cases, activities, keys = await count_cases(pg)
    assert (cases, activities, keys) == (before[0] + 3, before[1] + 3, before[2] + 3)
    jobs = await queued_jobs(redis, "cases.route")
    assert {j["k"]["case_id"] for j in jobs} >= set(ids)

    # the phone did not get the answer and sends the whole queue again: nothing new, the same cases
    again = await client.post(BATCH, json={"items": items}, headers=headers)
    results2 = again.json()["items"]
    assert [x["status_code"] for x in results2] == [201, 422, 201, 422, 422, 400, 422, 201]
    assert again.json()["replayed"] == 3 and again.json()["created"] == 0
    assert [x["case"] for x in results2 if x.get("case")] == [x["case"] for x in results if x.get("case")]
    assert all(x["replayed"] for x in results2 if x.get("case"))
    assert await count_cases(pg) == (cases, activities, keys)


async def test_a_single_report_and_its_resend_in_a_batch_are_one_case(
    client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection
) -> None:
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1")
    item = report(lon, lat)
    first = await client.post(CASES, json=item, headers=headers)
    assert first.status_code == 201
    r = await client.post(BATCH, json={"items": [item, dict(item, description="改了")]}, headers=headers)
    results = r.json()["items"]
    assert results[0]["status_code"] == 201 and results[0]["case"] == first.json() and results[0]["replayed"]
    assert results[1]["status_code"] == 409


async def test_batch_limits(client: AsyncTestClient, auth_headers: Any, pg: asyncpg.Connection) -> None:
    headers = await auth_headers("worker1")
    _, lon, lat = await place_of(pg, "worker1")
    before = await count_cases(pg)
    r = await client.post(BATCH, json={"items": [report(lon, lat) for _ in range(101)]}, headers=headers)
    assert r.status_code == 422, r.text
    assert "at most 100" in r.json()["detail"]
    r = await client.post(BATCH, json={"items": []}, headers=headers)
    assert r.status_code == 422
    r = await client.post(BATCH, json={"things": []}, headers=headers)
    assert r.status_code == 400
    r = await client.post(BATCH, json={"items": [report(lon, lat)]}, headers=await auth_headers("unit-U01"))
    assert r.status_code == 403
    assert await count_cases(pg) == before
