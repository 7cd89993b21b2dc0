"""Checks behind /health: PostGIS version, Redis reachable, migration at head."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from grid_mgmt import __version__
from grid_mgmt.db.migrate import head_revision
from grid_mgmt.lib.sql import text
from grid_mgmt.system.schemas import CaseCacheRead, CheckRead, HealthRead

TIMEOUT = 2.0


async def _postgis(engine: AsyncEngine) -> tuple[CheckRead, CheckRead]:
    try:
        async with asyncio.timeout(TIMEOUT), engine.connect() as conn:
            version = await conn.scalar(text("SELECT postgis_lib_version()"))
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:
        down = CheckRead(ok=False, detail=f"database unreachable: {type(exc).__name__}: {exc}"[:300])
        return down, CheckRead(ok=False, detail="unknown: database unreachable")
    head = head_revision()
    migration = CheckRead(ok=current == head, detail=f"at {current}, head is {head}")
    return CheckRead(ok=True, detail=f"PostGIS {version}"), migration


async def _redis(redis: Any) -> CheckRead:
    try:
        async with asyncio.timeout(TIMEOUT):
            await redis.ping()
    except Exception as exc:
        return CheckRead(ok=False, detail=f"redis unreachable: {type(exc).__name__}: {exc}"[:300])
    return CheckRead(ok=True, detail="PONG")


async def health(engine: AsyncEngine, redis: Any, locator: Any, case_cache: Any = None) -> HealthRead:
    """Every check; the grid index being rebuilt is reported but is not an outage (the DB answers)."""
    (postgis, migration), redis_check = await asyncio.gather(_postgis(engine), _redis(redis))
    fresh = locator is not None and locator.fresh
    grid_index = CheckRead(ok=True, detail="fresh" if fresh else "building or disabled; locate uses the database")
    checks = {"postgis": postgis, "redis": redis_check, "migration": migration}
    down = [name for name, check in checks.items() if not check.ok]
    return HealthRead(
        status="degraded" if down else "ok",
        version=__version__,
        postgis=postgis,
        redis=redis_check,
        migration=migration,
        grid_index=grid_index,
        down=down,
        case_cache=None if case_cache is None else _cache_read(case_cache),
    )


def _cache_read(cache: Any) -> CaseCacheRead:
    """`cases.encoded.EncodedCases` as read (system knows no feature: by its attributes)."""
    stats = cache.stats
    return CaseCacheRead(pid=os.getpid(), entries=len(cache), capacity=cache.capacity, hits=stats.hits,
                         misses=stats.misses, stale=stats.stale, cleared=stats.cleared)  # fmt: skip
