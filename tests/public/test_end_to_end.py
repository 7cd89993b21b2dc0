"""A citizen's report driven end to end over HTTP: verified by the grid's worker, routed, dispatched, handled,
checked, closed; the citizen follows it on the coarse timeline and rates it."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.cases.test_http_flow import _act, _photo
from tests.public.conftest import REPORTS, body, case_of, jpeg, random_place

WORKER = "worker30"


async def test_citizen_report_to_rating(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, auth_headers: Any, drain: Any
) -> None:
    lon, lat = await random_place(pg, WORKER)
    fields = {k: str(v) for k, v in body(lon, lat, description="盲道上停满了共享单车").items()}
    r = await client.post(REPORTS, data=fields, files=[("file", ("p.jpg", jpeg((5, 60, 90)), "image/jpeg"))])
    assert r.status_code == 201, r.text
    receipt = r.json()
    case_id = (await case_of(pg, receipt["tracking_code"]))["id"]
    await drain()  # the routing job leaves a case in verification alone

    worker = await auth_headers(WORKER)
    r = await client.get("/api/v1/me/tasks", headers=worker)
    verify = {q["name"]: q for q in r.json()}["verify"]
    assert case_id in [c["id"] for c in verify["items"]], verify["count"]
    proof = await _photo(client, worker, case_id, "verify")
    case = await _act(client, worker, case_id, "verify_pass", attachment_ids=[proof])
    assert case["status"] == "reported"
    await drain()  # cases.route: a street-office class waits for the centre with a suggestion

    case = (await client.get(f"/api/v1/cases/{case_id}", headers=await auth_headers("leader1"))).json()
    if case["status"] == "reported":
        case = await _act(client, await auth_headers("acceptor1"), case_id, "register")
    if case["status"] == "registered":
        routing = (await client.get(f"/api/v1/cases/{case_id}/routing", headers=await auth_headers("leader1"))).json()
        unit = routing["candidates"][0]["unit_code"]
        case = await _act(client, await auth_headers("dispatcher1"), case_id, "dispatch", unit_code=unit)
    assert case["status"] == "dispatched", case
    staff = await auth_headers(f"unit-{case['unit_code']}")
    await _act(client, staff, case_id, "acknowledge")
    after = await _photo(client, staff, case_id, "handling")
    await _act(client, staff, case_id, "feed_back", attachment_ids=[after], note="已清理")
    await _act(client, await auth_headers("dispatcher1"), case_id, "request_check", checker_username=WORKER)
    await _act(client, worker, case_id, "check_pass", attachment_ids=[await _photo(client, worker, case_id, "check")])
    closed = await _act(client, await auth_headers("leader1"), case_id, "close")
    assert closed["status"] == "closed"

    r = await client.get(f"{REPORTS}/{receipt['tracking_code']}")
    view = r.json()
    assert view["status"] == "closed" and view["can_rate"] is True and view["can_reopen_until"]
    assert [s["step"] for s in view["timeline"]] == [
        "received", "verified", "registered", "dispatched", "in_progress", "handled", "checking", "checked", "closed"
    ]  # fmt: skip
    assert WORKER not in r.text and "已清理" not in r.text and "unit-" not in r.text

    r = await client.post(f"{REPORTS}/{receipt['tracking_code']}/rating", json={"score": 5, "comment": "很快"},
                          headers={"X-Report-Token": receipt["token"]})  # fmt: skip
    assert r.status_code == 200, r.text
    row = await pg.fetchrow("SELECT rating, rating_comment, rated_at FROM public_report WHERE case_id = $1", case_id)
    assert (row["rating"], row["rating_comment"]) == (5, "很快") and row["rated_at"] is not None
    assert [s["step"] for s in r.json()["timeline"]][-1] == "rated"
