"""POST requests: form-encoded, JSON and multipart; what it files (a citizen's report through the public service);
every refusal (403, 400, 429) in the requested format and without a write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.open311.rules import key_digest
from seeds.open311 import DEMO_KEY
from tests.open311.conftest import V2, XMLISH, errors_of, no_personal_data, parse_xml
from tests.public.conftest import counts, jpeg


def form(place: tuple[float, float], **over: Any) -> dict[str, Any]:
    return {"api_key": DEMO_KEY, "service_code": "E0103", "lat": str(place[1]), "long": str(place[0]),
            "description": "路边堆放建筑垃圾", **over}  # fmt: skip


async def filed(pg: asyncpg.Connection, case_no: str) -> asyncpg.Record:
    row = await pg.fetchrow(
        "SELECT c.*, p.tracking_code, p.channel, p.api_key_id, p.attributes, p.client_address FROM cases c"
        " JOIN public_report p ON p.case_id = c.id WHERE c.case_no = $1",
        case_no,
    )
    assert row is not None
    return row


async def test_a_form_encoded_request_is_filed_as_a_citizens_report(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    data = form(place, service_code="E0401", **{"attribute[diameter_m]": "1.5", "attribute[traffic_blocked]": "yes"},
                email="Han.Meimei@Example.CN", first_name="梅梅", last_name="韩", address_string="解放路口",
                device_id="phone-1", account_id="acc-9")  # fmt: skip
    r = await client.post(f"{V2}/requests.json", data=data)
    assert r.status_code == 201, r.text
    (posted,) = r.json()
    assert set(posted) == {"service_request_id", "token", "service_notice", "account_id"}
    case = await filed(pg, posted["service_request_id"])
    assert case["status"] == "verifying" and case["source"] == "citizen" and case["category_code"] == "E0401"
    assert case["reporter_id"] is None and case["address"] == "解放路口" and case["grid_code"]
    assert case["channel"] == "open311" and case["tracking_code"] == posted["token"]
    demo = await pg.fetchval("SELECT id FROM open311_key WHERE key_sha256 = $1", key_digest(DEMO_KEY))
    assert case["api_key_id"] == demo and json.loads(case["attributes"]) == {
        "diameter_m": "1.5",
        "traffic_blocked": "yes",
    }
    contact = await pg.fetchrow("SELECT * FROM case_contact WHERE case_id = $1", case["id"])
    assert contact["email"] == "Han.Meimei@example.cn" and contact["name"] == "韩梅梅"
    assert await pg.fetchval("SELECT last_used_at IS NOT NULL FROM open311_key WHERE id = $1", demo)
    shown = await client.get(f"{V2}/requests/{posted['service_request_id']}.json", params={"extensions": "true"})
    assert shown.status_code == 200 and shown.json()[0]["extended_attributes"]["detailed_status"] == "verifying"
    assert "Han.Meimei" not in shown.text and "梅" not in shown.text
    token = await client.get(f"{V2}/tokens/{posted['token']}.json")
    assert token.json() == [{"service_request_id": posted["service_request_id"], "token": posted["token"]}]


async def test_json_and_xml(client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float]) -> None:
    body = {**form(place), "lat": place[1], "long": place[0], "attribute": {"plate": "鄂C12345"},
            "service_code": "E0503", "phone": "13800001111"}  # fmt: skip
    r = await client.post(f"{V2}/requests.xml", json=body)
    assert r.status_code == 201, r.text
    root = parse_xml(r.content)
    request_id = root.findtext("request/service_request_id")
    assert root.tag == "service_requests" and request_id and root.findtext("request/token")
    case = await filed(pg, request_id)
    assert json.loads(case["attributes"]) == {"plate": "鄂C12345"} and case["category_code"] == "E0503"
    assert await pg.fetchval("SELECT phone FROM case_contact WHERE case_id = $1", case["id"]) == "13800001111"


async def test_markup_and_control_characters_round_trip_as_well_formed_xml(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    r = await client.post(f"{V2}/requests.json", data=form(place, description=XMLISH, address_string="A&B <x>"))
    assert r.status_code == 201, r.text
    request_id = r.json()[0]["service_request_id"]
    root = parse_xml((await client.get(f"{V2}/requests/{request_id}.xml")).content)
    assert root.findtext("request/description") == XMLISH.replace("\x01", "").replace("\x1f", "")
    assert root.findtext("request/address") == "A&B <x>"


async def test_multipart_with_a_photo(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    r = await client.post(f"{V2}/requests.json", data=form(place), files=[("media", ("p.jpg", jpeg(), "image/jpeg"))])
    assert r.status_code == 201, r.text
    case = await filed(pg, r.json()[0]["service_request_id"])
    kinds = await pg.fetch("SELECT kind, uploader_id FROM attachment WHERE case_id = $1", case["id"])
    assert [(k["kind"], k["uploader_id"]) for k in kinds] == [("report", None)]


async def test_description_defaults_to_the_service_name(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float]
) -> None:
    r = await client.post(f"{V2}/requests.json", data=form(place, description="", email=""))
    assert r.status_code == 201, r.text
    case = await filed(pg, r.json()[0]["service_request_id"])
    assert case["description"] == await pg.fetchval("SELECT name FROM category WHERE code = 'E0103'")
    assert await pg.fetchval("SELECT count(*) FROM case_contact WHERE case_id = $1", case["id"]) == 0


@pytest.mark.parametrize(
    ("over", "status", "words"),
    [
        ({"api_key": None}, 403, "api_key is missing"),
        ({"api_key": ""}, 403, "api_key is missing"),
        ({"api_key": "not-a-key"}, 403, "not valid"),
        ({"service_code": None}, 400, "service_code is missing"),
        ({"service_code": "E9999"}, 400, "no service"),
        ({"service_code": "C0116"}, 400, "no service"),  # a class citizens may not report
        ({"lat": None, "long": None, "address_string": "解放路"}, 400, "lat and long are missing"),
        ({"lat": "thirty"}, 400, "lat"),
        ({"lat": "32.2", "long": None}, 400, "long"),
        ({"lat": "39.9", "long": "116.4"}, 400, ""),  # Beijing: outside the city
        ({"description": "x" * 4001}, 400, "4,001"),
        ({"service_code": "E0401", "attribute[traffic_blocked]": "yes"}, 400, "attribute[diameter_m]"),  # required
        (
            {"service_code": "E0401", "attribute[diameter_m]": "big", "attribute[traffic_blocked]": "yes"},
            400,
            "attribute[diameter_m]",
        ),
        (
            {"service_code": "E0401", "attribute[diameter_m]": "2", "attribute[traffic_blocked]": "maybe"},
            400,
            "attribute[traffic_blocked]",
        ),
        ({"attribute[colour]": "red"}, 400, "attribute[colour]"),
        ({"email": "not an e-mail"}, 400, "email"),
        ({"phone": "12"}, 400, "phone"),
        ({"first_name": "李雷"}, 400, ""),  # a name alone: nobody to call back
    ],
)
async def test_refused_without_a_write(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float], over: dict[str, Any], status: int,
    words: str,
) -> None:  # fmt: skip
    data = {k: v for k, v in {**form(place), **over}.items() if v is not None}
    before = await counts(pg)
    r = await client.post(f"{V2}/requests.json", data=data)
    assert r.status_code == status, r.text
    description = errors_of(r)[0]["description"]
    assert words in description and "contact_" not in description and "category_code" not in description
    r = await client.post(f"{V2}/requests.xml", data=data)
    assert r.status_code == status and parse_xml(r.content).findtext("error/code") == str(status)
    assert await counts(pg) == before


async def test_a_revoked_key_is_403(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float], make_key: Callable[..., Any],
    auth_headers: Callable[..., Any],
) -> None:  # fmt: skip
    made = await make_key("soon revoked")
    assert (await client.post(f"{V2}/requests.json", data=form(place, api_key=made["key"]))).status_code == 201
    r = await client.post(f"/api/v1/open311/keys/{made['id']}/revoke", headers=await auth_headers("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    before = await counts(pg)
    r = await client.post(f"{V2}/requests.json", data=form(place, api_key=made["key"]))
    assert r.status_code == 403 and "revoked" in errors_of(r)[0]["description"]
    assert await counts(pg) == before


async def test_the_api_key_may_come_in_the_query(client: AsyncTestClient, place: tuple[float, float]) -> None:
    data = form(place)
    del data["api_key"]
    r = await client.post(f"{V2}/requests.json", params={"api_key": DEMO_KEY}, data=data)
    assert r.status_code == 201, r.text


async def test_bodies_that_are_not_a_form(client: AsyncTestClient, place: tuple[float, float]) -> None:
    for content, kind in ((b"[1, 2]", "application/json"), (b"{nope", "application/json"),
                          (b"<request/>", "text/xml")):  # fmt: skip
        r = await client.post(f"{V2}/requests.json", content=content, headers={"Content-Type": kind})
        assert r.status_code == 400, r.text
        errors_of(r)


async def test_posts_per_api_key_are_limited(
    client: AsyncTestClient, place: tuple[float, float], app: Litestar, make_key: Callable[..., Any]
) -> None:
    from dataclasses import replace

    made = await make_key("busy client")
    before = app.state.settings
    app.state.settings = replace(before, open311_key_posts_per_hour=1)
    try:
        assert (await client.post(f"{V2}/requests.json", data=form(place, api_key=made["key"]))).status_code == 201
        r = await client.post(f"{V2}/requests.xml", data=form(place, api_key=made["key"]))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "api_key" in (parse_xml(r.content).findtext("error/description") or "")
    finally:
        app.state.settings = before


async def test_answers_never_carry_personal_data(client: AsyncTestClient, place: tuple[float, float]) -> None:
    r = await client.post(f"{V2}/requests.json", data=form(place, phone="13912345678", first_name="李雷"))
    assert r.status_code == 201
    request_id = r.json()[0]["service_request_id"]
    for path in (f"requests/{request_id}.json", f"requests/{request_id}.xml"):
        shown = await client.get(f"{V2}/{path}", params={"extensions": "true"})
        no_personal_data(shown.text)


async def test_an_open311_server_is_not_held_to_one_citizens_address_limit(
    client: AsyncTestClient, pg: asyncpg.Connection, place: tuple[float, float], app: Litestar
) -> None:
    """One 311 server speaks for many citizens from one address: its key is limited, not its address."""
    per_address = app.state.settings.public_reports_per_address
    codes = []
    for n in range(per_address + 2):
        r = await client.post(f"{V2}/requests.json", data=form(place, description=f"第 {n} 件"))
        assert r.status_code == 201, r.text
        codes.append(r.json()[0]["service_request_id"])
    assert await pg.fetchval("SELECT count(*) FROM cases WHERE case_no = ANY($1::text[])", codes) == per_address + 2
    web = {"category_code": "E0103", "lon": place[0], "lat": place[1], "description": "路边堆放建筑垃圾"}
    statuses = [(await client.post("/api/v1/public/reports", json=web)).status_code for _ in range(per_address + 1)]
    assert statuses[-1] == 429  # the same address on the public form is still limited
