"""GET /api/v1/cases: each filter, the sort orders, keyset pages, the GeoJSON variant, scope and bad parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.search.conftest import MONTH_FROM, MONTH_TO, World

Headers = Callable[..., Awaitable[dict[str, str]]]
MONTH = {"received_from": MONTH_FROM, "received_to": MONTH_TO}


async def listed(client: AsyncTestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every case of the package's month that the list returns with these parameters (all pages)."""
    query = {**MONTH, "limit": 500, **params}
    items: list[dict[str, Any]] = []
    while True:
        r = await client.get("/api/v1/cases", params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        if body["next_cursor"] is None:
            return items
        query["cursor"] = body["next_cursor"]


async def ids(client: AsyncTestClient, headers: dict[str, str], **params: Any) -> set[int]:
    return {c["id"] for c in await listed(client, headers, **params)}


@pytest.fixture
async def sup(auth_headers: Headers) -> dict[str, str]:
    return await auth_headers("supervisor1")


async def test_the_month_holds_exactly_the_package_cases(client: AsyncTestClient, world: World, sup: dict) -> None:
    assert await ids(client, sup) == world.all


async def test_status_filter_single_repeated_and_comma_list(client: AsyncTestClient, world: World, sup: dict) -> None:
    assert await ids(client, sup, status="checking") == world.where(status="checking")
    both = world.where(status="checking") | world.where(status="handled")
    assert await ids(client, sup, status=["checking", "handled"]) == both
    assert await ids(client, sup, status="checking,handled") == both
    assert await ids(client, sup, status=["checking, handled", "checking"]) == both


async def test_class_kind_urgency_filters(client: AsyncTestClient, world: World, sup: dict) -> None:
    assert await ids(client, sup, category_code="C0101") == world.where(category_code="C0101")
    assert await ids(client, sup, category_code="C0101,E0102") == world.where(category_code="C0101") | world.where(
        category_code="E0102"
    )
    assert await ids(client, sup, kind="event") == world.where(kind="event")
    assert await ids(client, sup, kind="component") == world.where(kind="component")
    assert await ids(client, sup, urgency="urgent") == world.id("registered_late")
    assert await ids(client, sup, urgency=["urgent", "fairly_urgent"]) == world.id("registered_late", "handled")


async def test_unit_filter(client: AsyncTestClient, world: World, sup: dict) -> None:
    assert await ids(client, sup, unit_code="U0101") == world.where(unit_code="U0101")
    assert await ids(client, sup, unit_code="U0101,U02") == world.where(unit_code="U0101") | world.id(
        "handling_other_unit"
    )


async def test_region_filter_by_district_street_and_community_and_grid(
    client: AsyncTestClient, world: World, sup: dict
) -> None:
    assert await ids(client, sup, region="420323") == world.all - world.id("elsewhere")
    assert await ids(client, sup, region="420999") == world.id("elsewhere")
    assert await ids(client, sup, region=world.grid_a[:9]) == world.where(grid_code=world.grid_a)
    assert await ids(client, sup, region=world.grid_b[:12]) == world.where(grid_code=world.grid_b)
    assert await ids(client, sup, grid_code=world.grid_a) == world.where(grid_code=world.grid_a)


async def test_a_case_on_the_edge_of_the_box_is_in_it_and_not_a_hair_beyond(
    client: AsyncTestClient, world: World, sup: dict
) -> None:
    x, y = world.point_a
    in_a = world.where(grid_code=world.grid_a)
    for box in ((x, y, x + 0.01, y + 0.01), (x - 0.01, y - 0.01, x, y), (x, y, x, y)):  # edges and a degenerate box
        assert await ids(client, sup, bbox=",".join(repr(v) for v in box)) == in_a, box
    for box in ((x + 1e-9, y, x + 0.01, y + 0.01), (x - 0.01, y - 0.01, x, y - 1e-9)):
        assert await ids(client, sup, bbox=",".join(repr(v) for v in box)) == set(), box


async def test_bbox_filter(client: AsyncTestClient, world: World, sup: dict) -> None:
    lon, lat = world.point_a
    box = f"{lon - 0.0001},{lat - 0.0001},{lon + 0.0001},{lat + 0.0001}"
    assert await ids(client, sup, bbox=box) == world.where(grid_code=world.grid_a)
    assert await ids(client, sup, bbox=box, status="checking") == world.id("checking_open", "checking_other")
    far = "100.0,20.0,100.1,20.1"
    assert await ids(client, sup, bbox=far) == set()


async def test_reporter_and_mine(client: AsyncTestClient, world: World, sup: dict, auth_headers: Headers) -> None:
    assert await ids(client, sup, reporter_id=world.users["worker1"]) == world.id("closed_mine")
    w1 = await auth_headers("worker1")
    assert await ids(client, w1, mine="true") == world.id("closed_mine")
    assert await ids(client, sup, mine="true") == set()


async def test_overdue_means_a_running_clock_past_its_deadline(
    client: AsyncTestClient, world: World, sup: dict
) -> None:
    # the shelved case is past its deadline but paused; closed cases have no deadline
    late = world.id("registered_late", "handling_other_unit", "elsewhere", "handling_late")
    assert await ids(client, sup, overdue="true") == late
    assert await ids(client, sup, overdue="true", status="handling") == world.id("handling_other_unit", "handling_late")


async def test_time_range_is_half_open_and_dates_are_local(client: AsyncTestClient, world: World, sup: dict) -> None:
    got = await ids(client, sup, received_from="2021-03-02T10:00:00+08:00", received_to="2021-03-04T10:00:00+08:00")
    assert got == world.id("registered_late", "dispatched")
    # a bare date as the end includes that day; without an offset the time is Shanghai's
    assert await ids(client, sup, received_from="2021-03-03", received_to="2021-03-04") == world.id(
        "dispatched", "handling_other_unit"
    )
    assert await ids(client, sup, received_from="2021-03-03T10:00:00", received_to="2021-03-03T10:00:01") == world.id(
        "dispatched"
    )
    assert await ids(client, sup, received_from="2021-03-03T02:00:00Z", received_to="2021-03-03T02:00:01Z") == world.id(
        "dispatched"
    )


async def test_text_search(client: AsyncTestClient, world: World, sup: dict) -> None:
    r = await client.get("/api/v1/cases", params={"q": world.marker, "limit": 500}, headers=sup)
    assert {c["id"] for c in r.json()["items"]} == world.all
    assert await ids(client, sup, q=f"{world.marker} checking") == world.where(status="checking")
    assert await ids(client, sup, q="解放路") == world.id("reported")  # address
    assert await ids(client, sup, q="100%_") == world.id("reported")  # % and _ are literal
    assert await ids(client, sup, q="1%") == set()
    case_no = (await listed(client, sup, status="verifying"))[0]["case_no"]
    assert await ids(client, sup, q=case_no.lower()) == world.id("verifying")


@pytest.mark.parametrize("sort", ["received_at", "-received_at", "deadline", "-deadline", "updated_at", "-updated_at"])
async def test_sort_orders_and_pages_walk_every_row_once(
    client: AsyncTestClient, world: World, sup: dict, sort: str
) -> None:
    seen = await listed(client, sup, sort=sort, limit=4)
    assert [c["id"] for c in seen] == [c["id"] for c in await listed(client, sup, sort=sort)]
    assert len(seen) == len({c["id"] for c in seen}) == len(world.all)
    column, descending = sort.lstrip("-"), sort.startswith("-")

    def key(case: dict[str, Any]) -> tuple[Any, ...]:
        value = case[column]
        missing = value is None  # NULL deadlines come last in both directions
        return (missing, "" if missing else value, case["id"])

    expected = sorted(seen, key=key)
    if descending:
        present = [c for c in expected if c[column] is not None][::-1]
        expected = present + sorted((c for c in seen if c[column] is None), key=lambda c: -c["id"])
    assert [c["id"] for c in seen] == [c["id"] for c in expected]


async def test_default_order_is_newest_first_with_ties_by_id(client: AsyncTestClient, world: World, sup: dict) -> None:
    got = [c["id"] for c in await listed(client, sup, limit=2)]
    ties = sorted(world.id("tie0", "tie1", "tie2"), reverse=True)
    assert [i for i in got if i in ties] == ties
    assert got.index(world.ids["old0"]) < got.index(world.ids["registered_late"])


async def test_a_page_has_next_cursor_only_when_more_follow(client: AsyncTestClient, world: World, sup: dict) -> None:
    r = await client.get("/api/v1/cases", params={**MONTH, "limit": len(world.all)}, headers=sup)
    assert r.json()["next_cursor"] is None and len(r.json()["items"]) == len(world.all)
    r = await client.get("/api/v1/cases", params={**MONTH, "limit": len(world.all) - 1}, headers=sup)
    assert r.json()["next_cursor"] is not None


async def test_items_carry_next_actions(client: AsyncTestClient, world: World, sup: dict) -> None:
    (case,) = await listed(client, sup, status="registered")
    assert case["next_actions"] == []  # the caller's own next actions: a supervisor neither dispatches nor cancels
    assert case["kind"] == "component" and case["category_name"]


async def test_geojson_variant(client: AsyncTestClient, world: World, sup: dict) -> None:
    for path, extra in (("/api/v1/cases.geojson", {}), ("/api/v1/cases", {"format": "geojson"})):
        r = await client.get(path, params={**MONTH, "limit": 5, "grid_code": world.grid_a, **extra}, headers=sup)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["type"] == "FeatureCollection" and len(body["features"]) == 5 and body["next_cursor"]
        for f in body["features"]:
            assert f["type"] == "Feature"
            assert f["geometry"]["type"] == "Point"
            assert f["geometry"]["coordinates"] == pytest.approx(list(world.point_a))
            assert f["id"] == str(f["properties"]["id"])
            assert f["properties"]["grid_code"] == world.grid_a and "status" in f["properties"]
        nxt = await client.get(
            path, params={**MONTH, "grid_code": world.grid_a, "cursor": body["next_cursor"], **extra}, headers=sup
        )
        first = {f["id"] for f in body["features"]}
        rest = {f["id"] for f in nxt.json()["features"]}
        assert not first & rest and {int(i) for i in first | rest} == world.where(grid_code=world.grid_a)


# ---- scope ------------------------------------------------------------------------------------------------


async def test_worker_sees_own_reports_duty_grid_cases_and_checks(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    got = await ids(client, await auth_headers("worker1"))
    # everything in grid a (worker1's), what they reported, what they must check (in grid b)
    assert got == world.where(grid_code=world.grid_a) | world.id("closed_mine", "checking_assigned")
    assert world.ids["dispatched"] not in got


async def test_unit_staff_see_their_unit_subtree(client: AsyncTestClient, world: World, auth_headers: Headers) -> None:
    u01 = {"U01", "U0101", "U010101", "U010102", "U0102", "U0103", "U0104"}
    expected = {world.ids[n] for n, row in world.rows.items() if row["unit_code"] in u01}
    assert await ids(client, await auth_headers("unit-U01")) == expected
    assert world.ids["handling_other_unit"] not in expected
    assert await ids(client, await auth_headers("unit-U010101")) == world.id("dispatched")


async def test_centre_sees_its_district_supervisor_everything(
    client: AsyncTestClient, world: World, auth_headers: Headers, sup: dict
) -> None:
    dispatcher = await auth_headers("dispatcher1")
    assert await ids(client, dispatcher) == world.all - world.id("elsewhere")
    assert await ids(client, dispatcher, region="420999") == set()
    assert await ids(client, sup) == world.all


async def test_the_list_needs_a_login(client: AsyncTestClient) -> None:
    assert (await client.get("/api/v1/cases")).status_code == 401
    assert (await client.get("/api/v1/cases.geojson")).status_code == 401


# ---- bad parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"status": "open"}, 400, "unknown status 'open'"),
        ({"status": "closed,bogus"}, 400, "statuses are"),
        ({"sort": "priority"}, 400, "unknown sort 'priority'"),
        ({"kind": "thing"}, 400, "unknown kind"),
        ({"urgency": "asap"}, 400, "unknown urgency"),
        ({"category_code": "X1"}, 400, "is not a class code"),
        ({"region": "4203"}, 400, "6-digit district"),
        ({"grid_code": "42032310000101"}, 400, "15-digit"),
        ({"received_from": "yesterday"}, 400, "ISO 8601"),
        ({"received_from": "2021-03-05", "received_to": "2021-03-01"}, 422, "is after received_to"),
        ({"bbox": "110.3,32.2,110.2,32.3"}, 422, "greater than max longitude"),
        ({"bbox": "110,32,113,33"}, 422, "bbox spans"),
        ({"bbox": "1,2,3"}, 422, "4 comma-separated numbers"),
        ({"limit": "501"}, 422, "limit must be between 1 and 500"),
        ({"limit": "0"}, 422, "limit must be between"),
        ({"limit": "many"}, 400, ""),
        ({"cursor": "garbage!"}, 422, "cursor"),
        ({"q": "x"}, 422, "q must be 2 to 50 characters"),
        ({"q": "x" * 51}, 422, "q must be 2 to 50 characters"),
        ({"overdue": "perhaps"}, 400, ""),
        ({"format": "xml"}, 400, ""),
    ],
)
async def test_bad_parameters_say_what_is_wrong(
    client: AsyncTestClient, sup: dict, params: dict[str, str], status: int, words: str
) -> None:
    r = await client.get("/api/v1/cases", params=params, headers=sup)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


async def test_a_cursor_only_works_with_its_sort(client: AsyncTestClient, world: World, sup: dict) -> None:
    r = await client.get("/api/v1/cases", params={**MONTH, "limit": 2, "sort": "deadline"}, headers=sup)
    cursor = r.json()["next_cursor"]
    r = await client.get("/api/v1/cases", params={**MONTH, "cursor": cursor}, headers=sup)
    assert r.status_code == 422 and "sort=deadline" in r.json()["detail"]


async def test_mine_and_someone_elses_reporter_id_conflict(
    client: AsyncTestClient, world: World, auth_headers: Headers
) -> None:
    w1 = await auth_headers("worker1")
    other = world.users["worker2"]
    r = await client.get("/api/v1/cases", params={"mine": "true", "reporter_id": other}, headers=w1)
    assert r.status_code == 422
