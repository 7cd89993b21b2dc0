"""The case list's cache of encoded cases (`cases.encoded`): the same bytes as encoding the cases read now, and
never a case older than the table's — whoever changed it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.cases import search, search_repository
from grid_mgmt.cases.encoded import EncodedCases
from grid_mgmt.cases.lifecycle import actions_for
from grid_mgmt.cases.repository import forget_classes
from grid_mgmt.db.listpool import ListPools
from grid_mgmt.lib.schemas import ItemPage
from grid_mgmt.settings import Settings
from tests.conftest import principal_of
from tests.search.conftest import MONTH_FROM, MONTH_TO, World

Headers = Callable[..., Awaitable[dict[str, str]]]
MONTH = {"received_from": MONTH_FROM, "received_to": MONTH_TO}


@pytest.fixture
async def lists(settings: Settings, engine: AsyncEngine) -> AsyncIterator[tuple[ListPools, AsyncEngine]]:
    """List pools of the test's own loop (the app's live in the test client's) and the dictionary's source."""
    pools = ListPools.of(settings)
    yield pools, engine
    await pools.close()


@pytest.fixture
async def sup(auth_headers: Headers) -> dict[str, str]:
    return await auth_headers("supervisor1")


async def page(client: AsyncTestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/cases", params={**MONTH, **params}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def by_id(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {c["id"]: c for c in body["items"]}


@pytest.mark.parametrize("sort", ["-received_at", "deadline", "updated_at"])
async def test_a_cached_page_is_byte_for_byte_the_cases_encoded_now(
    client: AsyncTestClient,
    app: Litestar,
    lists: tuple[ListPools, AsyncEngine],
    world: World,
    sup: dict,
    pg: asyncpg.Connection,
    sort: str,
) -> None:
    params = {**MONTH, "limit": 7, "sort": sort}
    cold = await client.get("/api/v1/cases", params=params, headers=sup)
    hits = app.state.case_cache.stats.hits
    warm = await client.get("/api/v1/cases", params=params, headers=sup)
    assert app.state.case_cache.stats.hits >= hits + 7  # the second page came from the cache
    principal = await principal_of(pg, "supervisor1")
    query = search.build_query(principal, Settings(), sort=sort, limit=7, **MONTH)
    items, cursor = await search.search(*lists, principal, query)  # full rows, no cache
    assert len(items) == 7 and cursor is not None
    expected = msgspec.json.encode(ItemPage(items=items, next_cursor=cursor))
    assert cold.content == expected
    assert warm.content == expected


async def test_a_page_walk_through_the_cache_sees_every_case_once(
    client: AsyncTestClient, world: World, sup: dict
) -> None:
    for _ in range(2):  # cold, then warm
        seen: list[int] = []
        cursor = None
        while True:
            body = await page(client, sup, limit=4, **({"cursor": cursor} if cursor else {}))
            seen.extend(c["id"] for c in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(seen) == world.all


@pytest.fixture
async def restored(world: World, pg: asyncpg.Connection) -> AsyncIterator[int]:
    """A package case a test may change; its row is put back afterwards."""
    case_id = world.ids["dispatched"]
    before = await pg.fetchrow("SELECT description, flags, urgency FROM cases WHERE id = $1", case_id)
    yield case_id
    await pg.execute(
        "UPDATE cases SET description = $2, flags = $3, urgency = $4 WHERE id = $1", case_id, *before.values()
    )


WRITERS = {
    "lifecycle-like (version bumped)": "UPDATE cases SET description = $2, version = version + 1 WHERE id = $1",
    "deadline job (flags only)": "UPDATE cases SET flags = array_append(flags, $2) WHERE id = $1",
    "hand-written (description only)": "UPDATE cases SET description = $2 WHERE id = $1",
}


@pytest.mark.parametrize("writer", list(WRITERS))
async def test_a_change_by_any_writer_shows_on_the_next_page(
    client: AsyncTestClient, world: World, sup: dict, pg: asyncpg.Connection, restored: int, writer: str
) -> None:
    before = by_id(await page(client, sup, limit=500))[restored]  # cached now
    assert by_id(await page(client, sup, limit=500))[restored] == before
    await pg.execute(WRITERS[writer], restored, "changed-" + writer[:8])
    after = by_id(await page(client, sup, limit=500))[restored]
    changed = {k for k in after if after[k] != before[k]}
    assert changed == ({"flags"} if "flags" in writer else {"description", "version"} - ({"version"} if "only" in
                       writer else set()))  # fmt: skip


async def test_every_update_bumps_the_row_version(pg: asyncpg.Connection, world: World, restored: int) -> None:
    first = await pg.fetchval("SELECT row_version FROM cases WHERE id = $1", restored)
    await pg.execute("UPDATE cases SET urgency = urgency WHERE id = $1", restored)  # even to the same value
    assert await pg.fetchval("SELECT row_version FROM cases WHERE id = $1", restored) == first + 1
    async with pg.transaction():
        await pg.execute("UPDATE cases SET urgency = 'urgent' WHERE id = $1", restored)
        await pg.execute("UPDATE cases SET urgency = 'normal' WHERE id = $1", restored)
    assert await pg.fetchval("SELECT row_version FROM cases WHERE id = $1", restored) == first + 3
    fresh = await pg.fetchval("SELECT row_version FROM cases WHERE id = $1", world.ids["closed_mine"])
    assert isinstance(fresh, int) and fresh >= 0


async def test_next_actions_are_the_readers_though_the_case_is_cached_once(
    client: AsyncTestClient, world: World, auth_headers: Headers, sup: dict
) -> None:
    case_id = world.ids["registered_late"]
    for username, roles in (("supervisor1", {"supervisor"}), ("dispatcher1", {"dispatcher"}), ("leader1", None)):
        got = by_id(await page(client, await auth_headers(username), status="registered", limit=500))[case_id]
        if roles is not None:
            assert got["next_actions"] == actions_for("registered", frozenset(roles))
    dispatcher = by_id(await page(client, await auth_headers("dispatcher1"), status="registered"))[case_id]
    assert "dispatch" in dispatcher["next_actions"]
    assert by_id(await page(client, sup, status="registered"))[case_id]["next_actions"] == []


async def test_a_renamed_class_is_renamed_in_cached_cases(
    client: AsyncTestClient, app: Litestar, world: World, sup: dict, pg: asyncpg.Connection
) -> None:
    case_id = world.ids["registered_late"]
    code = world.rows["registered_late"]["category_code"]
    name = await pg.fetchval("SELECT name FROM category WHERE code = $1", code)
    assert by_id(await page(client, sup, status="registered"))[case_id]["category_name"] == name  # cached
    cleared = app.state.case_cache.stats.cleared
    try:
        await pg.execute("UPDATE category SET name = name || ' (renamed)' WHERE code = $1", code)
        forget_classes()  # as after the dictionary's 30 s
        got = by_id(await page(client, sup, status="registered"))[case_id]
        assert got["category_name"] == name + " (renamed)"
        assert app.state.case_cache.stats.cleared == cleared + 1
    finally:
        await pg.execute("UPDATE category SET name = $2 WHERE code = $1", code, name)
        forget_classes()


async def test_a_cache_smaller_than_a_page_still_answers_the_whole_page(
    lists: tuple[ListPools, AsyncEngine], world: World, pg: asyncpg.Connection
) -> None:
    cache = EncodedCases(capacity=3)
    principal = await principal_of(pg, "supervisor1")
    query = search.build_query(principal, Settings(), limit=10, **MONTH)
    for _ in range(2):
        items, cursor = await search.search_encoded(*lists, cache, principal, query)
        assert len(msgspec.json.decode(items)) == 10 and cursor is not None and len(cache) == 3
    expected, _ = await search.search(*lists, principal, query)
    assert [c["id"] for c in msgspec.json.decode(items)] == [c.id for c in expected]


async def test_a_stale_entry_is_a_miss(
    lists: tuple[ListPools, AsyncEngine], world: World, pg: asyncpg.Connection, restored: int
) -> None:
    cache = EncodedCases(capacity=100)
    principal = await principal_of(pg, "supervisor1")
    query = search.build_query(principal, Settings(), limit=500, **MONTH)
    await search.search_encoded(*lists, cache, principal, query)
    assert (cache.stats.hits, cache.stats.misses) == (0, len(world.all))
    await pg.execute("UPDATE cases SET description = 'stale?' WHERE id = $1", restored)
    items, _ = await search.search_encoded(*lists, cache, principal, query)
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stale) == (len(world.all) - 1, len(world.all) + 1, 1)
    assert {c["id"]: c for c in msgspec.json.decode(items)}[restored]["description"] == "stale?"


def test_an_unknown_status_never_reaches_the_sql() -> None:
    principal = search_repository.Principal(user_id=0, username="x", roles=frozenset({"supervisor"}))
    flt = search_repository.CaseFilter(statuses=("x'; DROP TABLE cases; --",), bbox=(0, 0, 1, 1))
    page = search_repository.PageRequest(flt, principal, search_repository.SORTS["-received_at"], None, 5)
    with pytest.raises(ValueError, match="not statuses of a case"):
        search_repository.list_sql(page)
