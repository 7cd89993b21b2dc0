"""Purging idempotency records: only those past the retention go, in batches, and a replay inside it still works."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt.intake.retention import purge_idempotency
from grid_mgmt.settings import Settings
from workers import media as media_jobs


async def insert_keys(pg: asyncpg.Connection, user_id: int, ages_days: list[float]) -> list[str]:
    keys = [f"purge-{uuid.uuid4()}" for _ in ages_days]
    await pg.executemany(
        "INSERT INTO idempotency_key (user_id, key, request_hash, status_code, body, created_at)"
        " VALUES ($1, $2, repeat('0', 64), 201, '\\x7b7d'::bytea, now() - make_interval(secs => $3 * 86400))",
        [(user_id, key, age) for key, age in zip(keys, ages_days, strict=True)],
    )
    return keys


async def remaining(pg: asyncpg.Connection, keys: list[str]) -> set[str]:
    rows = await pg.fetch("SELECT key FROM idempotency_key WHERE key = ANY($1::varchar[])", keys)
    return {r["key"] for r in rows}


async def test_purge_deletes_only_old_rows_in_batches(pg: asyncpg.Connection, engine: AsyncEngine) -> None:
    user = int(await pg.fetchval("SELECT id FROM app_user WHERE username = 'worker1'"))
    old = await insert_keys(pg, user, [7.01, 8, 30, 30, 400])
    young = await insert_keys(pg, user, [0, 1, 6.99])
    before = await pg.fetchval("SELECT count(*) FROM idempotency_key WHERE created_at >= now() - interval '7 days'")
    deleted = await purge_idempotency(engine, 7, batch=2)  # three batches: 2 + 2 + 1
    assert deleted == len(old)  # nothing else in the test database is that old
    assert await remaining(pg, old) == set() and await remaining(pg, young) == set(young)
    after = await pg.fetchval("SELECT count(*) FROM idempotency_key WHERE created_at >= now() - interval '7 days'")
    assert after == before
    assert await purge_idempotency(engine, 7) == 0
    with pytest.raises(ValueError, match="at least 1"):
        await purge_idempotency(engine, 0)


async def test_purge_job_uses_the_retention_setting(
    pg: asyncpg.Connection, engine: AsyncEngine, app_settings: Settings
) -> None:
    user = int(await pg.fetchval("SELECT id FROM app_user WHERE username = 'worker2'"))
    days = app_settings.idempotency_retention_days
    assert days == 7
    old, young = await insert_keys(pg, user, [days + 1]), await insert_keys(pg, user, [days - 1])
    assert await media_jobs.purge({"engine": engine, "settings": app_settings}) == 1
    assert await remaining(pg, old + young) == set(young)
