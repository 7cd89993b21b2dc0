"""GET requests, requests/{id} and tokens/{token}: which cases, their fields in both formats, the extensions, and
every bad parameter (400) — an empty parameter counts as absent."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from grid_mgmt.open311.schemas import ServiceRequestRead
from tests.open311.conftest import V2, VISIBLE, WINDOW, XMLISH, World, errors_of, no_personal_data, parse_xml

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


async def listed(client: AsyncTestClient, world: World, fmt: str = "json", **params: Any) -> Any:
    """The answer of GET requests.<fmt> (JSON decoded, XML parsed), which must be 200."""
    r = await client.get(f"{V2}/requests.{fmt}", params=params)
    assert r.status_code == 200, r.text
    no_personal_data(r.text)
    return r.json() if fmt == "json" else parse_xml(r.content)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["service_request_id"] for i in items]


async def test_the_cases_of_public_classes_newest_first(client: AsyncTestClient, world: World) -> None:
    items = await listed(client, world, **WINDOW)
    assert ids(items) == world.nos(*VISIBLE)  # not merged, not the non-public class, not the September one
    msgspec.convert(items, list[ServiceRequestRead], strict=True)  # the documented shape, string ids
    handling = items[0]
    assert set(handling) == set(ServiceRequestRead.__struct_fields__) - {"extended_attributes", "notes"}
    assert handling["status"] == "open" and handling["service_code"] == "E0102"
    assert handling["agency_responsible"] == world.agency and handling["service_name"] == world.e0102[0]
    assert handling["requested_datetime"] == "2022-01-20T02:00:00Z"
    assert handling["updated_datetime"] == "2022-01-20T04:00:00Z"
    assert handling["expected_datetime"] == "2022-01-25T02:00:00Z"  # the deadline
    lon, lat = world.point_a
    assert handling["lat"] == pytest.approx(lat, abs=1e-6) and handling["long"] == pytest.approx(lon, abs=1e-6)
    by_id = {i["service_request_id"]: i for i in items}
    statuses = {name: by_id[world.case_no[name]]["status"] for name in VISIBLE}
    assert statuses == {"handling": "open", "closed": "closed", "rejected": "closed", "xmlish": "open",
                        "far": "open", "shelved": "open"}  # fmt: skip
    assert by_id[world.case_no["rejected"]]["status_notes"].startswith("Not accepted")
    assert by_id[world.case_no["closed"]]["agency_responsible"] == world.agency
    assert by_id[world.case_no["rejected"]]["agency_responsible"] is None
    assert all(ISO.fullmatch(i["requested_datetime"]) for i in items)


async def test_extensions_add_the_detailed_status_and_a_public_timeline(client: AsyncTestClient, world: World) -> None:
    items = await listed(client, world, **WINDOW, extensions="true")
    handling = items[0]
    assert handling["extended_attributes"] == {
        "detailed_status": "handling", "stage": "handle", "urgency": "urgent", "source": "worker",
        "group": world.e0102[1], "overdue": True, "closed_datetime": None,
    }  # fmt: skip
    notes = [(n["type"], n["summary"]) for n in handling["notes"]]
    assert notes == [
        ("opened", "Request received"),
        ("accepted", "Registered"),
        ("assigned", f"Sent to {world.agency}"),
        ("in_progress", f"Taken up by {world.agency}"),
        ("overdue", "Past its deadline"),
    ]  # the urging stays internal; typed notes and people never appear
    assert all(ISO.fullmatch(n["datetime"]) for n in handling["notes"])
    closed = next(i for i in items if i["service_request_id"] == world.case_no["closed"])
    assert closed["extended_attributes"]["closed_datetime"] == "2022-01-19T02:00:00Z"
    assert closed["extended_attributes"]["overdue"] is False and closed["notes"] == []
    msgspec.convert(items, list[ServiceRequestRead], strict=True)
    root = await listed(client, world, "xml", **WINDOW, extensions="true")
    first = root.find("request")
    assert first is not None and first.findtext("extended_attributes/detailed_status") == "handling"
    assert [n.findtext("type") for n in first.iterfind("notes/note")] == [t for t, _ in notes]


async def test_xml_is_well_formed_with_markup_and_control_characters(client: AsyncTestClient, world: World) -> None:
    root = await listed(client, world, "xml", **WINDOW)
    assert root.tag == "service_requests" and [r.findtext("service_request_id") for r in root] == world.nos(*VISIBLE)
    xmlish = root.find(f"request[service_request_id='{world.case_no['xmlish']}']")
    assert xmlish is not None
    assert xmlish.findtext("description") == XMLISH.replace("\x01", "").replace("\x1f", "")  # round trip
    assert xmlish.findtext("address") == "A&B <路口> ]]>"
    assert xmlish.find("media_url") is not None and xmlish.findtext("media_url") == ""  # null: an empty element
    json_item = next(i for i in await listed(client, world, **WINDOW) if i["service_request_id"] in xmlish.itertext())
    assert json_item["description"] == XMLISH  # JSON escapes the control characters


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service_code": "E0102"}, ["handling", "shelved"]),
        ({"service_code": "E0102,E0105"}, ["handling", "far", "shelved"]),
        ({"status": "closed"}, ["closed", "rejected"]),
        ({"status": "open"}, ["handling", "xmlish", "far", "shelved"]),
        ({"status": "open,closed"}, VISIBLE),
        ({"page_size": "2"}, ["handling", "closed"]),
        ({"page_size": "2", "page": "2"}, ["rejected", "xmlish"]),
        ({"page_size": "4", "page": "3"}, []),
        ({"start_date": "2022-01-17", "end_date": "2022-01-18"}, ["closed", "rejected"]),  # a bare end date: all of it
        ({"start_date": "2022-01-18T02:00:00Z"}, ["handling", "closed"]),  # 10:00 Shanghai
    ],
)
async def test_filters(client: AsyncTestClient, world: World, params: dict[str, str], expected: list[str]) -> None:
    items = await listed(client, world, **{**WINDOW, **params})
    assert ids(items) == world.nos(*expected)


async def test_place_filters(client: AsyncTestClient, world: World) -> None:
    lon, lat = world.point_b
    near = await listed(client, world, **WINDOW, lat=str(lat), long=str(lon), radius="50")
    assert ids(near) == world.nos("rejected", "far", "shelved")
    box = f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    assert ids(await listed(client, world, **WINDOW, bbox=box)) == world.nos("rejected", "far", "shelved")
    default_radius = await listed(client, world, **WINDOW, lat=str(lat), long=str(lon))  # 1,000 m
    assert set(world.nos("rejected", "far", "shelved")) <= set(ids(default_radius))


async def test_ids_override_the_other_parameters(client: AsyncTestClient, world: World) -> None:
    wanted = world.nos("old", "closed", "merged", "hidden")
    items = await listed(client, world, service_request_id=",".join(wanted), status="open", service_code="E0105")
    assert sorted(ids(items)) == sorted(world.nos("old", "closed"))  # merged and non-public stay hidden


async def test_without_dates_the_last_90_days(client: AsyncTestClient, world: World, pg: Any) -> None:
    await pg.execute("UPDATE cases SET received_at = now() - interval '89 days' WHERE id = $1", world.ids["far"])
    try:
        got = ids(await listed(client, world, page_size="1000"))
        assert world.case_no["far"] in got and not set(world.nos("handling", "old")) & set(got)
        empty = ids(await listed(client, world, start_date="", end_date="", status="", service_code="", page=""))
        assert world.case_no["far"] in empty  # empty parameters are absent
    finally:
        await pg.execute("UPDATE cases SET received_at = $2 WHERE id = $1", world.ids["far"], _received(world, "far"))


def _received(world: World, name: str) -> Any:
    from tests.open311.conftest import CASES

    return CASES[name]["received"]


async def test_updated_after_lists_recent_changes_whenever_received(
    client: AsyncTestClient, world: World, pg: Any
) -> None:
    await pg.execute("UPDATE cases SET updated_at = now() WHERE id = $1", world.ids["old"])
    try:
        since = await pg.fetchval("SELECT to_char(now() - interval '1 minute', 'YYYY-MM-DD\"T\"HH24:MI:SSOF')")
        got = ids(await listed(client, world, updated_after=since + ":00"))
        assert world.case_no["old"] in got and world.case_no["handling"] not in got
    finally:
        await pg.execute("UPDATE cases SET updated_at = received_at + interval '2 hours' WHERE id = $1",
                         world.ids["old"])  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_date": "2022-01-01", "end_date": "2022-04-02"}, "end_date"),  # 91 days
        ({"start_date": "2022-02-01", "end_date": "2022-01-01"}, "end_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2022-13-01"}, "end_date"),
        ({"updated_after": "2022-01-01T25:00"}, "updated_after"),
        ({"status": "pending"}, "status"),
        ({"service_code": "bins"}, "service_code"),
        ({"service_code": "C0116"}, "service_code"),  # a class citizens may not report
        ({"service_request_id": "1;DROP"}, "service_request_id"),
        ({"bbox": "110.1,32.1,110.2"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "110.3,32.1,110.2,32.2"}, "bbox"),
        ({"bbox": "100,20,110,30"}, "bbox"),  # larger than GRID_MAX_BBOX_DEG
        ({"lat": "32.2", "long": "110.2", "radius": "50000"}, "radius"),
        ({"lat": "32.2", "long": "110.2", "radius": "-1"}, "radius"),
        ({"lat": "32.2"}, "long"),
        ({"radius": "100"}, "radius"),
        ({"lat": "north", "long": "110.2"}, "lat"),
        ({"lat": "nan", "long": "110.2"}, "lat"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page": "two"}, "page"),
        ({"extensions": "maybe"}, "extensions"),
    ],
)
async def test_bad_parameters_are_400(
    client: AsyncTestClient, world: World, params: dict[str, str], field: str
) -> None:
    r = await client.get(f"{V2}/requests.json", params=params)
    assert r.status_code == 400, r.text
    assert field in errors_of(r)[0]["description"]
    r = await client.get(f"{V2}/requests.xml", params=params)
    assert r.status_code == 400 and parse_xml(r.content).findtext("error/code") == "400"


async def test_one_request(client: AsyncTestClient, world: World) -> None:
    r = await client.get(f"{V2}/requests/{world.case_no['handling']}.json")
    assert r.status_code == 200
    (item,) = r.json()
    assert item["service_request_id"] == world.case_no["handling"] and "notes" not in item
    no_personal_data(r.text)
    r = await client.get(f"{V2}/requests/{world.case_no['handling']}.json", params={"extensions": "true"})
    assert len(r.json()[0]["notes"]) == 5
    root = parse_xml((await client.get(f"{V2}/requests/{world.case_no['old']}.xml")).content)
    assert root.tag == "service_requests" and root.findtext("request/service_request_id") == world.case_no["old"]
    for name in ("merged", "hidden"):
        r = await client.get(f"{V2}/requests/{world.case_no[name]}.json")
        assert r.status_code == 404 and "no service request" in errors_of(r)[0]["description"]
    for unknown in ("99999999999999", "x!", f"{world.case_no['old']},{world.case_no['closed']}", "%20"):
        assert (await client.get(f"{V2}/requests/{unknown}.json")).status_code in (400, 404)
    assert (
        await client.get(f"{V2}/requests/{world.case_no['old']}.json", params={"extensions": "y"})
    ).status_code == 400


async def test_tokens(client: AsyncTestClient, world: World) -> None:
    r = await client.get(f"{V2}/tokens/{world.tracking_code}.json")
    assert r.status_code == 200
    assert r.json() == [{"service_request_id": world.case_no["xmlish"], "token": world.tracking_code}]
    lower = await client.get(f"{V2}/tokens/{world.tracking_code.lower()}.xml")
    assert parse_xml(lower.content).findtext("request/service_request_id") == world.case_no["xmlish"]
    merged = (await client.get(f"{V2}/tokens/{world.merged_tracking_code}.json")).json()
    assert merged[0]["service_request_id"] == world.case_no["handling"]  # a duplicate follows the case it repeats
    for token in ("ZZZZZZZZZZ", "short", "%3Cscript%3E"):
        r = await client.get(f"{V2}/tokens/{token}.json")
        assert r.status_code == 404 and errors_of(r)
