"""The principal cache: data scope of a user, and revocations reaching other API processes (pub/sub, else TTL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.accounts.principals import PrincipalCache
from grid_mgmt.app import create_app
from grid_mgmt.db.engine import make_engine
from grid_mgmt.settings import Settings
from tests.accounts.conftest import bearer, login_body

ME = "/api/v1/auth/me"


@pytest.fixture(scope="module")
async def other_process(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A second API process that would trust its cache for an hour: only the Redis message can tell it."""
    app = create_app(replace(settings, locate_cache=False, auth_cache_seconds=3600))
    async with AsyncTestClient(app=app) as c:
        yield c


async def _until_401(client: AsyncTestClient[Litestar], headers: dict[str, str], within: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < within:
        if (await client.get(ME, headers=headers)).status_code == 401:
            return loop.time() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"the token still worked after {within} s")


async def test_logout_everywhere_reaches_another_process_via_redis(
    client: AsyncTestClient[Litestar], other_process: AsyncTestClient[Litestar], make_user
) -> None:
    user = await make_user()
    body = await login_body(client, user["username"])
    headers = bearer(body["access_token"])
    assert (await other_process.get(ME, headers=headers)).status_code == 200  # now cached there
    r = await client.post("/api/v1/auth/logout", json={"everywhere": True}, headers=headers)
    assert r.status_code == 204
    await _until_401(other_process, headers, within=3.0)


async def test_role_change_reaches_another_process(
    client: AsyncTestClient[Litestar], other_process: AsyncTestClient[Litestar], make_user, auth_headers
) -> None:
    user = await make_user(roles=["acceptor"])
    body = await login_body(client, user["username"])
    headers = bearer(body["access_token"])
    assert (await other_process.get(ME, headers=headers)).status_code == 200
    r = await client.patch(
        f"/api/v1/admin/users/{user['id']}", json={"roles": ["dispatcher"]}, headers=await auth_headers("admin")
    )
    assert r.status_code == 200, r.text
    await _until_401(other_process, headers, within=3.0)
    r = await other_process.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert r.status_code == 200 and r.json()["user"]["roles"] == ["dispatcher"]


async def test_without_redis_the_cache_ttl_bounds_revocation(
    client: AsyncTestClient[Litestar], settings: Settings, make_user
) -> None:
    cut_off = replace(settings, locate_cache=False, auth_cache_seconds=0.5, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=create_app(cut_off)) as lonely:
        user = await make_user()
        body = await login_body(client, user["username"])
        headers = bearer(body["access_token"])
        assert (await lonely.get(ME, headers=headers)).status_code == 200
        r = await client.post("/api/v1/auth/logout", json={"everywhere": True}, headers=headers)
        assert r.status_code == 204
        assert await _until_401(lonely, headers, within=2.0) <= 1.5


async def test_principal_carries_the_data_scope(settings: Settings, pg, make_user) -> None:
    engine = make_engine(settings)
    try:
        cache = PrincipalCache(engine, ttl=60)
        staff_id = await pg.fetchval("SELECT id FROM app_user WHERE username = 'unit-U01'")
        staff = await cache.get(staff_id)
        assert staff is not None and staff.active
        p = staff.principal
        assert p.roles == {"unit_staff"} and p.unit_code == "U01"
        assert {"U01", "U0101", "U010101", "U010102", "U0102", "U0103", "U0104"} == p.unit_codes
        assert not p.duty_grid_codes
        worker = await make_user(roles=["worker"], duty_grid_codes=["DG10000101", "DG10000102"], district_code="420323")
        facts = await cache.get(worker["id"])
        assert facts is not None
        grids = await pg.fetch(
            "SELECT grid_code FROM duty_grid_grid WHERE duty_grid_code = ANY($1::text[])", ["DG10000101", "DG10000102"]
        )
        assert facts.principal.duty_grid_codes == {r["grid_code"] for r in grids} and len(grids) > 0
        assert facts.principal.district_code == "420323" and not facts.principal.unit_codes
        assert await cache.get(2**31 - 1) is None
        assert await cache.get(staff_id) is staff  # a hit
        cache.drop(staff_id)
        assert await cache.get(staff_id) is not staff
    finally:
        await engine.dispose()


async def test_concurrent_misses_share_one_query(settings: Settings, pg) -> None:
    engine = make_engine(settings)
    try:
        cache = PrincipalCache(engine, ttl=60)
        admin_id = await pg.fetchval("SELECT id FROM app_user WHERE username = 'admin'")
        results = await asyncio.gather(*(cache.get(admin_id) for _ in range(50)))
        assert all(r is results[0] for r in results) and results[0] is not None
    finally:
        await engine.dispose()
