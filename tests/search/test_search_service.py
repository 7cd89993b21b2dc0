"""Service-level checks of the case search: a slow statement becomes a 422, cursors round-trip exactly."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from grid_mgmt.cases import search, search_repository
from grid_mgmt.cases.encoded import EncodedCases
from grid_mgmt.db.listpool import ListPool, ListPools
from grid_mgmt.lib.errors import InvalidInput
from grid_mgmt.settings import Settings
from tests.conftest import principal_of


@pytest.mark.parametrize("encoded", [False, True], ids=["cases", "encoded cases"])
async def test_a_statement_over_the_time_limit_is_a_422_asking_for_narrower_filters(
    settings: Settings, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, encoded: bool
) -> None:
    async def slow(conn: asyncpg.Connection, *args: Any) -> Any:
        await conn.execute("SELECT pg_sleep(1)")
        raise AssertionError("the statement timeout did not fire")

    monkeypatch.setattr(search_repository, "list_page_encoded" if encoded else "list_page", slow)
    pools = ListPools.of(replace(settings, list_timeout_ms=50))  # the timeout is the connection's
    engine = create_async_engine(settings.database_url)
    try:
        principal = await principal_of(pg, "supervisor1")
        query = search.build_query(principal, Settings(), q="井盖")
        with pytest.raises(InvalidInput, match="takes too long") as caught:
            if encoded:
                await search.search_encoded(pools, engine, EncodedCases(10), principal, query)
            else:
                await search.search(pools, engine, principal, query)
        assert caught.value.extra == {"field": "q"}
        async with pools.custom.connection() as conn:  # a timed-out statement leaves its connection usable
            assert await conn.fetchval("SELECT 1") == 1
        assert (pools.custom.opened, pools.generic.opened) == (1, 0)  # a text search is planned with its values
    finally:
        await pools.close()
        await engine.dispose()


@pytest.mark.parametrize("generic", [False, True], ids=["custom plans", "generic plans"])
async def test_the_list_pools_read_in_autocommit_with_the_list_settings(settings: Settings, generic: bool) -> None:
    pool = ListPool.of(settings, generic=generic)
    try:
        async with pool.connection() as conn:
            got = await conn.fetchrow(
                "SELECT current_setting('plan_cache_mode'), current_setting('max_parallel_workers_per_gather'),"
                " current_setting('statement_timeout'), current_setting('TimeZone'), current_setting('DateStyle')"
            )
            mode = "force_generic_plan" if generic else "force_custom_plan"
            assert tuple(got) == (mode, "0", "5s", "UTC", "ISO, MDY")
            first = await conn.fetchval("SELECT pg_current_xact_id()::text")
            second = await conn.fetchval("SELECT pg_current_xact_id()::text")
            assert first != second  # each statement its own transaction: no BEGIN/COMMIT round trips
    finally:
        await pool.close()


@pytest.mark.parametrize("name", list(search_repository.SORTS))
def test_positions_round_trip_to_the_microsecond(name: str) -> None:
    sort = search_repository.SORTS[name]
    at = dt.datetime(2026, 11, 21, 1, 2, 3, 456789, tzinfo=dt.UTC)
    for key in (at, None) if sort.nullable else (at,):
        pos = search_repository.Position(key=key, id=9_007_199_254_740_993)
        assert search.decode_position(search.encode_position(sort, pos), sort) == pos


def test_statuses_split_and_deduplicate() -> None:
    assert search.parse_statuses(["reported, registered", "reported"]) == ("reported", "registered")
    assert search.parse_statuses(None) == ()


def test_dates_without_offset_are_shanghai_time() -> None:
    assert search.parse_time("2026-03-01", "received_from") == dt.datetime(2026, 2, 28, 16, tzinfo=dt.UTC)
    assert search.parse_time("2026-03-01", "received_to", end=True) == dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC)
    assert search.parse_time("2026-03-01T08:00:00Z", "received_from") == dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
