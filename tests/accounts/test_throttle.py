"""The login throttle: failures per username and address counted in Redis, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from grid_mgmt.app import create_app
from grid_mgmt.settings import Settings
from tests.accounts.conftest import PASSWORD, login_body, unique

LOGIN = "/api/v1/auth/login"
MAX_FAILURES = 3


@pytest.fixture(scope="module")
async def strict(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An API process that allows only 3 failures (argon2 makes each attempt cost a fraction of a second)."""
    app = create_app(replace(settings, login_max_failures=MAX_FAILURES, locate_cache=False))
    async with AsyncTestClient(app=app) as c:
        yield c


async def _fail(client: AsyncTestClient[Litestar], username: str, times: int) -> None:
    for _ in range(times):
        r = await client.post(LOGIN, json={"username": username, "password": "guess guess"})
        assert r.status_code == 401, r.text


async def test_repeated_failures_answer_429_with_retry_after(strict, make_user, settings: Settings) -> None:
    user = await make_user()
    await _fail(strict, user["username"], MAX_FAILURES)
    r = await strict.post(LOGIN, json={"username": user["username"], "password": PASSWORD})  # even the right one
    assert r.status_code == 429, r.text
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= settings.login_failure_window_s
    assert r.json()["extra"]["retry_after"] == retry_after and "try again" in r.json()["detail"]
    other = await make_user()  # another username from the same address is not affected
    assert (await strict.post(LOGIN, json={"username": other["username"], "password": PASSWORD})).status_code == 200


async def test_unknown_usernames_are_throttled_too(strict) -> None:
    nobody = unique("nobody")
    await _fail(strict, nobody, MAX_FAILURES)
    r = await strict.post(LOGIN, json={"username": nobody, "password": "guess guess"})
    assert r.status_code == 429


async def test_a_successful_login_resets_the_count(strict, make_user) -> None:
    user = await make_user()
    await _fail(strict, user["username"], MAX_FAILURES - 1)
    await login_body(strict, user["username"])
    await _fail(strict, user["username"], MAX_FAILURES - 1)
    await login_body(strict, user["username"])
