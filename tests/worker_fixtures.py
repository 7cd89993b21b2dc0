"""Running the real arq worker (WorkerSettings' functions, our codec, real Redis, the test database).

`await drain()` runs a worker until no job is ready (deferred jobs that are not yet due stay queued) and returns
how many jobs it completed. Each test starts with an empty queue: jobs, results and in-progress marks of earlier tests are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, in_progress_key_prefix
from arq.worker import Worker

from grid_mgmt.settings import Settings
from workers.settings import WorkerSettings, shutdown, startup


@pytest.fixture
async def arq_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis_url),
        job_serializer=WorkerSettings.job_serializer,
        job_deserializer=WorkerSettings.job_deserializer,
    )
    # a clean queue: earlier tests' (and earlier sessions') jobs, results and in-progress marks are gone, so a job
    # id like notify:1:0 from a previous run of the suite cannot make a new enqueue look like a duplicate
    stale = [key async for key in pool.scan_iter("arq:*", count=1000)]
    if stale:
        await pool.delete(*stale)
    try:
        yield pool
    finally:
        await pool.aclose()


def make_worker(pool: ArqRedis, settings: Settings, **kw: object) -> Worker:
    """A worker like `grid-mgmt worker` runs, on the test database, without cron sweeps (tests call them)."""
    options: dict[str, object] = {
        "functions": WorkerSettings.functions,
        "redis_pool": pool,
        "handle_signals": False,
        "poll_delay": 0.02,
        "ctx": {"settings": settings},
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_serializer": WorkerSettings.job_serializer,
        "job_deserializer": WorkerSettings.job_deserializer,
        "max_jobs": WorkerSettings.max_jobs,
        "job_timeout": WorkerSettings.job_timeout,
        "keep_result": 5,
    }
    options.update(kw)
    return Worker(**options)  # type: ignore[arg-type]


async def run_until_idle(pool: ArqRedis, worker: Worker, within: float = 30.0) -> int:
    """Run `worker` until no job is due and none is running (three quiet polls in a row)."""
    task = asyncio.create_task(worker.async_run())
    quiet, deadline = 0, time.monotonic() + within
    try:
        while quiet < 3:
            if task.done():
                task.result()
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not become idle within {within} s")
            await asyncio.sleep(0.05)
            due = await _due_jobs(pool)
            quiet = quiet + 1 if due == 0 and not worker.tasks and worker.job_tasks == {} else 0
    finally:
        task.cancel()
        with warnings.catch_warnings():  # arq 0.26-0.28 still calls redis' deprecated close()
            warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await worker.close()
    return worker.jobs_complete


async def queued(pool: ArqRedis) -> list[tuple[str, dict[str, Any]]]:
    """(function, kwargs) of every job waiting in the queue, oldest score first — what really reached Redis."""
    jobs = sorted(await pool.queued_jobs(), key=lambda j: (j.score or 0, j.enqueue_time))
    return [(j.function, dict(j.kwargs)) for j in jobs]


async def _due_jobs(pool: ArqRedis) -> int:
    """Jobs ready to run that no (live or dead) worker holds in progress."""
    ready = await pool.zrangebyscore(default_queue_name, 0, int(time.time() * 1000))
    held = [await pool.exists(in_progress_key_prefix + job_id.decode()) for job_id in ready]
    return sum(1 for h in held if not h)


@pytest.fixture
def drain(arq_pool: ArqRedis, settings: Settings) -> Callable[..., Awaitable[int]]:
    async def run(within: float = 30.0, **kw: object) -> int:
        return await run_until_idle(arq_pool, make_worker(arq_pool, settings, **kw), within)

    return run
