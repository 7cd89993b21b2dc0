"""Helpers for service-level case tests: principals of demo users, cases and photos made directly."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.lib.auth import Principal


async def principal_of(pg: asyncpg.Connection, username: str) -> Principal:
    """The Principal a login would give `username` (unit subtree, duty-grid unit grids)."""
    user = await pg.fetchrow("SELECT * FROM app_user WHERE username = $1", username)
    units = await pg.fetch(
        "WITH RECURSIVE d AS (SELECT code FROM unit WHERE code = $1 UNION ALL"
        " SELECT u.code FROM unit u JOIN d ON u.parent_code = d.code) SELECT code FROM d",
        user["unit_code"],
    )
    grids = await pg.fetch(
        "SELECT g.grid_code FROM duty_grid_worker w JOIN duty_grid_grid g USING (duty_grid_code) WHERE w.user_id = $1",
        user["id"],
    )
    return Principal(
        user_id=user["id"],
        username=username,
        roles=frozenset(user["roles"]),
        unit_code=user["unit_code"],
        district_code=user["district_code"],
        unit_codes=frozenset(r["code"] for r in units),
        duty_grid_codes=frozenset(r["grid_code"] for r in grids),
    )


async def add_photo(pg: asyncpg.Connection, case_id: int, kind: str, uploader: int) -> int:
    sha = f"{case_id:032x}{kind.encode().hex():0>32}"[:64]
    return int(
        await pg.fetchval(
            "INSERT INTO attachment (case_id, kind, sha256, content_type, size_bytes, uploader_id, storage_key)"
            " VALUES ($1, $2, $3, 'image/jpeg', 100, $4, 'test') RETURNING id",
            case_id, kind, sha, uploader,
        )
    )  # fmt: skip


@pytest.fixture
async def engine(database_url: str) -> Any:
    eng: AsyncEngine = create_async_engine(database_url)
    yield eng
    await eng.dispose()
