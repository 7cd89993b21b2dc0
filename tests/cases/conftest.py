"""Helpers for service-level case tests: photos made directly, an engine of the test database."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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
