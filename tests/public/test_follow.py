"""Following a report: the public view without personal data, the own view with the token, comments, photos,
rating after closure, reopening within the window."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.public.conftest import REPORTS, case_of, close_case, jpeg

PERSONAL = ("13912345678", "li@example.cn", "李雷", "actor", "username", "reporter_id", "note", "user")


@pytest.fixture
async def mine(file_report: Any) -> dict[str, Any]:
    """A report with a contact (the receipt: tracking_code, token, status)."""
    receipt: dict[str, Any] = await file_report(
        contact_phone="13912345678", contact_email="li@example.cn", contact_name="李雷", consent=True
    )
    return receipt


def own(receipt: dict[str, Any]) -> dict[str, str]:
    return {"X-Report-Token": receipt["token"]}


async def test_the_public_view_shows_no_personal_data(client: AsyncTestClient[Any], mine: dict[str, Any]) -> None:
    r = await client.get(f"{REPORTS}/{mine['tracking_code']}")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["status"] == "verifying" and view["category_code"] == "E0506" and view["category_name"]
    assert view["place"]["grid_code"] and view["place"]["community"] and view["own"] is None
    assert [s["step"] for s in view["timeline"]] == ["received"]
    assert view["can_rate"] is False and view["can_reopen_until"] is None
    text = r.text
    for secret in (*PERSONAL, mine["token"], "盲道被电动车占压"):
        assert secret not in text, secret


async def test_the_own_view_by_header_or_query_and_codes_as_typed(
    client: AsyncTestClient[Any], mine: dict[str, Any]
) -> None:
    code = mine["tracking_code"]
    by_header = await client.get(f"{REPORTS}/{code}", headers=own(mine))
    by_query = await client.get(f"{REPORTS}/{code}", params={"token": mine["token"]})
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json() == by_query.json()
    mine_view = by_header.json()["own"]
    assert mine_view["description"] == "盲道被电动车占压"
    assert mine_view["contact"]["phone"] == "13912345678" and mine_view["contact"]["name"] == "李雷"
    typed = f"{code[:5].lower()}-{code[5:]}".replace("0", "o")
    assert (await client.get(f"{REPORTS}/{typed}")).status_code == 200


async def test_wrong_token_is_403_and_unknown_code_is_404(client: AsyncTestClient[Any], mine: dict[str, Any]) -> None:
    code = mine["tracking_code"]
    wrong = {"X-Report-Token": mine["token"][:-1] + ("A" if mine["token"][-1] != "A" else "B")}
    r = await client.get(f"{REPORTS}/{code}", headers=wrong)
    assert r.status_code == 403 and "wrong token" in r.json()["detail"]
    for path, payload in (("comments", {"text": "x"}), ("rating", {"score": 5}), ("reopen", {"reason": "x"})):
        r = await client.post(f"{REPORTS}/{code}/{path}", json=payload, headers=wrong)
        assert r.status_code == 403, (path, r.text)
        r = await client.post(f"{REPORTS}/{code}/{path}", json=payload)  # no token at all
        assert r.status_code == 403 and "X-Report-Token" in r.json()["detail"], (path, r.text)
    r = await client.post(f"{REPORTS}/{code}/photos", files=[("file", ("a.jpg", jpeg(), "image/jpeg"))], headers=wrong)
    assert r.status_code == 403
    for unknown in ("ZZZZZZZZZZ", "short", "not-a-code-at-all-really"):
        r = await client.get(f"{REPORTS}/{unknown}")
        assert r.status_code == 404, (unknown, r.text)


async def test_comments_and_photos_reach_the_case(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, mine: dict[str, Any], auth_headers: Any
) -> None:
    code = mine["tracking_code"]
    r = await client.post(f"{REPORTS}/{code}/comments", json={"text": "电动车是<白色>的 & 很多\x01"}, headers=own(mine))
    assert r.status_code == 201, r.text
    assert r.json()["text"] == "电动车是<白色>的 & 很多"
    r = await client.post(f"{REPORTS}/{code}/comments", json={"text": "  "}, headers=own(mine))
    assert r.status_code == 422 and r.json()["extra"]["field"] == "text"
    photo = jpeg((200, 10, 10))
    files = [("file", ("a.jpg", photo, "image/jpeg"))]
    r = await client.post(f"{REPORTS}/{code}/photos", files=files, headers=own(mine))
    assert r.status_code == 201, r.text
    [added] = r.json()
    again = await client.post(f"{REPORTS}/{code}/photos", files=files, headers=own(mine))
    assert again.status_code == 201 and again.json()[0]["id"] == added["id"]  # the same photo is stored once
    r = await client.post(f"{REPORTS}/{code}/photos", files=[("file", ("x.jpg", b"GIF89a....", "image/jpeg"))],
                          headers=own(mine))  # fmt: skip
    assert r.status_code == 415

    view = (await client.get(f"{REPORTS}/{code}", headers=own(mine))).json()
    assert [c["text"] for c in view["own"]["comments"]] == ["电动车是<白色>的 & 很多"]
    assert [p["id"] for p in view["own"]["photos"]] == [added["id"]]
    assert [s["step"] for s in view["timeline"]] == ["received", "comment", "comment", "comment"]
    r = await client.get(f"{REPORTS}/{code}/photos/{added['id']}", headers=own(mine))
    assert r.status_code == 200 and r.content == photo and r.headers["content-type"] == "image/jpeg"
    assert (await client.get(f"{REPORTS}/{code}/photos/{added['id']}")).status_code == 403

    case = await case_of(pg, code)
    r = await client.get(f"/api/v1/cases/{case['id']}/timeline", headers=await auth_headers("leader1"))
    rows = r.json()["activities"]
    assert [(a["action"], a["actor_role"]) for a in rows[1:]] == [
        ("citizen_comment", "citizen"), ("citizen_photo", "citizen"), ("citizen_photo", "citizen")
    ]  # fmt: skip
    assert rows[1]["note"] == "电动车是<白色>的 & 很多"
    events = await pg.fetch(
        "SELECT topic, payload::text AS body FROM outbox WHERE case_id = $1 ORDER BY id", case["id"]
    )
    assert [e["topic"] for e in events] == ["case.citizen_comment", "case.citizen_photo", "case.citizen_photo"]
    assert not any("白色" in e["body"] or "13912345678" in e["body"] for e in events)  # the centre reads the case


async def test_rating_only_after_closure_and_once(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, mine: dict[str, Any]
) -> None:
    code = mine["tracking_code"]
    r = await client.post(f"{REPORTS}/{code}/rating", json={"score": 5}, headers=own(mine))
    assert r.status_code == 409 and "not closed" in r.json()["detail"], r.text
    for bad in (0, 6, -1, 4.5, "five", None):
        r = await client.post(f"{REPORTS}/{code}/rating", json={"score": bad}, headers=own(mine))
        assert r.status_code == 400 and "score" in r.text, (bad, r.text)
    case = await case_of(pg, code)
    await close_case(pg, case["id"])
    r = await client.post(f"{REPORTS}/{code}/rating", json={"score": 4, "comment": "修好了 <赞>"}, headers=own(mine))
    assert r.status_code == 200, r.text
    assert r.json()["rating"] == 4 and r.json()["can_rate"] is False
    assert r.json()["timeline"][-1]["step"] == "rated"
    stored = await case_of(pg, code)
    assert (stored["rating"], stored["rating_comment"]) == (4, "修好了 <赞>")
    r = await client.post(f"{REPORTS}/{code}/rating", json={"score": 1}, headers=own(mine))
    assert r.status_code == 409 and "rated already" in r.json()["detail"]
    assert (await case_of(pg, code))["rating"] == 4
    r = await client.post(f"{REPORTS}/{code}/comments", json={"text": "还有"}, headers=own(mine))
    assert r.status_code == 409 and "reopen" in r.json()["detail"]


async def test_reopen_within_the_window_goes_through_the_lifecycle(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, mine: dict[str, Any]
) -> None:
    code = mine["tracking_code"]
    r = await client.post(f"{REPORTS}/{code}/reopen", json={"reason": "还是坏的"}, headers=own(mine))
    assert r.status_code == 409 and "not closed" in r.json()["detail"]
    case = await case_of(pg, code)
    await close_case(pg, case["id"], days_ago=6.5)
    view = (await client.get(f"{REPORTS}/{code}")).json()
    assert view["can_reopen_until"] is not None and view["can_rate"] is True
    r = await client.post(f"{REPORTS}/{code}/reopen", json={"reason": ""}, headers=own(mine))
    assert r.status_code == 422 and r.json()["extra"]["field"] == "reason"
    r = await client.post(f"{REPORTS}/{code}/reopen", json={"reason": "还是坏的"}, headers=own(mine))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "registered" and r.json()["timeline"][-1]["step"] == "reopened"
    after = await case_of(pg, code)
    assert after["status"] == "registered" and after["closed_at"] is None and after["reopen_count"] == 1
    last = await pg.fetchrow("SELECT * FROM case_activity WHERE case_id = $1 ORDER BY seq DESC LIMIT 1", case["id"])
    assert (last["action"], last["actor_role"], last["actor_id"], last["note"]) == (
        "reopen",
        "citizen",
        None,
        "还是坏的",
    )


async def test_reopen_after_the_window_is_409(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, mine: dict[str, Any]
) -> None:
    code = mine["tracking_code"]
    case = await case_of(pg, code)
    await close_case(pg, case["id"], days_ago=7.01)
    assert (await client.get(f"{REPORTS}/{code}")).json()["can_reopen_until"] is None
    r = await client.post(f"{REPORTS}/{code}/reopen", json={"reason": "还是坏的"}, headers=own(mine))
    assert r.status_code == 409 and "within 7 days" in r.json()["detail"], r.text
    assert (await case_of(pg, code))["status"] == "closed"
