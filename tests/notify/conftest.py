"""Notification fixtures: a fake webhook receiver (a real HTTP server), a unit pointing at it, cases to announce."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from grid_mgmt.app import create_app
from grid_mgmt.lib.jobs import JobBuffer
from grid_mgmt.notify import service
from grid_mgmt.settings import Settings
from tests.conftest import plain

HOOK_UNIT = "U0201"
"""The unit whose webhook points at the fake receiver during a test (its staff login: unit-U0201)."""
OTHER_UNIT = "U0102"


def notify_app(settings: Settings) -> Litestar:
    """The API of the notification tests (without the grid index: they never locate)."""
    return create_app(replace(settings, locate_cache=False))


@pytest.fixture(scope="package")
async def api(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=notify_app(settings)) as c:
        yield c


@pytest.fixture(scope="package")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@dataclass
class Hit:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A unit's webhook endpoint: answers the statuses of `script` in turn, then 200; keeps every request."""

    script: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/grid"

    @property
    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.status < 300]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.script.pop(0) if self.script else 200
            self.hits.append(Hit(path, headers, body, status))
            reply = b"ok" if status < 300 else b"receiver says no"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode() + reply
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Hook:
    unit_code: str
    secret: str
    receiver: Receiver


@pytest.fixture
async def hook(pg: asyncpg.Connection, receiver: Receiver) -> AsyncIterator[Hook]:
    """HOOK_UNIT's webhook points at the receiver for the test; restored afterwards."""
    before = await pg.fetchrow("SELECT webhook_url, webhook_secret FROM unit WHERE code = $1", HOOK_UNIT)
    secret = secrets.token_hex(16)
    await pg.execute(
        "UPDATE unit SET webhook_url = $2, webhook_secret = $3 WHERE code = $1", HOOK_UNIT, receiver.url, secret
    )
    try:
        yield Hook(HOOK_UNIT, secret, receiver)
    finally:
        await pg.execute(
            "UPDATE unit SET webhook_url = $2, webhook_secret = $3 WHERE code = $1",
            HOOK_UNIT, before["webhook_url"], before["webhook_secret"],
        )  # fmt: skip


@dataclass
class Cases:
    """Cases of this package: `home` in the demo district with HOOK_UNIT, `away` in another district."""

    home: int
    away: int
    district: str
    grid: str


@pytest.fixture(scope="package")
async def cases(database_url: str) -> AsyncIterator[Cases]:
    pg = await asyncpg.connect(plain(database_url))
    marker = secrets.token_hex(3)
    ids: list[int] = []
    try:
        district = await pg.fetchval("SELECT district_code FROM app_user WHERE username = 'dispatcher1'")
        grid = await pg.fetchrow(
            "SELECT code, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat"
            " FROM grid WHERE code LIKE $1 || '%' ORDER BY code LIMIT 1",
            district,
        )
        for n, (dist, unit) in enumerate(((district, HOOK_UNIT), ("420999", OTHER_UNIT))):
            home = dist == district
            values = [f"N{marker}{n}", f"通知测试 {marker}", grid["lon"], grid["lat"],
                      grid["code"] if home else None, grid["code"][:9] if home else None, dist, unit]  # fmt: skip
            ids.append(
                await pg.fetchval(
                    "INSERT INTO cases (case_no, source, category_code, description, geom, grid_code, street_code,"
                    " district_code, unit_code, status, received_at)"
                    " VALUES ($1, 'worker', 'E0101', $2, ST_SetSRID(ST_MakePoint($3, $4), 4326), $5, $6, $7, $8,"
                    " 'dispatched', now()) RETURNING id",
                    *values,
                )
            )
        yield Cases(home=ids[0], away=ids[1], district=district, grid=grid["code"])
    finally:
        await pg.execute("DELETE FROM outbox WHERE case_id = ANY($1::bigint[])", ids)
        await pg.execute("DELETE FROM cases WHERE id = ANY($1::bigint[])", ids)
        await pg.close()


@pytest.fixture(autouse=True)
async def _settle_rows(pg: asyncpg.Connection, cases: Cases) -> AsyncIterator[None]:
    """After each test, rows it left pending are given up, so no later drain or sweep calls a closed receiver."""
    yield
    await pg.execute(
        "UPDATE outbox SET failed_at = now(), last_error = 'test ended'"
        " WHERE delivered_at IS NULL AND failed_at IS NULL AND case_id = ANY($1::bigint[])",
        [cases.home, cases.away],
    )


async def deliver_once(engine: AsyncEngine, settings: Settings, outbox_id: int) -> str:
    """One attempt as the job runs it, dropping the deferred retry (tests loop themselves)."""
    with JobBuffer.collect() as jobs:
        outcome = await service.deliver(engine, settings, outbox_id)
        jobs.discard()
    return outcome


Announce = Callable[..., Awaitable[tuple[list[int], JobBuffer]]]


@pytest.fixture
def announce(engine: AsyncEngine) -> Announce:
    """`ids, jobs = await announce(topic=…, case_id=…, unit_code=…)`: one committed announcement; its jobs
    are still buffered (flush them to a queue, or discard them)."""

    async def run(**kw: Any) -> tuple[list[int], JobBuffer]:
        with JobBuffer.collect() as jobs:
            async with engine.begin() as conn:
                ids = await service.announce(conn, **kw)
        return ids, jobs

    return run
