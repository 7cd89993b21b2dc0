"""Faults the workers survive, with real processes: a worker killed mid-routing, Redis gone while reports arrive."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.app import create_app
from grid_mgmt.settings import Settings
from tests.conftest import login
from tests.routing.conftest import file_report, spot
from tests.worker_fixtures import make_worker, run_until_idle
from workers.settings import WorkerSettings

Headers = Callable[..., Awaitable[dict[str, str]]]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GRID_DATABASE_URL": settings.database_url, "GRID_REDIS_URL": settings.redis_url}
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _routing_counts(pg: asyncpg.Connection, case_id: int) -> tuple[int, int]:
    row = await pg.fetchrow(
        "SELECT count(*) FILTER (WHERE action = 'register') AS reg, count(*) FILTER (WHERE action = 'dispatch') AS dis"
        " FROM case_activity WHERE case_id = $1",
        case_id,
    )
    return int(row["reg"]), int(row["dis"])


async def test_a_worker_killed_mid_routing_leaves_the_case_to_be_routed_exactly_once(
    client: AsyncTestClient[Litestar], auth_headers: Headers, pg: asyncpg.Connection, database_url: str,
    settings: Settings, arq_pool: Any,
) -> None:  # fmt: skip
    blocker = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        # the routing job will block inside its transaction (case row locked, candidates waiting on the rules)
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE routing_rule IN ACCESS EXCLUSIVE MODE")
        lon, lat = await spot(pg, 1801)
        case = await file_report(client, await auth_headers("worker1"), "E0501", lon, lat)
        proc = _worker_process(settings)
        for _ in range(300):
            waiting = await pg.fetchval(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'routing_rule'::regclass"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the worker never reached the routing query"
        proc.send_signal(signal.SIGKILL)  # kill -9 in the middle of routing
        proc.wait(10)
        await tx.rollback()  # the dead worker's transaction can only roll back now
        await asyncio.sleep(0.2)
        row = await pg.fetchrow("SELECT status, routed_at FROM cases WHERE id = $1", case["id"])
        assert row["status"] == "reported" and row["routed_at"] is None  # nothing of the half-done routing stayed
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        await blocker.close()
    # a new worker: its recovery sweep finds the unrouted case (the killed job is still marked in progress)
    await arq_pool.enqueue_job("system.recover", older_than_s=0)
    await run_until_idle(arq_pool, make_worker(arq_pool, settings))
    assert await _routing_counts(pg, case["id"]) == (1, 1)
    # later the killed job's in-progress mark expires and arq runs it again: it finds the case routed
    for key in [k async for k in arq_pool.scan_iter("arq:in-progress:*")]:
        await arq_pool.delete(key)
    await run_until_idle(arq_pool, make_worker(arq_pool, settings))
    assert await _routing_counts(pg, case["id"]) == (1, 1)
    assert (await pg.fetchrow("SELECT status FROM cases WHERE id = $1", case["id"]))["status"] == "dispatched"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Redis:
    """A redis-server of our own, to stop and start (no persistence: stopping it loses every queued job)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[_Redis]:
    if not any(os.access(os.path.join(p, "redis-server"), os.X_OK) for p in os.environ["PATH"].split(os.pathsep)):
        pytest.fail("redis-server is not installed (scripts/install.sh installs it)")
    r = _Redis()
    r.start()
    yield r
    r.kill()


@pytest.fixture
async def api_on_own_redis(settings: Settings, own_redis: _Redis) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(replace(settings, redis_url=own_redis.url, locate_cache=False))
    async with AsyncTestClient(app=app) as c:
        yield c


async def test_reports_are_filed_while_redis_is_down_and_routed_once_when_it_is_back(
    api_on_own_redis: AsyncTestClient[Litestar], own_redis: _Redis, pg: asyncpg.Connection, settings: Settings
) -> None:
    client = api_on_own_redis
    headers = await login(client, "worker1")
    before = [await file_report(client, headers, "E0501", *await spot(pg, n)) for n in (1811, 1821)]
    own_redis.kill()  # Redis dies: the two queued routing jobs are lost with it
    during = [await file_report(client, headers, "E0501", *await spot(pg, n)) for n in (1831, 1841, 1851)]
    ids = [c["id"] for c in before + during]
    assert await pg.fetchval("SELECT count(*) FROM cases WHERE id = ANY($1::bigint[])", ids) == 5
    assert await pg.fetchval("SELECT count(*) FROM cases WHERE id = ANY($1::bigint[]) AND routed_at IS NULL", ids) == 5
    own_redis.start()  # back, empty
    pool = await create_pool(
        RedisSettings.from_dsn(own_redis.url),
        job_serializer=WorkerSettings.job_serializer, job_deserializer=WorkerSettings.job_deserializer,
    )  # fmt: skip
    try:
        worker_settings = replace(settings, redis_url=own_redis.url)
        await pool.enqueue_job("system.recover", older_than_s=0)
        await run_until_idle(pool, make_worker(pool, worker_settings))
        await pool.enqueue_job("system.recover", older_than_s=0)  # a second sweep finds nothing left to do
        await run_until_idle(pool, make_worker(pool, worker_settings))
    finally:
        await pool.aclose()
    for case_id in ids:
        assert await _routing_counts(pg, case_id) == (1, 1), case_id
    statuses = await pg.fetch("SELECT status FROM cases WHERE id = ANY($1::bigint[])", ids)
    assert {r["status"] for r in statuses} == {"dispatched"}
