"""arq WorkerSettings: job functions, cron sweeps, the Redis connection from GRID_REDIS_URL and the msgpack codec.

Job functions live in one thin module per capability (`workers/routing.py`, `sla.py`, `notify.py`, `media.py`,
`sweep.py`); each exports FUNCTIONS (and CRON when it has sweeps) and calls grid_mgmt services with ids.
`ctx` carries what they need: the engine, the settings, the arq client for follow-up jobs (`ctx["redis"]`).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Function, func

from grid_mgmt.accounts.retention import purge_sessions as _purge_sessions
from grid_mgmt.db.engine import make_engine
from grid_mgmt.lib.jobcodec import deserialize, serialize
from grid_mgmt.public.retention import purge_contacts as _purge_contacts
from grid_mgmt.routing.service import RecentlyRouted
from grid_mgmt.settings import get_settings
from workers import media, notify, routing, sla, sweep

ROUTERS = 4
"""Routing jobs that route at once in one worker process; the others wait (their cases are mostly routed by then)."""


async def ping(ctx: dict[str, Any]) -> str:
    """system.ping: proves that a worker consumes the queue."""
    return "pong"


async def purge_contacts(ctx: dict[str, Any]) -> int:
    """public.purge_contacts: citizens' contact details past GRID_CONTACT_RETENTION_DAYS go (nightly)."""
    return await _purge_contacts(ctx["engine"])


async def purge_sessions(ctx: dict[str, Any]) -> int:
    """accounts.purge_sessions: refresh tokens expired (or ended) more than a day ago go (nightly)."""
    return await _purge_sessions(ctx["engine"])


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    # a worker runs at most max_jobs jobs at once; half the API's pool serves them (jobs are short transactions)
    ctx["engine"] = make_engine(replace(settings, db_pool_size=max(2, settings.db_pool_size // 2)))
    # routing batches at once per process: more would compete for the same queued cases (routing.service.BATCH)
    ctx["routers"] = asyncio.Semaphore(ROUTERS)
    ctx["routed"] = RecentlyRouted()


async def shutdown(ctx: dict[str, Any]) -> None:
    engine = ctx.pop("engine", None)
    if engine is not None:
        await engine.dispose()


class WorkerSettings:
    """Read by `arq workers.settings.WorkerSettings` (and `grid-mgmt worker`)."""

    functions: ClassVar[list[Function]] = [
        func(ping, name="system.ping"),
        *routing.FUNCTIONS,
        *sla.FUNCTIONS,
        *notify.FUNCTIONS,
        *media.FUNCTIONS,
        *sweep.FUNCTIONS,
    ]
    cron_jobs: ClassVar[list[CronJob]] = [
        *sweep.CRON,
        *notify.CRON,
        *media.CRON,
        # 03:50 Asia/Shanghai (workers run in UTC), after intake.purge
        cron(purge_contacts, name="public.purge_contacts", hour=19, minute=50, unique=True, timeout=600),
        cron(purge_sessions, name="accounts.purge_sessions", hour=20, minute=10, unique=True, timeout=600),  # 04:10
    ]
    redis_settings: ClassVar[RedisSettings] = RedisSettings.from_dsn(get_settings().redis_url)
    on_startup = startup
    on_shutdown = shutdown
    job_serializer = serialize
    job_deserializer = deserialize
    health_check_interval: ClassVar[int] = 30
    """Seconds between health-check records in Redis (arq:queue:health-check)."""
    max_jobs: ClassVar[int] = 20
    poll_delay: ClassVar[float] = 0.05
    """Seconds between looks at the queue (arq's default, 0.5 s, left a busy worker idle between its jobs and
    added up to half a second to every report's routing)."""
    job_timeout: ClassVar[int] = 60
    keep_result: ClassVar[int] = 60
