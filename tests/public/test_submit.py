"""POST /api/v1/public/reports: what a citizen's report writes, and every bad input refused without a write."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from grid_mgmt.public.rules import CODE_ALPHABET
from tests.public.conftest import CLASS, REPORTS, body, case_of, counts, jpeg


async def test_a_json_report_becomes_a_case_waiting_for_verification(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    r = await client.post(REPORTS, json=body(*place, contact_phone="+86 139-1234-5678", consent=True))
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) == {"tracking_code", "token", "status"} and receipt["status"] == "verifying"
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{10}}", receipt["tracking_code"])
    case = await case_of(pg, receipt["tracking_code"])
    assert case["status"] == "verifying" and case["source"] == "citizen" and case["reporter_id"] is None
    assert case["category_code"] == CLASS and case["stage"] == "verify" and case["deadline"] is not None
    assert case["grid_code"] and case["district_code"] == "420323" and case["description"] == "盲道被电动车占压"
    assert case["token_sha256"] == hashlib.sha256(receipt["token"].encode()).hexdigest()
    assert receipt["token"] not in str(dict(case)) and case["channel"] == "web" and case["client_address"]
    contact = await pg.fetchrow("SELECT * FROM case_contact WHERE case_id = $1", case["id"])
    assert contact["phone"] == "13912345678" and contact["email"] is None
    retention = contact["purge_after"] - contact["consent_at"]
    assert retention == dt.timedelta(days=180)
    first = await pg.fetchrow("SELECT * FROM case_activity WHERE case_id = $1 AND seq = 1", case["id"])
    assert first["action"] == "report" and first["actor_role"] == "citizen" and first["actor_id"] is None


async def test_a_multipart_report_with_photos(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    fields = {k: str(v) for k, v in body(*place, contact_email="Li.Lei@Example.CN", consent="on").items()}
    files = [("file", ("a.jpg", jpeg((1, 2, 3)), "image/jpeg")), ("file", ("b.jpg", jpeg((9, 9, 9)), "image/jpeg"))]
    r = await client.post(REPORTS, data=fields, files=files)
    assert r.status_code == 201, r.text
    case = await case_of(pg, r.json()["tracking_code"])
    photos = await pg.fetch("SELECT * FROM attachment WHERE case_id = $1 ORDER BY id", case["id"])
    assert [(p["kind"], p["uploader_id"], p["content_type"]) for p in photos] == [("report", None, "image/jpeg")] * 2
    email = await pg.fetchval("SELECT email FROM case_contact WHERE case_id = $1", case["id"])
    assert email == "Li.Lei@example.cn"


async def test_markup_and_control_characters_are_stored_and_returned_safely(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, file_report: Any
) -> None:
    receipt = await file_report(
        description="井盖<没了> & \"危险\" 'x'\x00\x07\x1b 第二行\n第三行\t!", address="A&B <路口>"
    )
    case = await case_of(pg, receipt["tracking_code"])
    expected = "井盖<没了> & \"危险\" 'x' 第二行\n第三行\t!"
    assert case["description"] == expected and case["address"] == "A&B <路口>"
    r = await client.get(f"{REPORTS}/{receipt['tracking_code']}", headers={"X-Report-Token": receipt["token"]})
    assert r.status_code == 200, r.text
    assert r.json()["own"]["description"] == expected and r.json()["place"]["address"] == "A&B <路口>"


@pytest.mark.parametrize(
    ("change", "status", "field", "words"),
    [
        ({"category_code": "X9999"}, 422, "category_code", "not a class citizens can report"),
        ({"category_code": "C0116"}, 422, "category_code", "not a class citizens can report"),  # not public
        ({"lon": 116.4, "lat": 39.9}, 422, "lon", "outside the managed area"),  # Beijing
        ({"description": "x" * 4001}, 422, "description", "4,001 characters"),
        ({"description": "x" * 4000}, 201, None, None),
        ({"description": "   "}, 422, "description", "empty"),
        ({"description": ""}, 422, "description", "empty"),
        ({"crs": "epsg:3857"}, 422, "crs", "unknown crs"),
        ({"contact_phone": "13912345678"}, 422, "consent", "without consent"),
        ({"contact_email": "a@b.cn", "consent": False}, 422, "consent", "without consent"),
        ({"contact_phone": "12345", "consent": True}, 422, "contact_phone", "not a phone number"),
        ({"contact_phone": "1391234567a", "consent": True}, 422, "contact_phone", "not a phone number"),
        ({"contact_email": "not-an-email", "consent": True}, 422, "contact_email", "not an e-mail"),
        ({"contact_email": "a@b", "consent": True}, 422, "contact_email", "not an e-mail"),
        ({"contact_email": "<a@b.cn>", "consent": True}, 422, "contact_email", "not an e-mail"),
        ({"contact_name": "张三", "consent": True}, 422, "contact_phone", "add contact_phone"),
        ({"lon": "east"}, 400, None, "lon"),
        ({"surprise": 1}, 400, None, "surprise"),
    ],
)
async def test_bad_reports_are_refused_without_a_write(
    client: AsyncTestClient[Any],
    pg: asyncpg.Connection,
    place: tuple[float, float],
    change: dict[str, Any],
    status: int,
    field: str | None,
    words: str | None,
) -> None:
    before = await counts(pg)
    r = await client.post(REPORTS, json=body(*place) | change)
    assert r.status_code == status, r.text
    if status == 201:
        return
    problem = r.json()
    if field is not None:
        assert problem["extra"]["field"] == field, problem
    assert words is not None and words in problem["detail"], problem
    assert await counts(pg) == before


async def test_swapped_coordinates_are_named(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    lon, lat = place
    r = await client.post(REPORTS, json=body(lat, lon))
    assert r.status_code == 422 and "swapped" in r.json()["detail"], r.text


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
async def test_not_a_number_is_refused(client: AsyncTestClient[Any], place: tuple[float, float], value: str) -> None:
    fields = {k: str(v) for k, v in body(*place).items()} | {"lat": value}
    r = await client.post(REPORTS, data=fields, files=[("file", ("a.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 422, r.text
    assert r.json()["extra"]["field"] == "lat"
    r = await client.post(
        REPORTS, content=f'{{"category_code": "{CLASS}", "lon": {place[0]}, "lat": NaN, "description": "x"}}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 400, r.text  # not JSON at all


async def test_a_photo_that_lies_about_its_type(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    before = await counts(pg)
    fields = {k: str(v) for k, v in body(*place).items()}
    fake = b"<html><body>not a photo</body></html>"
    r = await client.post(REPORTS, data=fields, files=[("file", ("photo.jpg", fake, "image/jpeg"))])
    assert r.status_code == 415 and "HTML" in r.json()["detail"], r.text
    truncated = jpeg(size=(200, 200))[:300]
    r = await client.post(REPORTS, data=fields, files=[("file", ("photo.jpg", truncated, "image/jpeg"))])
    assert r.status_code == 422 and r.json()["extra"]["field"] == "file", r.text
    assert await counts(pg) == before


async def test_too_many_photos(client: AsyncTestClient[Any], place: tuple[float, float]) -> None:
    fields = {k: str(v) for k, v in body(*place).items()}
    files = [("file", (f"{i}.jpg", jpeg((i, i, i)), "image/jpeg")) for i in range(4)]
    r = await client.post(REPORTS, data=fields, files=files)
    assert r.status_code == 422 and r.json()["extra"]["field"] == "photos", r.text


async def test_a_body_over_the_limit_is_413(
    client: AsyncTestClient[Any], pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    before = await counts(pg)
    huge = body(*place, description="x" * 70_000)
    r = await client.post(REPORTS, json=huge)
    assert r.status_code == 413, r.text
    assert "GRID_PUBLIC_MAX_BODY" in r.json()["detail"]
    fields = {k: str(v) for k, v in huge.items()}
    r = await client.post(REPORTS, data=fields, files=[("file", ("a.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 413, r.text
    r = await client.post(f"{REPORTS}/0000000000/comments", json={"text": "y" * 70_000})
    assert r.status_code == 413, r.text
    assert await counts(pg) == before


async def test_other_content_types_are_415(client: AsyncTestClient[Any], place: tuple[float, float]) -> None:
    r = await client.post(REPORTS, content=b"category_code=E0506", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text


async def test_the_routes_are_documented(client: AsyncTestClient[Any]) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    report = paths[REPORTS]["post"]
    assert set(report["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"201", "400", "413", "415", "422", "429"} <= set(report["responses"])
    rating = paths[f"{REPORTS}/{{code}}/rating"]["post"]
    assert {"X-Report-Token", "token"} <= {p["name"] for p in rating["parameters"]}
    assert {"400", "403", "404", "409", "413", "429"} <= set(rating["responses"])
    assert {"401", "403", "404"} <= set(paths["/api/v1/cases/{case_id}/contact"]["get"]["responses"])
    assert "class" in {p["name"] for p in paths["/api/v1/public/nearby"]["get"]["parameters"]}
