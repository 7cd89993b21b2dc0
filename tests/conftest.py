"""Shared fixtures: a throwaway PostGIS database with the demo city, Redis, and the API under test."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.app import create_app
from grid_mgmt.db.migrate import upgrade
from grid_mgmt.lib.auth import Principal
from grid_mgmt.settings import Settings

pytest_plugins = ["tests.worker_fixtures"]  # `drain`, `arq_pool`: the real arq worker for any test

SERVER_URL = os.environ.get("GRID_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt")
REDIS_URL = os.environ.get("GRID_REDIS_URL", "redis://127.0.0.1:6379/0")


def _with_db(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def plain(url: str) -> str:
    """SQLAlchemy URL → asyncpg DSN."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database(name: str) -> str:
    """Create an empty database next to the configured one; returns its SQLAlchemy URL."""
    admin = await asyncpg.connect(plain(_with_db(SERVER_URL, "postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _with_db(SERVER_URL, name)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(plain(_with_db(SERVER_URL, "postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def wait_fresh(locator: Any, within: float = 30.0) -> bool:
    """Poll the app's grid index from the test loop (the app runs on the test client's own loop)."""
    for _ in range(int(within / 0.02)):
        if locator.fresh:
            return True
        await asyncio.sleep(0.02)
    return bool(locator.fresh)


@pytest.fixture(scope="session")
def db_name() -> str:
    return f"grid_test_{os.getpid()}_{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
async def database_url(db_name: str) -> AsyncIterator[str]:
    """A migrated throwaway database holding the demo city (never the demo database itself)."""
    from seeds.load import load_city

    url = await create_database(db_name)
    try:
        await asyncio.to_thread(upgrade, url)
        await load_city(plain(url), scale="demo")
        yield url
    finally:
        await drop_database(db_name)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    redis_db = 1 + os.getpid() % 14
    return replace(
        Settings(),
        database_url=database_url,
        redis_url=REDIS_URL.rsplit("/", 1)[0] + f"/{redis_db}",
        media_dir=str(tmp_path_factory.mktemp("media")),
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as c:
        locator = app.state.get("locator")
        if locator is not None:
            assert await wait_fresh(locator, 60), "grid index did not build"
        yield c


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database for asserting on rows."""
    conn = await asyncpg.connect(plain(database_url))
    try:
        yield conn
    finally:
        await conn.close()


# ---- logging in (accounts) ----

DEMO_PASSWORD = "demo"
"""The password of every seeded demo user (admin, worker1…worker59, acceptor1, leader1, dispatcher1, supervisor1,
unit-<code>)."""


async def login(client: AsyncTestClient[Litestar], username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Log in and return the request headers of the new session: `{"Authorization": "Bearer <access token>"}`."""
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, f"login as {username} failed: {r.status_code} {r.text}"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
def auth_headers(client: AsyncTestClient[Litestar]) -> Callable[..., Awaitable[dict[str, str]]]:
    """`headers = await auth_headers("dispatcher1")`: Authorization headers of a demo user (password `demo`).

    One login per username per test session (argon2 costs ~50 ms); pass `fresh=True` for a session of your own,
    e.g. before logging it out. Tokens are re-issued after 10 minutes (they live 15).
    """
    cache: dict[str, tuple[float, dict[str, str]]] = {}

    async def headers(username: str, *, password: str = DEMO_PASSWORD, fresh: bool = False) -> dict[str, str]:
        hit = cache.get(username)
        if fresh or hit is None or hit[0] < time.monotonic():
            hit = (time.monotonic() + 600, await login(client, username, password))
            cache[username] = hit
        return dict(hit[1])

    return headers


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
