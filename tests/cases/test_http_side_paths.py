"""Over HTTP: every side path of the lifecycle, each by the role that may take it, each leaving its timeline row."""

from __future__ import annotations

import uuid

import asyncpg
from litestar.testing import AsyncTestClient

from tests.cases.test_http_flow import _act, _photo, _point_in_duty_grid


async def _report(client: AsyncTestClient, auth_headers, pg: asyncpg.Connection, who: str = "worker1") -> int:
    lon, lat = await _point_in_duty_grid(pg, who)
    r = await client.post(
        "/api/v1/cases",
        json={"category_code": "E0102", "urgency": "urgent", "description": "暴露垃圾", "lon": lon, "lat": lat,
              "client_id": str(uuid.uuid4())},
        headers=await auth_headers(who),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _timeline(client: AsyncTestClient, auth_headers, case_id: int) -> list[str]:
    r = await client.get(f"/api/v1/cases/{case_id}/timeline", headers=await auth_headers("supervisor1"))
    return [a["action"] for a in r.json()["activities"]]


async def test_reject_decline_and_self_handle(client: AsyncTestClient, auth_headers, pg) -> None:
    a = await _report(client, auth_headers, pg)
    case = await _act(client, await auth_headers("acceptor1"), a, "reject", note="重复上报")
    assert case["status"] == "rejected" and case["deadline"] is None
    b = await _report(client, auth_headers, pg)
    r = await client.post(
        f"/api/v1/cases/{b}/actions/decline", json={"note": "x"}, headers=await auth_headers("acceptor1")
    )
    assert r.status_code == 403  # only the shift leader declines registration
    assert (await _act(client, await auth_headers("leader1"), b, "decline", note="不属于城管范围"))[
        "status"
    ] == "declined"
    c = await _report(client, auth_headers, pg)
    worker = await auth_headers("worker1")
    photo = await _photo(client, worker, c, "report")
    assert (await _act(client, worker, c, "self_handle", attachment_ids=[photo]))["status"] == "checked"
    assert (await _act(client, await auth_headers("leader1"), c, "close"))["status"] == "closed"
    assert await _timeline(client, auth_headers, c) == ["report", "self_handle", "close"]


async def test_send_back_forward_postpone_urge_rework_shelve_cancel_reopen(
    client: AsyncTestClient, auth_headers, pg
) -> None:
    case_id = await _report(client, auth_headers, pg)
    leader, dispatcher = await auth_headers("leader1"), await auth_headers("dispatcher1")
    await _act(client, leader, case_id, "register")
    await _act(client, dispatcher, case_id, "dispatch", unit_code="U06")
    assert (await _act(client, await auth_headers("unit-U06"), case_id, "send_back", note="非供水问题"))[
        "unit_code"
    ] is None
    await _act(client, dispatcher, case_id, "dispatch", unit_code="U01")
    case = await _act(client, await auth_headers("unit-U01"), case_id, "forward", unit_code="U0101")
    assert case["unit_code"] == "U0101"
    staff = await auth_headers("unit-U0101")
    r = await client.post(f"/api/v1/cases/{case_id}/actions/forward", json={"unit_code": "U06"}, headers=staff)
    assert r.status_code == 422 and "child unit" in r.json()["detail"]  # only down the unit tree
    await _act(client, staff, case_id, "acknowledge")
    await _act(client, await auth_headers("supervisor1"), case_id, "urge", note="请尽快处置")
    await _act(client, staff, case_id, "request_postpone", minutes=60, note="需要车辆")
    await _act(client, dispatcher, case_id, "deny_postpone", note="可以当天完成")
    await _act(client, staff, case_id, "request_postpone", minutes=30, note="仍需车辆")
    await _act(client, dispatcher, case_id, "approve_postpone")
    photo = await _photo(client, staff, case_id, "handling")
    await _act(client, staff, case_id, "feed_back", attachment_ids=[photo])
    await _act(client, dispatcher, case_id, "request_check", checker_username="worker1")
    worker = await auth_headers("worker1")
    check = await _photo(client, worker, case_id, "check")
    case = await _act(client, worker, case_id, "check_fail", attachment_ids=[check], note="仍有垃圾")
    assert case["status"] == "dispatched" and case["rework_count"] == 1
    assert (await _act(client, leader, case_id, "shelve", note="需专项整治"))["status"] == "shelved"
    assert (await _act(client, leader, case_id, "unshelve"))["status"] == "registered"
    assert (await _act(client, leader, case_id, "cancel", note="已并入专项"))["status"] == "cancelled"
    r = await client.post(f"/api/v1/cases/{case_id}/actions/reopen", json={"note": "x"}, headers=leader)
    assert r.status_code == 409  # cancelled is final; only closed cases reopen
    assert await _timeline(client, auth_headers, case_id) == [
        "report", "register", "dispatch", "send_back", "dispatch", "forward", "acknowledge", "urge",
        "request_postpone", "deny_postpone", "request_postpone", "approve_postpone", "feed_back", "request_check",
        "check_fail", "shelve", "unshelve", "cancel",
    ]  # fmt: skip


async def test_reopen_a_closed_case(client: AsyncTestClient, auth_headers, pg) -> None:
    case_id = await _report(client, auth_headers, pg)
    worker = await auth_headers("worker1")
    photo = await _photo(client, worker, case_id, "report")
    await _act(client, worker, case_id, "self_handle", attachment_ids=[photo])
    await _act(client, await auth_headers("leader1"), case_id, "close")
    case = await _act(client, await auth_headers("supervisor1"), case_id, "reopen", note="群众反映仍未解决")
    assert case["status"] == "registered" and case["closed_at"] is None and case["deadline"] is not None


async def test_stale_version_over_http(client: AsyncTestClient, auth_headers, pg) -> None:
    case_id = await _report(client, auth_headers, pg)
    r = await client.post(f"/api/v1/cases/{case_id}/actions/register", json={"version": 9},
                          headers=await auth_headers("acceptor1"))  # fmt: skip
    assert r.status_code == 409 and r.json()["extra"]["version"] == 1


async def test_scope_over_http(client: AsyncTestClient, auth_headers, pg) -> None:
    case_id = await _report(client, auth_headers, pg, "worker1")
    for outsider in ("worker30", "unit-U06"):
        r = await client.get(f"/api/v1/cases/{case_id}", headers=await auth_headers(outsider))
        assert r.status_code == 404, outsider
        r = await client.get(f"/api/v1/cases/{case_id}/timeline", headers=await auth_headers(outsider))
        assert r.status_code == 404, outsider
    for insider in ("worker1", "dispatcher1", "supervisor1"):
        r = await client.get(f"/api/v1/cases/{case_id}", headers=await auth_headers(insider))
        assert r.status_code == 200 and r.json()["id"] == case_id, insider
    r = await client.get(f"/api/v1/cases/{case_id}")
    assert r.status_code == 401


async def test_next_actions_are_the_callers_own(client: AsyncTestClient, auth_headers, pg) -> None:
    case_id = await _report(client, auth_headers, pg)
    seen = {}
    for who in ("acceptor1", "leader1", "dispatcher1", "worker1"):
        r = await client.get(f"/api/v1/cases/{case_id}", headers=await auth_headers(who))
        assert r.status_code == 200, r.text
        seen[who] = r.json()["next_actions"]
    assert seen["acceptor1"] == ["merge", "register", "reject"]
    assert seen["leader1"] == ["cancel", "decline", "merge", "register", "reject"]
    assert seen["dispatcher1"] == ["merge"]
    assert seen["worker1"] == ["self_handle"]
    r = await client.post(f"/api/v1/cases/{case_id}/actions/register", json={}, headers=await auth_headers("acceptor1"))
    assert r.json()["status"] == "registered" and r.json()["next_actions"] == ["merge"]  # acceptors stop here
