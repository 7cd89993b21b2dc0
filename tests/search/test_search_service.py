"""Service-level checks of the case search: a slow statement becomes a 422, cursors round-trip exactly."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grid_mgmt.cases import search, search_repository
from grid_mgmt.lib.errors import InvalidInput
from grid_mgmt.settings import Settings
from tests.conftest import principal_of


async def test_a_statement_over_the_time_limit_is_a_422_asking_for_narrower_filters(
    engine: AsyncEngine, pg: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(conn: AsyncConnection, *args: Any) -> Any:
        await conn.execute(text("SELECT pg_sleep(1)"))
        raise AssertionError("the statement timeout did not fire")

    monkeypatch.setattr(search_repository, "LIST_TIMEOUT_MS", 50)
    monkeypatch.setattr(search_repository, "list_page", slow)
    principal = await principal_of(pg, "supervisor1")
    query = search.build_query(principal, Settings(), q="井盖")
    with pytest.raises(InvalidInput, match="takes too long") as caught:
        await search.search(engine, principal, query)
    assert caught.value.extra == {"field": "q"}


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
