"""Over HTTP on the demo city: a phone report driven to closure by the right roles, with photos and a timeline."""

from __future__ import annotations

import io
import uuid

import asyncpg
from litestar.testing import AsyncTestClient


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 90)).save(buf, "JPEG")
    return buf.getvalue()


async def _point_in_duty_grid(pg: asyncpg.Connection, username: str) -> tuple[float, float]:
    row = await pg.fetchrow(
        "SELECT ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat"
        " FROM grid g JOIN duty_grid_grid d ON d.grid_code = g.code JOIN duty_grid_worker w USING (duty_grid_code)"
        " JOIN app_user u ON u.id = w.user_id WHERE u.username = $1 ORDER BY g.code LIMIT 1",
        username,
    )
    return row["lon"], row["lat"]


async def _act(client: AsyncTestClient, headers: dict, case_id: int, action: str, **body) -> dict:
    r = await client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=headers)
    assert r.status_code == 200, f"{action}: {r.status_code} {r.text}"
    return r.json()


async def _photo(client: AsyncTestClient, headers: dict, case_id: int, kind: str) -> int:
    r = await client.post(
        f"/api/v1/cases/{case_id}/attachments",
        files={"file": ("photo.jpg", _jpeg(), "image/jpeg")},
        data={"kind": kind},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_phone_report_to_closure(client: AsyncTestClient, auth_headers, pg: asyncpg.Connection) -> None:
    worker = await auth_headers("worker1")
    lon, lat = await _point_in_duty_grid(pg, "worker1")
    r = await client.post(
        "/api/v1/cases",
        json={"category_code": "E0102", "urgency": "normal", "description": "路边暴露垃圾", "lon": lon, "lat": lat,
              "crs": "wgs84", "accuracy_m": 5, "client_id": str(uuid.uuid4())},
        headers=worker,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "reported" and case["grid_code"] and case["district_code"] == "420323"
    case_id = case["id"]
    await _photo(client, worker, case_id, "report")

    await _act(client, await auth_headers("acceptor1"), case_id, "register", version=case["version"])
    # a dispatcher of the wrong role cannot close, a worker cannot dispatch
    r = await client.post(f"/api/v1/cases/{case_id}/actions/dispatch", json={"unit_code": "U0101"}, headers=worker)
    assert r.status_code == 403
    case = await _act(client, await auth_headers("dispatcher1"), case_id, "dispatch", unit_code="U0101")
    assert case["unit_code"] == "U0101" and case["status"] == "dispatched"
    staff = await auth_headers("unit-U0101")
    await _act(client, staff, case_id, "acknowledge")
    handled_photo = await _photo(client, staff, case_id, "handling")
    await _act(client, staff, case_id, "feed_back", attachment_ids=[handled_photo], note="已清运")
    case = await _act(client, await auth_headers("dispatcher1"), case_id, "request_check", checker_username="worker1")
    assert case["checker_id"] == await pg.fetchval("SELECT id FROM app_user WHERE username = 'worker1'")
    checker_headers = worker
    check_photo = await _photo(client, checker_headers, case_id, "check")
    await _act(client, checker_headers, case_id, "check_pass", attachment_ids=[check_photo])
    case = await _act(client, await auth_headers("leader1"), case_id, "close")
    assert case["status"] == "closed"

    r = await client.get(f"/api/v1/cases/{case_id}/timeline", headers=await auth_headers("leader1"))
    actions = [a["action"] for a in r.json()["activities"]]
    assert actions == ["report", "register", "dispatch", "acknowledge", "feed_back", "request_check", "check_pass",
                       "close"]  # fmt: skip
    # closed: every action but reopen is a 409
    r = await client.post(f"/api/v1/cases/{case_id}/actions/cancel", json={"note": "x"},
                          headers=await auth_headers("leader1"))  # fmt: skip
    assert r.status_code == 409 and "closed" in r.json()["detail"]


async def test_actions_need_a_token_and_bodies_are_checked(client: AsyncTestClient, auth_headers) -> None:
    r = await client.post("/api/v1/cases/1/actions/register", json={})
    assert r.status_code == 401
    headers = await auth_headers("dispatcher1")
    r = await client.post("/api/v1/cases/1/actions/dispatch", json={"unit_code": 5}, headers=headers)
    assert r.status_code == 400
    r = await client.post("/api/v1/cases/1/actions/dispatch", json={"unit_code": "U01", "surprise": 1}, headers=headers)
    assert r.status_code == 400
    r = await client.get("/api/v1/cases/999999999", headers=headers)
    assert r.status_code == 404
